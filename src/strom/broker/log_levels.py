"""The BROKER_LOGGER config resource (KIP-412): the broker's loggers and their levels,
read and changed at runtime through DescribeConfigs and IncrementalAlterConfigs.

Kafka lists its log4j loggers; Strom lists Python's (`root` and every logger created so
far, such as `strom.broker.server`), with Kafka's level names: TRACE (5, below DEBUG),
DEBUG, INFO, WARN, ERROR and FATAL (Python's CRITICAL). Changes are not persisted, as in
Kafka: a restart brings back the configured levels. Refusals carry Kafka 4.4's answers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

TRACE = 5
ROOT = "root"
KAFKA_LEVELS = {"TRACE": TRACE, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
                "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
SET, DELETE = 0, 1
OP_NAMES = {2: "APPEND", 3: "SUBTRACT"}


class LoggerChangeRefused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LoggerOp:
    name: str
    operation: int
    value: str | None


def level_name(level: int) -> str:
    """Kafka's name for a Python level (the nearest one at or above it)."""
    for name, value in KAFKA_LEVELS.items():
        if level <= value:
            return name
    return "FATAL"


def _logger(name: str) -> logging.Logger | None:
    if name == ROOT:
        return logging.getLogger()
    found = logging.root.manager.loggerDict.get(name)
    return found if isinstance(found, logging.Logger) else None


def current_levels() -> dict[str, str]:
    """Every logger and its effective level, in name order (root first)."""
    names = sorted(n for n, v in logging.root.manager.loggerDict.items()
                   if isinstance(v, logging.Logger))
    levels = {ROOT: level_name(logging.getLogger().getEffectiveLevel())}
    for name in names:
        levels[name] = level_name(logging.getLogger(name).getEffectiveLevel())
    return levels


def _check(op: LoggerOp) -> logging.Logger:
    if op.operation in OP_NAMES:
        raise LoggerChangeRefused(ErrorCode.invalid_request,
                                  f"{OP_NAMES[op.operation]} operation is not allowed for the "
                                  "BROKER_LOGGER resource")
    logger = _logger(op.name)
    if logger is None:
        raise LoggerChangeRefused(ErrorCode.invalid_config, f"Logger {op.name} does not exist!")
    if op.operation == DELETE and op.name == ROOT:
        raise LoggerChangeRefused(ErrorCode.invalid_request,
                                  "Removing the log level of the root logger is not allowed")
    if op.operation == SET and op.value not in KAFKA_LEVELS:
        raise LoggerChangeRefused(
            ErrorCode.invalid_config,
            f"Cannot set the log level of {op.name} to {op.value} as it is not a supported "
            f"log level. Valid log levels are {', '.join(sorted(KAFKA_LEVELS))}")
    return logger


def apply(ops: Iterable[LoggerOp], validate_only: bool) -> None:
    """Check every change, then make them all (or none: the first refusal raises)."""
    checked = [(op, _check(op)) for op in ops]
    if validate_only:
        return
    for op, logger in checked:
        if op.operation == SET and op.value is not None:
            logger.setLevel(KAFKA_LEVELS[op.value])
        else:  # DELETE: back to what its parents say, as Kafka unsets a logger's level
            logger.setLevel(logging.NOTSET)
        logging.getLogger(__name__).info("log level of %s set to %s", op.name,
                                         level_name(logger.getEffectiveLevel()))

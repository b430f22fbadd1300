"""Error handling of a task: retries, `errors.tolerance`, error logs, the dead letter queue.

Kafka's RetryWithToleranceOperator, per task. Each step of a record's journey runs as a
stage (KEY_CONVERTER, VALUE_CONVERTER, HEADER_CONVERTER, TRANSFORMATION, KAFKA_PRODUCE,
...). A `RetriableError` is retried with exponential backoff (300 ms doubling up to
`errors.retry.delay.max.ms`) for at most `errors.retry.timeout` ms (0: no retry, -1:
forever). A failure that remains is tolerated under `errors.tolerance=all` — the record
is skipped, logged if `errors.log.enable`, and (sink connectors) written with its
original bytes to `errors.deadletterqueue.topic.name` — and otherwise fails the task with
"Tolerance exceeded in error handler".

The DLQ headers are Kafka's (`__connect.errors.*`, values as UTF-8 strings), so tools
written for Kafka's DLQs read ours; exception class names are given in Kafka's spelling
for the Connect exceptions and as Python qualified names otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from strom.connect.api.config import AbstractConfig
from strom.connect.api.errors import ConnectError, DataError, RetriableError

log = logging.getLogger(__name__)

T = TypeVar("T")

HEADER_PREFIX = "__connect.errors."
ORIGINAL_TOPIC = HEADER_PREFIX + "topic"
ORIGINAL_PARTITION = HEADER_PREFIX + "partition"
ORIGINAL_OFFSET = HEADER_PREFIX + "offset"
CONNECTOR_NAME = HEADER_PREFIX + "connector.name"
TASK_ID = HEADER_PREFIX + "task.id"
STAGE = HEADER_PREFIX + "stage"
EXECUTING_CLASS = HEADER_PREFIX + "class.name"
EXCEPTION = HEADER_PREFIX + "exception.class.name"
EXCEPTION_MESSAGE = HEADER_PREFIX + "exception.message"
EXCEPTION_STACKTRACE = HEADER_PREFIX + "exception.stacktrace"

_KAFKA_EXCEPTIONS = {
    DataError: "org.apache.kafka.connect.errors.DataException",
    RetriableError: "org.apache.kafka.connect.errors.RetriableException",
    ConnectError: "org.apache.kafka.connect.errors.ConnectException",
}
INITIAL_BACKOFF_S = 0.3


class Stage(Enum):
    KEY_CONVERTER = "KEY_CONVERTER"
    VALUE_CONVERTER = "VALUE_CONVERTER"
    HEADER_CONVERTER = "HEADER_CONVERTER"
    TRANSFORMATION = "TRANSFORMATION"
    TASK_PUT = "TASK_PUT"
    TASK_POLL = "TASK_POLL"
    KAFKA_PRODUCE = "KAFKA_PRODUCE"
    KAFKA_CONSUME = "KAFKA_CONSUME"


#: Stages whose failures `errors.tolerance=all` may skip (Kafka's TOLERABLE_EXCEPTIONS
#: apply to these; a failing put or poll always fails the task).
TOLERABLE = {Stage.KEY_CONVERTER, Stage.VALUE_CONVERTER, Stage.HEADER_CONVERTER, Stage.TRANSFORMATION,
             Stage.KAFKA_PRODUCE}


def exception_class_name(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls in _KAFKA_EXCEPTIONS:
            return _KAFKA_EXCEPTIONS[cls]
    return f"{type(error).__module__}.{type(error).__qualname__}"


class ToleranceExceededError(ConnectError):
    """Kafka's "Tolerance exceeded in error handler"."""


class Skipped(Exception):
    """The record failed at a stage and was tolerated: drop it, go on."""


@dataclass
class ErrorContext:
    """What a failure report says: the stage, the class, the consumed record if any."""

    stage: Stage
    executing_class: str
    error: BaseException
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


Reporter = Callable[[ErrorContext], None]


class ErrorHandler:
    """A task's RetryWithToleranceOperator; reporters (log, DLQ) see each tolerated failure."""

    def __init__(self, config: AbstractConfig, task_id: str,
                 sleep: Callable[[float], bool] | None = None) -> None:
        self.retry_timeout_ms = int(config.get("errors.retry.timeout"))
        self.max_delay_ms = int(config.get("errors.retry.delay.max.ms"))
        self.tolerate_all = config.get("errors.tolerance") == "all"
        self.task_id = task_id
        self.reporters: list[Reporter] = []
        self.failed = 0
        # for the task-error metrics: attempts after a RetriableError, tolerated failures
        self.retries = self.skipped = self.last_error_ms = 0
        self.logging = bool(config.get("errors.log.enable"))
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        if config.get("errors.log.enable"):
            self.reporters.append(LogReporter(task_id, bool(config.get("errors.log.include.messages"))))

    def stop(self) -> None:
        """Cut any retry backoff short (the task is stopping)."""
        self._stop.set()

    def flush(self) -> None:
        """Wait until reported records are written (before the offsets past them are
        committed: a record skipped to the DLQ must be in the DLQ first)."""
        for reporter in self.reporters:
            flush = getattr(reporter, "flush", None)
            if flush is not None:
                flush()

    def report(self, context: ErrorContext) -> None:
        """A failure the task reported itself (KIP-610's ErrantRecordReporter)."""
        self._skipped()
        for reporter in self.reporters:
            reporter(context)

    def _skipped(self) -> None:
        self.failed += 1
        self.skipped += 1
        self.last_error_ms = int(time.time() * 1000)

    def execute(self, stage: Stage, executing_class: str, operation: Callable[[], T],
                record: Callable[[], ErrorContext] | None = None) -> T:
        """`operation()`'s result, after retries; raises Skipped if the failure is tolerated,
        ToleranceExceededError (with the cause) if not. `record` makes the failure's context
        (the consumed record) only when there is a failure: this runs for every record."""
        try:
            return operation()
        except RetriableError as first:
            try:
                return self._retry(operation, first)
            except Exception as exc:  # noqa: BLE001 - every failure meets the tolerance rule
                self._failed(stage, executing_class, exc, record)
        except Exception as exc:  # noqa: BLE001 - every failure meets the tolerance rule
            self._failed(stage, executing_class, exc, record)
        raise AssertionError("unreachable: _failed always raises")

    def _failed(self, stage: Stage, executing_class: str, exc: Exception,
                record: Callable[[], ErrorContext] | None) -> None:
        context = record() if record is not None else ErrorContext(stage, executing_class, exc)
        context.stage, context.executing_class, context.error = stage, executing_class, exc
        if stage not in TOLERABLE or not self.tolerate_all:
            self.failed += 1
            raise ToleranceExceededError("Tolerance exceeded in error handler") from exc
        self._skipped()
        for reporter in self.reporters:
            reporter(context)
        raise Skipped(str(exc)) from exc

    def _retry(self, operation: Callable[[], T], error: RetriableError) -> T:
        """Attempts after a first RetriableError, while `errors.retry.timeout` allows."""
        deadline = None if self.retry_timeout_ms < 0 else time.monotonic() + self.retry_timeout_ms / 1000
        delay = INITIAL_BACKOFF_S
        while True:
            if deadline is not None and time.monotonic() + delay > deadline:
                raise error
            if self._sleep(min(delay, self.max_delay_ms / 1000)):
                raise error  # the task is stopping
            delay *= 2
            self.retries += 1
            try:
                return operation()
            except RetriableError as again:
                error = again


class LogReporter:
    """`errors.log.enable`: one log line per tolerated failure, Kafka's wording."""

    def __init__(self, task_id: str, include_messages: bool) -> None:
        self.task_id, self.include_messages = task_id, include_messages

    def __call__(self, context: ErrorContext) -> None:
        where = ""
        if context.topic is not None:
            where = (f", where consumed record is {{topic='{context.topic}', partition={context.partition}, "
                     f"offset={context.offset}}}")
            if self.include_messages:
                where += f" key={context.key!r} value={context.value!r}"
        log.error("Error encountered in task %s. Executing stage '%s' with class '%s'%s.", self.task_id,
                  context.stage.value, context.executing_class, where, exc_info=context.error)


class DeadLetterQueueReporter:
    """Writes a failed consumed record, as it was consumed, to the DLQ topic."""

    def __init__(self, producer: Any, topic: str, connector: str, task: int, with_headers: bool) -> None:
        self.producer, self.topic = producer, topic
        self.connector, self.task, self.with_headers = connector, task, with_headers
        self.requests = self.failures = 0  # writes and refused writes, for the task-error metrics

    def __call__(self, context: ErrorContext) -> None:
        if context.topic is None:
            return  # only consumed records go to a DLQ (sink connectors)
        headers = list(context.headers)
        if self.with_headers:
            headers.extend(self._context_headers(context))
        self.producer.produce(self.topic, value=context.value, key=context.key, headers=headers,
                              on_delivery=self._delivered)
        self.requests += 1
        self.producer.poll(0)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failures += 1

    def flush(self) -> None:
        remaining = self.producer.flush(30)
        if remaining:
            raise ConnectError(f"{remaining} records could not be written to the dead letter queue "
                               f"{self.topic}")

    def _context_headers(self, context: ErrorContext) -> list[tuple[str, bytes | None]]:
        error = context.error
        values = [
            (ORIGINAL_TOPIC, context.topic), (ORIGINAL_PARTITION, str(context.partition)),
            (ORIGINAL_OFFSET, str(context.offset)), (CONNECTOR_NAME, self.connector),
            (TASK_ID, str(self.task)), (STAGE, context.stage.value),
            (EXECUTING_CLASS, context.executing_class), (EXCEPTION, exception_class_name(error)),
            (EXCEPTION_MESSAGE, str(error) if str(error) else None),
            (EXCEPTION_STACKTRACE, "".join(traceback.format_exception(error))),
        ]
        return [(k, None if v is None else v.encode("utf-8")) for k, v in values]

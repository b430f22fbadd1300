"""The exceptions a connector, converter or transform raises, under Kafka's names.

The runtime tells them apart: a `RetriableError` from a task is retried by the worker
(without counting against `errors.tolerance`), a `DataError` marks one record as bad (the
error handler may skip it or send it to the dead letter queue), any other `ConnectError`
fails the task.
"""

from __future__ import annotations


class ConnectError(Exception):
    """Kafka's ConnectException: the base of every Connect error."""


class DataError(ConnectError):
    """A value that does not fit its schema, or bytes a converter cannot read."""


class SchemaBuilderError(DataError):
    """A schema built inconsistently (duplicate field, fields on a non-struct)."""


class RetriableError(ConnectError):
    """A transient failure: the runtime calls the same operation again later."""


class ConfigError(ConnectError):
    """An invalid configuration value (Kafka's ConfigException)."""

    def __init__(self, name: str, value: object = None, message: str | None = None) -> None:
        self.name, self.value = name, value
        text = name if message is None else f"Invalid value {value} for configuration {name}: {message}"
        super().__init__(text)


class NotFoundError(ConnectError):
    """A connector, task or plugin that does not exist (REST 404)."""


class AlreadyExistsError(ConnectError):
    """A connector created twice (REST 409)."""


class BadRequestError(ConnectError):
    """A request the runtime refuses as given (REST 400)."""

"""`Record`: what a processor receives and forwards, and `ConsumedRecord`, what a task is fed.

A `Record` carries the key, value, timestamp and headers a processor may change, plus the
metadata of the input record it descends from (topic, partition, offset), which Kafka
Streams exposes through `ProcessorContext.recordMetadata()`; here it rides on the record so
a processor reads `record.topic` directly. Forwarding a changed record keeps that metadata,
as Kafka Streams does, so a sink or store knows where the data came from.

`ConsumedRecord` is the serialized form a task takes from a consumer or from the test
driver: bytes, not objects, so the same task code runs under both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

Headers = Sequence[tuple[str, bytes | None]]


class Record:
    """One record inside a topology. Change it with the `with_*` methods (they copy)."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, key: Any, value: Any, timestamp: int, headers: Headers = (),
                 topic: str | None = None, partition: int = -1, offset: int = -1) -> None:
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def with_key(self, key: Any) -> Record:
        return Record(key, self.value, self.timestamp, self.headers, self.topic, self.partition,
                      self.offset)

    def with_value(self, value: Any) -> Record:
        return Record(self.key, value, self.timestamp, self.headers, self.topic, self.partition,
                      self.offset)

    def with_key_value(self, key: Any, value: Any) -> Record:
        return Record(key, value, self.timestamp, self.headers, self.topic, self.partition,
                      self.offset)

    def with_timestamp(self, timestamp: int) -> Record:
        return Record(self.key, self.value, timestamp, self.headers, self.topic, self.partition,
                      self.offset)

    def with_headers(self, headers: Headers) -> Record:
        return Record(self.key, self.value, self.timestamp, headers, self.topic, self.partition,
                      self.offset)

    def header(self, name: str) -> bytes | None:
        """The last value of header `name` (Kafka's `Headers.lastHeader`), or None."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.key, self.value, self.timestamp, list(self.headers)) == (
            other.key, other.value, other.timestamp, list(other.headers))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Record(key={self.key!r}, value={self.value!r}, timestamp={self.timestamp}, "
                f"headers={list(self.headers)!r}, topic={self.topic!r}, partition={self.partition}, "
                f"offset={self.offset})")


class ConsumedRecord(NamedTuple):
    """A record as read from a topic: serialized key and value, and where it was read."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class ProducedRecord(NamedTuple):
    """A record a task sends: serialized, with its topic; partition -1 lets the producer
    pick one from the key (murmur2, as Kafka's Java producer does)."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Headers = ()
    partition: int = -1

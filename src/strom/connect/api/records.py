"""Records as a connector sees them: `SourceRecord` out of a source task, `SinkRecord`
into a sink task; both are `ConnectRecord`s that transforms rewrite with `new_record`.

Source partition and offset are plain JSON-able mappings (Kafka's `Map<String, ?>`): the
runtime stores the last offset per partition and hands it back to a restarted task
through `SourceTaskContext.offset_storage_reader`.

The classes are frozen dataclasses with hand-written `__init__`s: one record is built per
message, and a generated frozen `__init__` sets each field through `object.__setattr__`,
which costs twice as much as filling the instance dictionary at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from strom.connect.data.headers import Headers
from strom.connect.data.schema import Schema


@dataclass(frozen=True, init=False)
class ConnectRecord:
    """Topic, partition, key and value with their schemas, timestamp (ms) and headers."""

    topic: str
    kafka_partition: int | None
    key_schema: Schema | None
    key: Any
    value_schema: Schema | None
    value: Any
    timestamp: int | None = None
    headers: Headers = field(default_factory=Headers)

    def __init__(self, topic: str, kafka_partition: int | None, key_schema: Schema | None, key: Any,
                 value_schema: Schema | None, value: Any, timestamp: int | None = None,
                 headers: Headers | None = None) -> None:
        self.__dict__.update(topic=topic, kafka_partition=kafka_partition, key_schema=key_schema, key=key,
                             value_schema=value_schema, value=value, timestamp=timestamp,
                             headers=Headers() if headers is None else headers)

    def new_record(self, topic: str, kafka_partition: int | None, key_schema: Schema | None,
                   key: Any, value_schema: Schema | None, value: Any, timestamp: int | None,
                   headers: Headers | None = None) -> ConnectRecord:
        """A copy with the given parts replaced; the subclass and its extras are kept."""
        return replace(self, topic=topic, kafka_partition=kafka_partition, key_schema=key_schema,
                       key=key, value_schema=value_schema, value=value, timestamp=timestamp,
                       headers=self.headers.copy() if headers is None else headers)

    def with_(self, **changes: Any) -> ConnectRecord:
        """A copy with some attributes replaced (`record.with_(topic="x")`)."""
        return replace(self, **changes)


@dataclass(frozen=True, init=False)
class SourceRecord(ConnectRecord):
    """A record from a source task, with where it came from in the source system."""

    source_partition: Mapping[str, Any] | None = None
    source_offset: Mapping[str, Any] | None = None

    def __init__(self, topic: str, kafka_partition: int | None, key_schema: Schema | None, key: Any,
                 value_schema: Schema | None, value: Any, timestamp: int | None = None,
                 headers: Headers | None = None, source_partition: Mapping[str, Any] | None = None,
                 source_offset: Mapping[str, Any] | None = None) -> None:
        self.__dict__.update(topic=topic, kafka_partition=kafka_partition, key_schema=key_schema, key=key,
                             value_schema=value_schema, value=value, timestamp=timestamp,
                             headers=Headers() if headers is None else headers,
                             source_partition=source_partition, source_offset=source_offset)


@dataclass(frozen=True, init=False)
class SinkRecord(ConnectRecord):
    """A record for a sink task, with its Kafka offset; `original_*` are the consumed
    coordinates before transforms rewrote topic or partition (KIP-793)."""

    kafka_offset: int = -1
    timestamp_type: str = "CreateTime"
    original_topic: str | None = None
    original_kafka_partition: int | None = None
    original_kafka_offset: int | None = None

    def __init__(self, topic: str, kafka_partition: int | None, key_schema: Schema | None, key: Any,
                 value_schema: Schema | None, value: Any, timestamp: int | None = None,
                 headers: Headers | None = None, kafka_offset: int = -1, timestamp_type: str = "CreateTime",
                 original_topic: str | None = None, original_kafka_partition: int | None = None,
                 original_kafka_offset: int | None = None) -> None:
        self.__dict__.update(topic=topic, kafka_partition=kafka_partition, key_schema=key_schema, key=key,
                             value_schema=value_schema, value=value, timestamp=timestamp,
                             headers=Headers() if headers is None else headers, kafka_offset=kafka_offset,
                             timestamp_type=timestamp_type, original_topic=original_topic,
                             original_kafka_partition=original_kafka_partition,
                             original_kafka_offset=original_kafka_offset)

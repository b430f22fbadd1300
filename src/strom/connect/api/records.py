"""Records as a connector sees them: `SourceRecord` out of a source task, `SinkRecord`
into a sink task; both are `ConnectRecord`s that transforms rewrite with `new_record`.

Source partition and offset are plain JSON-able mappings (Kafka's `Map<String, ?>`): the
runtime stores the last offset per partition and hands it back to a restarted task
through `SourceTaskContext.offset_storage_reader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from strom.connect.data.headers import Headers
from strom.connect.data.schema import Schema


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class SourceRecord(ConnectRecord):
    """A record from a source task, with where it came from in the source system."""

    source_partition: Mapping[str, Any] | None = None
    source_offset: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SinkRecord(ConnectRecord):
    """A record for a sink task, with its Kafka offset; `original_*` are the consumed
    coordinates before transforms rewrote topic or partition (KIP-793)."""

    kafka_offset: int = -1
    timestamp_type: str = "CreateTime"
    original_topic: str | None = None
    original_kafka_partition: int | None = None
    original_kafka_offset: int | None = None

"""Tasks do the copying: `SourceTask.poll` returns records, `SinkTask.put` takes them.

Semantics follow Kafka Connect:

- Source: `poll()` is called in a loop on the task's own thread and may block briefly;
  returning None or [] means "nothing now". Each record carries a source partition and
  offset; the runtime writes the offsets of acknowledged records to the offset store
  every `offset.flush.interval.ms` and at stop, then calls `commit()`.
  `commit_record(record, metadata)` is called per acknowledged record.
- Sink: `put(records)` receives each consumed batch (possibly empty, as a heartbeat).
  Before committing consumer offsets the runtime calls `pre_commit(current_offsets)`;
  its default calls `flush(current_offsets)` and returns them, and the runtime commits
  what `pre_commit` returns for the consumer group `connect-<connector>`. `open`/`close`
  announce partitions gained and lost in a rebalance. A `RetriableError` from `put` makes
  the runtime pause consumption and deliver the same batch again after a backoff.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from strom.connect.api.records import SinkRecord, SourceRecord


@dataclass(frozen=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True)
class RecordMetadata:
    """Where the broker stored a source record."""

    topic: str
    partition: int
    offset: int


class OffsetStorageReader(Protocol):
    """A source task's view of its committed offsets."""

    def offset(self, partition: Mapping[str, Any]) -> dict[str, Any] | None:
        """The last committed offset of one source partition, or None."""

    def offsets(self, partitions: Sequence[Mapping[str, Any]]) -> dict[Any, dict[str, Any] | None]:
        """Offsets of several partitions, keyed by the partition's JSON text."""


class SourceTaskContext(Protocol):
    configs: Mapping[str, str]

    @property
    def offset_storage_reader(self) -> OffsetStorageReader:
        """Offsets committed by earlier runs of this connector."""


class SinkTaskContext(Protocol):
    configs: Mapping[str, str]

    def offset(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Rewind or skip: consume these partitions from these offsets next."""

    def timeout(self, timeout_ms: int) -> None:
        """After a RetriableError, wait this long before redelivering the batch."""

    def assignment(self) -> set[TopicPartition]:
        """The partitions this task consumes now."""

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def request_commit(self) -> None:
        """Ask for an offset commit soon, ahead of `offset.flush.interval.ms`."""

    def errant_record_reporter(self) -> Callable[[SinkRecord, BaseException], None]:
        """KIP-610: report a record the task cannot write (dead letter queue, or failure
        without `errors.tolerance=all`)."""
        ...


class Task(ABC):
    """Common to both task kinds."""

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def start(self, props: Mapping[str, str]) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...


class SourceTask(Task):
    context: SourceTaskContext

    def initialize(self, context: SourceTaskContext) -> None:
        self.context = context

    @abstractmethod
    def poll(self) -> list[SourceRecord] | None:
        """New records, or None/[] when there are none now (may block a little)."""

    def commit(self) -> None:
        """Offsets up to the last poll were stored; acknowledge upstream if needed."""

    def commit_record(self, record: SourceRecord, metadata: RecordMetadata | None) -> None:
        """`record` was written (metadata) or filtered out by a transform (None)."""


class SinkTask(Task):
    context: SinkTaskContext

    def initialize(self, context: SinkTaskContext) -> None:
        self.context = context

    @abstractmethod
    def put(self, records: Sequence[SinkRecord]) -> None:
        """Write (or buffer) these records; may raise RetriableError."""

    def flush(self, current_offsets: Mapping[TopicPartition, int]) -> None:
        """Make everything `put` so far durable."""

    def pre_commit(self, current_offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """The offsets safe to commit (next offset to read per partition); by default
        flushes and returns `current_offsets` unchanged."""
        self.flush(current_offsets)
        return dict(current_offsets)

    def open(self, partitions: Sequence[TopicPartition]) -> None:
        """Partitions newly assigned to this task."""

    def close(self, partitions: Sequence[TopicPartition]) -> None:
        """Partitions taken away; flush what belongs to them."""

"""Settings and seams the group coordinator needs from its host broker."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from strom.coordinator.group.consumer_group import ConsumerConfig
from strom.coordinator.runtime import AppendLog


@dataclass(frozen=True)
class GroupConfig:
    num_partitions: int = 50  # offsets.topic.num.partitions
    min_session_timeout_ms: int = 6000  # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    initial_rebalance_delay_ms: int = 3000  # group.initial.rebalance.delay.ms
    max_group_size: int = 2**31 - 1  # group.max.size
    offset_metadata_max_bytes: int = 4096  # offset.metadata.max.bytes
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000  # offsets.retention.minutes
    consumer: ConsumerConfig = field(default_factory=ConsumerConfig)  # group.consumer.* (KIP-848 groups)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of `__consumer_offsets` as replay finds it; ``batch`` is its batch's
    base offset, so the loader can report skipped records once per batch."""

    offset: int
    batch: int
    key: bytes | None
    value: bytes | None
    producer_id: int = -1  # a transactional batch's producer (TxnOffsetCommit), else -1


@dataclass(frozen=True, slots=True)
class MarkerEntry:
    """A transaction marker (control batch) in `__consumer_offsets`: the producer's
    transactional offsets before it become committed (COMMIT) or are dropped (ABORT)."""

    offset: int
    producer_id: int
    committed: bool


@dataclass(frozen=True, slots=True)
class UnreadableBatch:
    """A batch replay could not open (corrupt, bad codec payload, over the decompression
    cap): its records are lost to the coordinator, which logs and counts them."""

    base_offset: int
    last_offset: int
    reason: str

    @property
    def span(self) -> int:
        """Offsets the batch covers (at least one: its header may be nonsense)."""
        return max(1, self.last_offset - self.base_offset + 1)


class OffsetsLog(AppendLog, Protocol):
    """The group coordinator's door to `__consumer_offsets`: the runtime's `AppendLog`
    (append, wait until replicated) and `replay` of a partition for loads.

    `replay` yields every record up to the high watermark, and an `UnreadableBatch` in
    place of each batch it cannot decode; it never raises for the content of the log.
    """

    def replay(self, partition: int) -> Iterator[LogRecord | UnreadableBatch | MarkerEntry]: ...


def java_string_hash(value: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = value.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def java_abs(value: int) -> int:
    """Kafka's Utils.abs: Math.abs, but 0 for Integer.MIN_VALUE (whose Math.abs is negative)."""
    return 0 if value == -(2**31) else abs(value)


@functools.lru_cache(maxsize=1 << 16)
def partition_for(group_id: str, num_partitions: int) -> int:
    """Which `__consumer_offsets` partition owns a group (or `__transaction_state` a
    transactional id), exactly as Kafka computes it: Utils.abs(hashCode) % partitions.
    Not the partitioner's `& 0x7fffffff`, which differs for every negative hash — the
    same id must land on the same partition as in Kafka, so that a Kafka log dir's group
    offsets are found where Kafka left them."""
    return java_abs(java_string_hash(group_id)) % num_partitions

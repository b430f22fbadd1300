"""Settings and seams the group coordinator needs from its host broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class GroupConfig:
    num_partitions: int = 50  # offsets.topic.num.partitions
    min_session_timeout_ms: int = 6000  # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    initial_rebalance_delay_ms: int = 3000  # group.initial.rebalance.delay.ms
    max_group_size: int = 2**31 - 1  # group.max.size
    offset_metadata_max_bytes: int = 4096  # offset.metadata.max.bytes
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000  # offsets.retention.minutes


class OffsetsLog(Protocol):
    """The coordinator's door to `__consumer_offsets`: append records, replay a partition.

    `append` returns a Kafka error name ("none" on success) once the records are as
    durable as an acks=all produce would make them.
    """

    def append(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> str: ...

    def replay(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]: ...

    async def wait_durable(self, partition: int) -> str:
        """Wait until everything appended so far is replicated to the ISR (acks=all)."""
        ...


class Scheduler(Protocol):
    """Timers and the monotonic time they run on; tests substitute a manual clock."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Any: ...

    def time(self) -> float: ...


class LoopScheduler:
    """Timers on the running asyncio loop (handles have cancel())."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay_s, callback)

    def time(self) -> float:
        return asyncio.get_running_loop().time()


def java_string_hash(value: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = value.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """Which `__consumer_offsets` partition owns a group, exactly as Kafka computes it."""
    return (java_string_hash(group_id) & 0x7FFFFFFF) % num_partitions

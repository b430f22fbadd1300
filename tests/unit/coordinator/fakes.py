"""In-memory doubles for the group coordinator's seams: log, timers, clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterator

from strom.coordinator.group.config import GroupConfig, LogRecord, UnreadableBatch
from strom.coordinator.group.coordinator import GroupCoordinator


class MemoryOffsetsLog:
    def __init__(self) -> None:
        self.partitions: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self.fail_with: str | None = None

    def append(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> str:
        if self.fail_with:
            return self.fail_with
        self.partitions.setdefault(partition, []).extend(records)
        return "none"

    async def wait_durable(self, partition: int) -> str:
        return "none"

    def replay(self, partition: int) -> Iterator[LogRecord | UnreadableBatch]:
        for offset, (key, value) in enumerate(self.partitions.get(partition, [])):
            yield LogRecord(offset, offset, key, value)


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Timers fire only when the test advances time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, _Handle, Callable[[], None]]] = []
        self._seq = itertools.count()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        heapq.heappush(self._queue, (self.now + delay_s, next(self._seq), handle, callback))
        return handle

    def time(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        for _ in range(5):  # let started tasks reach their first await before time moves
            await asyncio.sleep(0)
        target = self.now + seconds
        while self._queue and self._queue[0][0] <= target:
            when, _, handle, callback = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            if not handle.cancelled:
                callback()
            await asyncio.sleep(0)
        self.now = target
        for _ in range(5):
            await asyncio.sleep(0)


def make_coordinator(log: MemoryOffsetsLog | None = None, scheduler: ManualScheduler | None = None,
                     delay_ms: int = 0, topics: set[str] | None = None,
                     ) -> tuple[GroupCoordinator, MemoryOffsetsLog, ManualScheduler]:
    log = log or MemoryOffsetsLog()
    scheduler = scheduler or ManualScheduler()
    known = topics if topics is not None else {"orders"}
    coordinator = GroupCoordinator(
        log,
        GroupConfig(num_partitions=4, initial_rebalance_delay_ms=delay_ms),
        scheduler,
        lambda: int(scheduler.now * 1000),
        lambda topic, partition: topic in known,
    )
    for partition in range(4):
        coordinator.load(partition)
    return coordinator, log, scheduler

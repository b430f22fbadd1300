"""In-memory doubles for the group coordinator's seams (log, timers, clock), and a harness
that runs a pure shard without the runtime."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from kio.schema.errors import ErrorCode

from strom.coordinator.group import records
from strom.coordinator.group.config import GroupConfig, LogRecord, UnreadableBatch
from strom.coordinator.group.coordinator import GroupCoordinator
from strom.coordinator.group.loader import PartitionLoad
from strom.coordinator.group.shard import GroupCoordinatorShard
from strom.coordinator.runtime import CoordinatorResult, Pending


class MemoryOffsetsLog:
    def __init__(self) -> None:
        self.partitions: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self.fail_with: ErrorCode | None = None

    def append(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> str:
        if self.fail_with:
            return self.fail_with
        self.partitions.setdefault(partition, []).extend(records)
        return ErrorCode.none

    async def wait_durable(self, partition: int) -> str:
        return ErrorCode.none

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

    def pending(self) -> int:
        """Timers scheduled and neither fired nor cancelled."""
        return sum(1 for _, _, handle, _ in self._queue if not handle.cancelled)

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


# --- a shard without a runtime ---------------------------------------------------------------


class FakeTimer:
    """The `Timer` a shard sees; due operations run only when the harness advances time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.ops: dict[str, tuple[float, int, Callable[[], CoordinatorResult[Any, Any]]]] = {}
        self._seq = itertools.count()

    def schedule(self, key: str, delay_s: float,
                 operation: Callable[[], CoordinatorResult[Any, Any]]) -> None:
        self.ops[key] = (self.now + delay_s, next(self._seq), operation)

    def cancel(self, key: str) -> None:
        self.ops.pop(key, None)

    def time(self) -> float:
        return self.now

    def pop_due(self, until: float) -> Callable[[], CoordinatorResult[Any, Any]] | None:
        if not self.ops:
            return None
        key, (when, _, operation) = min(self.ops.items(), key=lambda kv: kv[1][:2])
        if when > until:
            return None
        del self.ops[key]
        self.now = max(self.now, when)
        return operation


class ShardHarness:
    """Runs a pure `GroupCoordinatorShard` the way the runtime does, synchronously.

    Records an operation returns are appended to ``log`` and replayed at once; a
    ``then`` runs at once with "none" (or ``fail_with``, which also keeps the records
    out of the log); completions land in ``answers`` by token.
    """

    def __init__(self, delay_ms: int = 0, topics: set[str] | None = None,
                 retention_ms: int = 7 * 24 * 3600 * 1000) -> None:
        self.timer = FakeTimer()
        self.config = GroupConfig(num_partitions=1, initial_rebalance_delay_ms=delay_ms,
                                  offsets_retention_ms=retention_ms)
        self.topics = topics if topics is not None else {"orders"}
        self.log: list[records.Record] = []
        self.answers: dict[int, Any] = {}
        self.fail_with: ErrorCode | None = None
        self._ids = itertools.count(1)
        self.shard = self.new_shard()

    def clock(self) -> int:
        return int(self.timer.now * 1000)

    def new_shard(self, timer: FakeTimer | None = None) -> GroupCoordinatorShard:
        return GroupCoordinatorShard(0, self.config, timer or self.timer, self.clock,
                                     lambda topic, _: topic in self.topics, itertools.count(1),
                                     lambda client: f"{client}-{next(self._ids)}")

    def run(self, result: CoordinatorResult[Any, records.Record]) -> Any:
        """Apply a result; returns its response (a `Pending` until answered)."""
        error = ErrorCode.none
        if result.records:
            if self.fail_with:
                error = self.fail_with
            else:
                self.log.extend(result.records)
                for record in result.records:
                    self.shard.replay(record)
        self.answers.update(result.completions)
        response = result.response
        if result.then is not None:
            followed = self.run(result.then(error))
            if followed is not None:
                response = followed
        return response

    def answer(self, response: Any) -> Any:
        """The response, or the answer its `Pending` token got (None: still waiting)."""
        if isinstance(response, Pending):
            return self.answers.get(response.token)
        return response

    def advance(self, seconds: float) -> None:
        target = self.timer.now + seconds
        while (operation := self.timer.pop_due(target)) is not None:
            self.run(operation())
        self.timer.now = target

    def reload(self) -> GroupCoordinatorShard:
        """A new shard loaded from ``log`` through the bytes and the loader."""
        shard = self.new_shard(FakeTimer())
        load = PartitionLoad(0, shard.replay)
        for offset, record in enumerate(self.log):
            key, value = records.serialize(record)
            load.feed(LogRecord(offset, offset, key, value))
        load.finish()
        assert not load.skipped
        shard.on_loaded()
        return shard

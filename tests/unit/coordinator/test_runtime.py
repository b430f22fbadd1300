"""The coordinator runtime around a toy shard: appends, replay, waiting, timers, unloads.

The shard here is a counter whose records are integers, so every rule of the runtime
is visible without the group protocol: records are replayed as they are appended (and
not when the append fails), responses wait for replication, `then` sees the write's
outcome, `Pending` tokens become futures, a dropped request is abandoned, and an
unload answers or fails everything that waits.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.coordinator.runtime import CoordinatorResult, CoordinatorRuntime, Pending, Timer

from .fakes import ManualScheduler

pytestmark = pytest.mark.timeout(20)
Result = CoordinatorResult[Any, int]


class CounterShard:
    def __init__(self, timer: Timer) -> None:
        self.timer = timer
        self.total = 0
        self.waiting: list[int] = []
        self.abandoned: list[int] = []
        self.tokens = itertools.count(1)

    def replay(self, record: int) -> None:
        self.total += record

    def on_unloaded(self) -> Result:
        done = tuple((t, "unloaded") for t in self.waiting)
        self.waiting.clear()
        return CoordinatorResult(completions=done)

    def abandon(self, token: int) -> None:
        self.abandoned.append(token)
        self.waiting.remove(token)

    # operations
    def add(self, n: int) -> Result:
        return CoordinatorResult((n,), f"total {self.total + n}")

    def add_then(self, n: int) -> Result:
        return CoordinatorResult((n,), None, then=lambda error: CoordinatorResult(
            response=f"{error.name}: total {self.total}"))

    def wait(self) -> Result:
        token = next(self.tokens)
        self.waiting.append(token)
        return CoordinatorResult(response=Pending(token))

    def release(self, value: str) -> Result:
        done = tuple((t, value) for t in self.waiting)
        self.waiting.clear()
        return CoordinatorResult(completions=done, response="released")


class ControlledLog:
    """Appends go to ``entries``; replication completes when the test says so."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes]] = []
        self.fail_with: str | None = None
        self.durable = asyncio.Event()
        self.durable.set()
        self.durable_error = ErrorCode.none

    def append(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> str:
        if self.fail_with:
            return self.fail_with
        self.entries.extend((partition, key) for key, _ in records)
        return ErrorCode.none

    async def wait_durable(self, partition: int) -> str:
        await self.durable.wait()
        return self.durable_error


def runtime_with(log: ControlledLog | None = None, scheduler: ManualScheduler | None = None
                 ) -> tuple[CoordinatorRuntime[CounterShard, int], ControlledLog]:
    log = log or ControlledLog()
    runtime: CoordinatorRuntime[CounterShard, int] = CoordinatorRuntime(
        log, scheduler or ManualScheduler(), lambda n: (str(n).encode(), None), "__toy")
    assert runtime.load(0, CounterShard)
    return runtime, log


async def test_records_are_appended_replayed_and_answered_once_replicated() -> None:
    runtime, log = runtime_with()
    log.durable.clear()
    task = asyncio.ensure_future(runtime.write(0, lambda s: s.add(5)))
    await asyncio.sleep(0)
    assert log.entries == [(0, b"5")] and runtime.shards[0].total == 5  # replayed on append
    assert not task.done()  # but not answered before replication
    log.durable.set()
    assert await task == "total 5"


async def test_a_failed_append_is_not_replayed_and_then_sees_the_error() -> None:
    runtime, log = runtime_with()
    log.fail_with = ErrorCode.coordinator_not_available
    assert await runtime.write(0, lambda s: s.add_then(5)) == "coordinator_not_available: total 0"
    log.fail_with = None
    log.durable_error = ErrorCode.not_coordinator  # appended, but not replicated in time
    assert await runtime.write(0, lambda s: s.add_then(2)) == "not_coordinator: total 2"


async def test_a_pending_answer_comes_from_a_later_operation() -> None:
    runtime, _ = runtime_with()
    waiting = asyncio.ensure_future(runtime.write(0, lambda s: s.wait()))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert await runtime.write(0, lambda s: s.release("go")) == "released"
    assert await waiting == "go"


async def test_a_dropped_request_is_abandoned_in_the_shard() -> None:
    runtime, _ = runtime_with()
    waiting = asyncio.ensure_future(runtime.write(0, lambda s: s.wait()))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    assert runtime.shards[0].abandoned == [1] and runtime.shards[0].waiting == []


async def test_a_client_that_goes_away_does_not_stop_the_continuation() -> None:
    runtime, log = runtime_with()
    log.durable.clear()
    seen: list[str] = []

    def op(shard: CounterShard) -> Result:
        return CoordinatorResult((1,), None, then=lambda error: seen.append(error) or
                                 CoordinatorResult(response="done"))

    task = asyncio.ensure_future(runtime.write(0, op))
    await asyncio.sleep(0)
    task.cancel()
    log.durable.set()
    await asyncio.sleep(0.01)
    assert seen == [ErrorCode.none]


async def test_unloading_answers_waiters_cancels_timers_and_orphans_continuations() -> None:
    scheduler = ManualScheduler()
    runtime, log = runtime_with(scheduler=scheduler)
    shard = runtime.shards[0]
    fired: list[str] = []
    shard.timer.schedule("t", 5, lambda: fired.append("t") or CoordinatorResult())
    waiting = asyncio.ensure_future(runtime.write(0, lambda s: s.wait()))
    log.durable.clear()
    continued = asyncio.ensure_future(runtime.write(0, lambda s: s.add_then(3)))
    await asyncio.sleep(0)
    runtime.unload(0)
    assert await waiting == "unloaded"
    log.durable.set()
    # The shard is gone: its continuation is told so and its records are not appended.
    assert await continued == "not_coordinator: total 3"
    await scheduler.advance(10)
    assert fired == [] and runtime.status(0) == ErrorCode.not_coordinator


async def test_timers_run_operations_and_a_key_scheduled_again_replaces_its_operation() -> None:
    scheduler = ManualScheduler()
    runtime, log = runtime_with(scheduler=scheduler)
    shard = runtime.shards[0]
    shard.timer.schedule("t", 5, lambda: shard.add(1))
    shard.timer.schedule("t", 7, lambda: shard.add(10))
    await scheduler.advance(6)
    assert shard.total == 0
    await scheduler.advance(2)
    assert shard.total == 10 and log.entries == [(0, b"10")]
    shard.timer.schedule("u", 1, lambda: shard.add(1))
    shard.timer.cancel("u")
    await scheduler.advance(2)
    assert shard.total == 10


async def test_a_failed_load_is_recorded_and_its_timers_cancelled() -> None:
    scheduler = ManualScheduler()
    runtime, _ = runtime_with(scheduler=scheduler)

    def broken(timer: Timer) -> CounterShard:
        timer.schedule("t", 1, CoordinatorResult)
        raise OSError(5, "Input/output error")

    assert not runtime.load(1, broken)
    assert "Input/output error" in runtime.failed[1] and runtime.status(1) == ErrorCode.not_coordinator
    assert scheduler.pending() == 0
    runtime.loading = {2}
    assert runtime.status(2) == ErrorCode.coordinator_load_in_progress


async def test_execute_appends_without_waiting() -> None:
    runtime, log = runtime_with()
    log.durable.clear()
    assert runtime.execute(0, lambda s: s.add(4)) == ("total 4", ErrorCode.none)
    log.fail_with = ErrorCode.not_coordinator
    assert runtime.execute(0, lambda s: s.add(4)) == ("total 8", ErrorCode.not_coordinator)
    assert runtime.shards[0].total == 4

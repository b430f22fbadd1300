"""The coordinator runtime: runs coordinator shards as Kafka's CoordinatorRuntime does.

A coordinator (groups today; transactions and KIP-848 groups next) is split in two:

* **Shards** — one per partition of the coordinator's internal topic — are pure,
  synchronous state machines. Their state is a fold of the partition's records:
  `replay(record)` applies one record, and it is the only code that turns records into
  state, whether they come from the log at load or from an operation just written. An
  operation returns a `CoordinatorResult`: the records to append and the response. A
  response that must wait for other requests (JoinGroup waits for the whole group) is a
  `Pending` token, answered later by a *completion* in some other result. A shard holds
  no futures, tasks or handles; it schedules work through the `Timer` it is given.
* **The runtime** (this module) owns everything that waits: it appends an operation's
  records (the `AppendLog` seam), replays them into the shard at once, waits until they
  are replicated before answering, runs a result's `then` continuation with the write's
  outcome (Kafka's append future), turns `Pending` tokens into futures, fires timers on
  the `Scheduler` seam and tracks which partitions are loaded, loading or failed.

Kafka's runtime also replays on append and answers after the high watermark passes; it
additionally keeps timeline snapshots so that reads see only replicated state. Strom's
reads see the local log's state, which differs only while a write replicates.

Operations of one shard never interleave: each runs to its end on the event loop before
anything else touches the shard, so a shard needs no locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from kio.schema.errors import ErrorCode

log = logging.getLogger(__name__)
R = TypeVar("R")
Rec = TypeVar("Rec")
S = TypeVar("S", bound="Shard")
Entry = tuple[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class Pending:
    """The answer to this request is owed: a later result completes ``token``."""

    token: int


@dataclass(frozen=True)
class CoordinatorResult(Generic[R, Rec]):
    """What an operation on a shard produced (Kafka's CoordinatorResult).

    ``records`` are appended to the shard's partition and replayed into the shard (as
    one transactional batch of ``producer`` (id, epoch) if set: TxnOffsetCommit);
    ``response`` answers the request once they are replicated (or at once without
    records); ``completions`` answer earlier `Pending` requests, at once. ``then``, if
    set, runs after the write with its outcome (an `ErrorCode`, `none` when the
    records are replicated) and its result is processed in turn; a response it gives
    replaces ``response``.
    """

    records: tuple[Rec, ...] = ()
    response: R | Pending | None = None
    completions: tuple[tuple[int, Any], ...] = ()
    then: Callable[[ErrorCode], CoordinatorResult[R, Rec]] | None = None
    producer: tuple[int, int] | None = None


class Effects(Generic[Rec]):
    """Collects what one operation produces as it walks through a state machine."""

    def __init__(self) -> None:
        self.records: list[Rec] = []
        self.completions: list[tuple[int, Any]] = []
        self.then: Callable[[ErrorCode], CoordinatorResult[Any, Rec]] | None = None

    def answer(self, token: int | None, response: Any) -> None:
        """Answer the request waiting on ``token`` (nothing if no request waits)."""
        if token is not None:
            self.completions.append((token, response))

    def result(self, response: R | Pending | None) -> CoordinatorResult[R, Rec]:
        return CoordinatorResult(tuple(self.records), response, tuple(self.completions),
                                 self.then)


class Timer(Protocol):
    """How a shard asks for work later (Kafka's CoordinatorTimer); keys are unique per
    shard and scheduling a key again replaces its operation."""

    def schedule(self, key: str, delay_s: float,
                 operation: Callable[[], CoordinatorResult[Any, Any]]) -> None: ...

    def cancel(self, key: str) -> None: ...

    def time(self) -> float:
        """Monotonic seconds, the time base of ``delay_s``."""
        ...


class Shard(Protocol):
    """A coordinator state machine over one partition of its internal topic."""

    def replay(self, record: Any) -> None: ...

    def on_unloaded(self) -> CoordinatorResult[Any, Any]:
        """The partition moved away: answer every `Pending` request (completions)."""
        ...

    def abandon(self, token: int) -> None:
        """The request waiting on ``token`` went away (its connection closed)."""
        ...


class AppendLog(Protocol):
    """A coordinator's door to its internal topic: append, then wait for replication."""

    def append(self, partition: int, records: list[Entry]) -> ErrorCode:
        """Append as leader; Kafka's error code, `ErrorCode.none` on success."""
        ...

    def append_transactional(self, partition: int, records: list[Entry], producer_id: int,
                             producer_epoch: int) -> ErrorCode:
        """Append as one transactional batch of the producer (its marker ends it)."""
        ...

    async def wait_durable(self, partition: int) -> ErrorCode:
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


class CoordinatorNotActive(Exception):
    """The partition is not loaded here (callers check `status` first)."""


class _PartitionTimer:
    """The `Timer` of one loaded partition; closed (every timer cancelled) on unload."""

    def __init__(self, runtime: CoordinatorRuntime[Any, Any], partition: int) -> None:
        self.runtime = runtime
        self.partition = partition
        self.handles: dict[str, Any] = {}
        self.closed = False

    def schedule(self, key: str, delay_s: float,
                 operation: Callable[[], CoordinatorResult[Any, Any]]) -> None:
        if self.closed:
            return
        self.cancel(key)
        holder: list[Any] = []
        handle = self.runtime.scheduler.call_later(
            delay_s, lambda: self._fire(key, holder[0], operation))
        holder.append(handle)
        self.handles[key] = handle

    def cancel(self, key: str) -> None:
        handle = self.handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def time(self) -> float:
        return float(self.runtime.scheduler.time())

    def close(self) -> None:
        self.closed = True
        for handle in self.handles.values():
            handle.cancel()
        self.handles.clear()

    def _fire(self, key: str, handle: Any, operation: Callable[[], CoordinatorResult[Any, Any]]
              ) -> None:
        if self.closed or self.handles.get(key) is not handle:
            return
        del self.handles[key]
        self.runtime.run_timer(self.partition, operation)


class CoordinatorRuntime(Generic[S, Rec]):
    """Loads, runs and unloads the shards of one coordinator (one per partition)."""

    def __init__(self, append_log: AppendLog, scheduler: Scheduler,
                 serialize: Callable[[Rec], Entry], topic: str) -> None:
        self.log = append_log
        self.scheduler = scheduler
        self.serialize = serialize
        self.topic = topic
        self.loading: set[int] = set()  # led here, not loaded yet (the host sets it)
        self.failed: dict[int, str] = {}  # partition -> why its load failed
        self._shards: dict[int, S] = {}
        self._timers: dict[int, _PartitionTimer] = {}
        self._waiters: dict[tuple[int, int], asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle --------------------------------------------------------------------

    @property
    def shards(self) -> Mapping[int, S]:
        return self._shards

    def status(self, partition: int) -> ErrorCode:
        """As Kafka's runtime: a partition led here but not loaded yet is
        COORDINATOR_LOAD_IN_PROGRESS (clients retry it); one not led here, or whose load
        failed, is NOT_COORDINATOR (clients look the coordinator up again)."""
        if partition in self._shards:
            return ErrorCode.none
        if partition in self.loading:
            return ErrorCode.coordinator_load_in_progress
        return ErrorCode.not_coordinator

    def load(self, partition: int, build: Callable[[Timer], S]) -> bool:
        """Become coordinator for ``partition``: ``build`` replays its log into a new shard.

        Never raises: if ``build`` fails, the partition stays unloaded and recorded in
        `failed` (Kafka's failed shard), with every timer it scheduled cancelled.
        """
        self.unload(partition)
        timer = _PartitionTimer(self, partition)
        try:
            shard = build(timer)
        except Exception as exc:
            log.exception("cannot load %s-%d: its keys answer NOT_COORDINATOR", self.topic,
                          partition)
            timer.close()
            self.failed[partition] = f"{type(exc).__name__}: {exc}"
            return False
        self._timers[partition] = timer
        self._shards[partition] = shard
        return True

    def unload(self, partition: int) -> None:
        """Stop coordinating ``partition``: cancel its timers, answer its pending requests."""
        self.failed.pop(partition, None)
        timer = self._timers.pop(partition, None)
        if timer is not None:
            timer.close()
        shard = self._shards.pop(partition, None)
        if shard is not None:
            self._complete(partition, shard.on_unloaded().completions)
        for key in [k for k in self._waiters if k[0] == partition]:
            future = self._waiters.pop(key)
            if not future.done():  # a shard that forgot a request: fail it, never hang it
                future.set_exception(CoordinatorNotActive(f"{self.topic}-{partition} unloaded"))

    # --- operations -------------------------------------------------------------------

    async def write(self, partition: int, op: Callable[[S], CoordinatorResult[R, Rec]]) -> R:
        """Run ``op`` on the shard; answer once its records are replicated and any
        `Pending` response is completed."""
        shard = self._active(partition)
        result = op(shard)
        waiter, error = self._apply(partition, shard, result)
        response = result.response
        if result.records or result.then is not None:
            followed = await self._after_write(partition, shard, result, error)
            if followed is not None:
                response = followed
        if isinstance(response, Pending):
            assert waiter is not None, "a Pending response registers its waiter"
            try:
                return cast(R, await waiter)
            except asyncio.CancelledError:
                self._abandon(partition, shard, response.token, waiter)
                raise
        return cast(R, response)

    def execute(self, partition: int, op: Callable[[S], CoordinatorResult[R, Rec]]
                ) -> tuple[R, ErrorCode]:
        """Run ``op`` without waiting: (its response, the append error or `ErrorCode.none`). For
        operations nobody waits on (heartbeats, housekeeping); a ``then`` runs later."""
        shard = self._active(partition)
        result = op(shard)
        assert not isinstance(result.response, Pending), "execute cannot wait for an answer"
        _, error = self._apply(partition, shard, result)
        if result.then is not None:
            self._spawn(self._after_write(partition, shard, result, error))
        return cast(R, result.response), error

    def run_timer(self, partition: int, operation: Callable[[], CoordinatorResult[Any, Rec]]
                  ) -> None:
        shard = self._shards.get(partition)
        if shard is None:
            return
        try:
            result = operation()
            _, error = self._apply(partition, shard, result)
        except Exception:
            log.exception("timer operation on %s-%d failed", self.topic, partition)
            return
        if result.then is not None:
            self._spawn(self._after_write(partition, shard, result, error))

    # --- internals --------------------------------------------------------------------

    def _active(self, partition: int) -> S:
        shard = self._shards.get(partition)
        if shard is None:
            raise CoordinatorNotActive(f"{self.topic}-{partition} is not loaded here")
        return shard

    def _apply(self, partition: int, shard: S, result: CoordinatorResult[Any, Rec]
               ) -> tuple[asyncio.Future[Any] | None, ErrorCode]:
        """The synchronous half of a result: register its waiter, append and replay its
        records, deliver its completions. Returns (waiter, append error)."""
        waiter = None
        if isinstance(result.response, Pending):
            waiter = self._register(partition, shard, result.response.token)
        error = ErrorCode.none
        if result.records:
            entries = [self.serialize(r) for r in result.records]
            error = (self.log.append(partition, entries) if result.producer is None
                     else self.log.append_transactional(partition, entries, *result.producer))
            if error == ErrorCode.none:
                for record in result.records:
                    shard.replay(record)
        self._complete(partition, result.completions)
        return waiter, error

    async def _after_write(self, partition: int, shard: S, result: CoordinatorResult[Any, Rec],
                           error: ErrorCode) -> Any:
        """Wait for replication, then run ``then``; returns the response it gives.

        The wait is the only point where the caller can be cancelled (its client went
        away); the rest then runs in the background, so a continuation always runs.
        """
        if result.records and error == ErrorCode.none:
            try:
                error = await self.log.wait_durable(partition)
            except asyncio.CancelledError:
                if result.then is not None:
                    self._spawn(self._after_write(partition, shard, result, ErrorCode.none))
                raise
        if result.then is None:
            return None
        if self._shards.get(partition) is not shard:
            # Unloaded meanwhile: its state is gone; only the answer matters.
            follow = result.then(ErrorCode.not_coordinator)
            return None if isinstance(follow.response, Pending) else follow.response
        follow = result.then(error)
        assert not isinstance(follow.response, Pending), "a continuation answers directly"
        _, follow_error = self._apply(partition, shard, follow)
        followed = None
        if follow.records or follow.then is not None:
            followed = await self._after_write(partition, shard, follow, follow_error)
        return followed if followed is not None else follow.response

    def _register(self, partition: int, shard: S, token: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[(partition, token)] = future
        return future

    def _abandon(self, partition: int, shard: S, token: int, future: asyncio.Future[Any]
                 ) -> None:
        """The request waiting on ``token`` was cancelled (its client went away)."""
        if self._waiters.get((partition, token)) is future:
            del self._waiters[(partition, token)]
        if self._shards.get(partition) is shard:
            shard.abandon(token)

    def _complete(self, partition: int, completions: tuple[tuple[int, Any], ...]) -> None:
        for token, response in completions:
            future = self._waiters.pop((partition, token), None)
            if future is not None and not future.done():
                future.set_result(response)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a continuation nobody awaits; a failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("coordinator continuation failed", exc_info=task.exception())


"""The transaction coordinator: transactional ids as a fold over `__transaction_state`.

Each transactional id belongs to one partition of `__transaction_state` (Kafka's hash of
the id), and the broker leading that partition is its coordinator. On becoming leader
the host `load`s the partition into a `TransactionCoordinatorShard` with the partition's
leader epoch as the *coordinator epoch* (carried in every marker, so a partition leader
can refuse markers of a deposed coordinator); on losing leadership it `unload`s it.

This class is the face the handlers see, and it owns the one asynchronous part of a
transaction, Kafka's TransactionMarkerChannelManager: once a PrepareCommit/PrepareAbort
record is replicated, it writes a marker to every partition of the transaction through
the `MarkerWriter` seam (retrying a partition whose leader moves or is not ready), then
writes CompleteCommit/CompleteAbort. A coordinator that loads a partition finds the
prepared transactions its predecessor left and finishes them the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode

from strom.coordinator.runtime import (
    CoordinatorNotActive,
    CoordinatorResult,
    CoordinatorRuntime,
    Scheduler,
    Timer,
)
from strom.coordinator.transaction import records
from strom.coordinator.transaction.config import (
    TRANSACTION_TOPIC,
    MarkerWriter,
    TxnConfig,
    TxnLog,
    txn_partition_for,
)
from strom.coordinator.transaction.loader import load_partition
from strom.coordinator.transaction.model import TopicPartition, TransactionMetadata
from strom.coordinator.transaction.shard import (
    InitResult,
    MarkerJob,
    PartitionErrors,
    TransactionCoordinatorShard,
)

log = logging.getLogger(__name__)
R = TypeVar("R")
E = ErrorCode
Operation = Callable[[TransactionCoordinatorShard], CoordinatorResult[R, records.TxnRecord]]
RETRY_MIN_S, RETRY_MAX_S = 0.05, 1.0
# Marker errors after which this coordinator stops: another one has taken over.
FENCED = frozenset({E.invalid_producer_epoch, E.producer_fenced,
                    E.transaction_coordinator_fenced})
# The partition cannot take the marker at all: it is left out, as Kafka does.
SKIPPED = frozenset({E.unsupported_for_message_format, E.invalid_request})


class TransactionCoordinator:
    def __init__(self, txn_log: TxnLog, config: TxnConfig, scheduler: Scheduler,
                 clock: Callable[[], int], new_producer_id: Callable[[], int],
                 markers: MarkerWriter, partition_exists: Callable[[str, int], bool]) -> None:
        self.log = txn_log
        self.config = config
        self.clock = clock
        self.new_producer_id = new_producer_id
        self.markers = markers
        self.partition_exists = partition_exists
        self.runtime: CoordinatorRuntime[TransactionCoordinatorShard, records.TxnRecord] = (
            CoordinatorRuntime(txn_log, scheduler, records.serialize, TRANSACTION_TOPIC))
        self.skipped_records: dict[int, int] = {}  # partition -> records a load skipped
        self._timed_out_unloaded = 0  # timeout aborts of shards since unloaded
        self._inflight: set[tuple[int, MarkerJob]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- ownership --------------------------------------------------------------------

    @property
    def owned(self) -> set[int]:
        return set(self.runtime.shards)

    @property
    def failed(self) -> dict[int, str]:
        return self.runtime.failed

    @property
    def loading(self) -> set[int]:
        return self.runtime.loading

    @loading.setter
    def loading(self, partitions: set[int]) -> None:
        self.runtime.loading = set(partitions)

    def partition_for(self, transactional_id: str) -> int:
        return txn_partition_for(transactional_id, self.config.num_partitions)

    def ownership_error(self, transactional_id: str) -> ErrorCode:
        return self.runtime.status(self.partition_for(transactional_id))

    def coordinator_epoch(self, partition: int) -> int:
        shard = self.runtime.shards.get(partition)
        return -1 if shard is None else shard.coordinator_epoch

    def load(self, partition: int, coordinator_epoch: int) -> bool:
        """Become coordinator for ``partition`` (never raises; see the runtime), then
        finish the transactions a previous coordinator prepared."""
        loaded = self.runtime.load(partition,
                                   lambda timer: self._build(partition, coordinator_epoch, timer))
        if loaded:
            self._kick(partition)
        return loaded

    def _build(self, partition: int, coordinator_epoch: int, timer: Timer
               ) -> TransactionCoordinatorShard:
        shard = TransactionCoordinatorShard(partition, self.config, timer, self.clock,
                                            self.new_producer_id, coordinator_epoch,
                                            lambda: self._kick(partition))
        read, skipped = load_partition(partition, self.log.replay(partition), shard.replay)
        if skipped:
            self.skipped_records[partition] = self.skipped_records.get(partition, 0) + skipped
        shard.on_loaded()
        if read:
            log.info("loaded %s-%d (coordinator epoch %d): %d record(s), %d transactional "
                     "id(s)", TRANSACTION_TOPIC, partition, coordinator_epoch, read,
                     len(shard.txns))
        return shard

    def unload(self, partition: int) -> None:
        shard = self.runtime.shards.get(partition)
        if shard is not None:
            self._timed_out_unloaded += shard.timed_out
        self.runtime.unload(partition)

    @property
    def timed_out(self) -> int:
        """Transactions aborted here for their timeout since the broker started."""
        return self._timed_out_unloaded + sum(s.timed_out for s in self.runtime.shards.values())

    async def _write(self, txn_id: str, op: Operation[R], refused: Callable[[ErrorCode], R]
                     ) -> R:
        error = self.ownership_error(txn_id)
        if error != E.none:
            return refused(error)
        try:
            return await self.runtime.write(self.partition_for(txn_id), op)
        except CoordinatorNotActive:
            return refused(E.not_coordinator)

    # --- operations -------------------------------------------------------------------

    async def init_producer_id(self, txn_id: str, timeout_ms: int,
                               expected: tuple[int, int] | None) -> InitResult:
        return await self._write(
            txn_id, lambda shard: shard.init_producer_id(txn_id, timeout_ms, expected),
            InitResult)

    async def add_partitions(self, txn_id: str, producer_id: int, epoch: int,
                             partitions: Iterable[TopicPartition]) -> ErrorCode:
        wanted = list(partitions)
        return await self._write(
            txn_id, lambda shard: shard.add_partitions(txn_id, producer_id, epoch, wanted),
            lambda error: error)

    async def add_offsets(self, txn_id: str, producer_id: int, epoch: int, group_id: str
                          ) -> ErrorCode:
        """AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the
        transaction, so the COMMIT marker reaches the offsets committed in it."""
        from strom.coordinator.group.config import partition_for

        offsets = ("__consumer_offsets", partition_for(group_id, self.config.offsets_partitions))
        return await self.add_partitions(txn_id, producer_id, epoch, [offsets])

    def verify(self, txn_id: str, producer_id: int, epoch: int,
               partitions: Iterable[TopicPartition]) -> PartitionErrors:
        wanted = list(partitions)
        shard = self.runtime.shards.get(self.partition_for(txn_id))
        if shard is None:
            return dict.fromkeys(wanted, self.ownership_error(txn_id))
        return shard.verify_partitions(txn_id, producer_id, epoch, wanted)

    async def end_transaction(self, txn_id: str, producer_id: int, epoch: int, commit: bool
                              ) -> ErrorCode:
        return await self._write(
            txn_id, lambda shard: shard.end_transaction(txn_id, producer_id, epoch, commit),
            lambda error: error)

    async def end_transaction_v2(self, txn_id: str, producer_id: int, epoch: int,
                                 commit: bool) -> InitResult:
        """EndTxn v5+ (transaction version 2): the answer names the id and epoch to go on."""
        return await self._write(
            txn_id, lambda shard: shard.end_transaction_v2(txn_id, producer_id, epoch, commit),
            InitResult)

    # --- reads ------------------------------------------------------------------------

    def describe(self, txn_id: str) -> tuple[ErrorCode, TransactionMetadata | None]:
        error = self.ownership_error(txn_id)
        if error != E.none:
            return error, None
        meta = self.runtime.shards[self.partition_for(txn_id)].describe(txn_id)
        return (E.none, meta) if meta is not None else (E.transactional_id_not_found, None)

    def transactions(self) -> list[TransactionMetadata]:
        return [m for shard in self.runtime.shards.values() for m in shard.list()]

    # --- markers (Kafka's TransactionMarkerChannelManager) ----------------------------

    def _kick(self, partition: int) -> None:
        """Start sending the markers every prepared transaction of ``partition`` owes."""
        shard = self.runtime.shards.get(partition)
        if shard is None:
            return
        for job in shard.marker_jobs():
            key = (partition, job)
            if key in self._inflight:
                continue
            self._inflight.add(key)
            task = asyncio.get_running_loop().create_task(self._finish(partition, shard, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(self._done(key))

    def _done(self, key: tuple[int, MarkerJob]) -> Callable[[asyncio.Task[Any]], None]:
        return lambda _task: self._inflight.discard(key)

    async def _finish(self, partition: int, shard: TransactionCoordinatorShard, job: MarkerJob
                      ) -> None:
        try:
            if not await self._durable(partition, shard):
                return
            if not await self._markers(partition, shard, job):
                return  # fenced or moved: the next coordinator finishes it
            await self.runtime.write(partition, lambda s: s.complete(job))
        except CoordinatorNotActive:
            return
        except Exception:
            log.exception("cannot finish transaction %s", job.transactional_id)

    async def _durable(self, partition: int, shard: TransactionCoordinatorShard) -> bool:
        """Wait until the Prepare record is replicated (it may not have been when the
        client was answered: a replica had died and the ISR had not shrunk yet); no
        marker may be written for a decision a new leader could lose. False if moved."""
        while self.runtime.shards.get(partition) is shard:
            if await self.log.wait_durable(partition) == E.none:
                return True
            await asyncio.sleep(RETRY_MAX_S)
        return False

    async def _markers(self, partition: int, shard: TransactionCoordinatorShard, job: MarkerJob
                       ) -> bool:
        """Write every marker of ``job``, retrying those that do not land (a leader moved,
        replicas lag) until all do; False if this coordinator must stop."""
        remaining = set(job.partitions)
        delay = RETRY_MIN_S
        while remaining:
            if self.runtime.shards.get(partition) is not shard:
                return False
            results = await self._send(sorted(remaining), job, shard.coordinator_epoch)
            for tp, error in results.items():
                verdict = self._verdict(job, tp, error)
                if verdict is None:
                    continue
                if not verdict:
                    return False
                remaining.discard(tp)
            if remaining:
                if delay == RETRY_MIN_S:  # once per transaction: a leader moving is routine
                    log.info("markers for %s not written yet to %s; retrying",
                             job.transactional_id, sorted(remaining))
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        return True

    async def _send(self, partitions: list[TopicPartition], job: MarkerJob,
                    coordinator_epoch: int) -> dict[TopicPartition, ErrorCode]:
        """One attempt at every marker: batched per broker when the writer can (Kafka's
        channel sends one WriteTxnMarkers per broker), else partition by partition."""
        batch = getattr(self.markers, "write_markers", None)
        if batch is not None:
            result: dict[TopicPartition, ErrorCode] = await batch(
                partitions, job.producer_id, job.producer_epoch, job.committed,
                coordinator_epoch)
            return result
        codes = await asyncio.gather(*(
            self.markers.write_marker(t, p, job.producer_id, job.producer_epoch, job.committed,
                                      coordinator_epoch) for t, p in partitions))
        return dict(zip(partitions, codes, strict=True))

    def _verdict(self, job: MarkerJob, tp: TopicPartition, error: ErrorCode) -> bool | None:
        """True: the partition is done; False: this coordinator stops; None: retry it."""
        if error == E.none or error in SKIPPED:
            return True
        if error in FENCED:
            log.warning("marker for %s to %s-%d refused (%s): this coordinator stops",
                        job.transactional_id, tp[0], tp[1], error.name)
            return False
        if error == E.unknown_topic_or_partition and not self.partition_exists(*tp):
            return True  # the topic was deleted: nothing left to mark
        return None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

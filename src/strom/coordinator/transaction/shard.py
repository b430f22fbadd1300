"""One `__transaction_state` partition's transactional ids (Kafka's TransactionStateManager
and the decisions of its TransactionCoordinator, for the ids hashed to the partition).

The state is a fold of the partition: `replay(record)` applies one record, for the
loader and for every record an operation has just appended. Operations are synchronous
and return a `CoordinatorResult` (records to write, the response); they never wait.

What happens between a PrepareCommit/PrepareAbort record and its CompleteCommit/
CompleteAbort record (markers written to every partition of the transaction) is the
coordinator's asynchronous part: the shard keeps the ids it owes markers for in
`preparing` (maintained by `replay`, so a load finds the ones a previous coordinator left
unfinished) and calls ``on_prepared`` once such a record is replicated; the coordinator
then sends the markers and runs `complete` to write the final record.

Transaction version 1 semantics (Kafka's default for clients that do not negotiate
transaction version 2): the producer epoch is bumped by InitProducerId, by fencing
and by the abort of a timed-out transaction, never by EndTxn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from kio.schema.errors import ErrorCode

from strom.coordinator.runtime import CoordinatorResult, Timer
from strom.coordinator.transaction import records
from strom.coordinator.transaction.config import TxnConfig
from strom.coordinator.transaction.model import (
    AT_REST,
    COMPLETE,
    MAX_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    PREPARING,
    VALID_PREVIOUS,
    TopicPartition,
    TransactionMetadata,
    TxnState,
    epoch_exhausted,
)

log = logging.getLogger(__name__)
S = TxnState
Result = CoordinatorResult
E = ErrorCode


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True)
class MarkerJob:
    """Markers owed for one prepared transaction, and the final state they lead to."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    committed: bool
    partitions: frozenset[TopicPartition]


PartitionErrors = dict[TopicPartition, ErrorCode]


class TransactionCoordinatorShard:
    """Transactional ids of one partition: replay, operations and reads."""

    def __init__(self, partition: int, config: TxnConfig, timer: Timer,
                 clock: Callable[[], int], new_producer_id: Callable[[], int],
                 coordinator_epoch: int, on_prepared: Callable[[], None]) -> None:
        self.partition = partition
        self.config = config
        self.timer = timer
        self.clock = clock
        self.new_producer_id = new_producer_id
        self.coordinator_epoch = coordinator_epoch
        self.on_prepared = on_prepared
        self.txns: dict[str, TransactionMetadata] = {}
        self.preparing: set[str] = set()
        self.timed_out = 0  # transactions this shard aborted for their timeout (metrics)

    # --- the fold ---------------------------------------------------------------------

    def replay(self, record: records.TxnRecord) -> None:
        txn_id = record.transactional_id
        if record.value is None:
            self.txns.pop(txn_id, None)
            self.preparing.discard(txn_id)
            return
        meta = records.to_metadata(record)
        self.txns[txn_id] = meta
        if meta.state in PREPARING:
            self.preparing.add(txn_id)
        else:
            self.preparing.discard(txn_id)

    def on_loaded(self) -> None:
        """Start the housekeeping timers (timed-out transactions, expired ids)."""
        self._schedule_abort()
        self._schedule_expiry()

    def on_unloaded(self) -> Result[None, records.TxnRecord]:
        return Result()  # nothing waits on a shard: every answer is direct

    def abandon(self, token: int) -> None:
        pass

    # --- helpers ----------------------------------------------------------------------

    def _write(self, meta: TransactionMetadata, response: object,
               notify: bool = False) -> Result[object, records.TxnRecord]:
        """Write ``meta`` as the id's new state (checked against Kafka's transitions)."""
        current = self.txns.get(meta.transactional_id)
        if current is not None and current.state not in VALID_PREVIOUS[meta.state]:
            log.error("refused transition of %s from %s to %s", meta.transactional_id,
                      current.state.display, meta.state.display)
            return Result(response=response if not isinstance(response, InitResult)
                          else InitResult(E.unknown_server_error))
        def then(error: ErrorCode) -> Result[object, records.TxnRecord]:
            if notify:  # written, if not yet replicated: the markers wait for that
                self.on_prepared()
            return Result(response=response if error == E.none else _failed(response, error))
        return Result((records.of(meta),), response, then=then)

    def _next(self, meta: TransactionMetadata, **changes: object) -> TransactionMetadata:
        changes.setdefault("partitions", set(meta.partitions))
        return replace(meta, last_update_ms=self.clock(), **changes)  # type: ignore[arg-type]

    # --- InitProducerId ---------------------------------------------------------------

    def init_producer_id(self, txn_id: str, timeout_ms: int, expected: tuple[int, int] | None
                         ) -> Result[InitResult, records.TxnRecord]:
        if not 0 < timeout_ms <= self.config.max_timeout_ms:
            return Result(response=InitResult(E.invalid_transaction_timeout))
        meta = self.txns.get(txn_id)
        if meta is None:
            meta = TransactionMetadata(txn_id, self.new_producer_id(), NO_PRODUCER_EPOCH,
                                       timeout_ms, S.EMPTY, last_update_ms=self.clock())
        if expected is not None and not _valid_expected(meta, expected):
            return Result(response=InitResult(E.producer_fenced))
        if meta.state in PREPARING or meta.state == S.PREPARE_EPOCH_FENCE:
            return Result(response=InitResult(E.concurrent_transactions))
        if meta.state == S.ONGOING:
            return self._fence(meta)
        if meta.state not in AT_REST:
            return Result(response=InitResult(E.concurrent_transactions))
        if epoch_exhausted(meta.producer_epoch) and (
                expected is None or expected[1] == meta.producer_epoch):
            return self._rotate(meta, timeout_ms, expected is not None)
        return self._bump(meta, timeout_ms, expected)

    def _bump(self, meta: TransactionMetadata, timeout_ms: int,
              expected: tuple[int, int] | None) -> Result[InitResult, records.TxnRecord]:
        bumped = meta.producer_epoch + 1
        if expected is None:
            epoch, last = bumped, NO_PRODUCER_EPOCH
        elif meta.producer_epoch == NO_PRODUCER_EPOCH or expected[1] == meta.producer_epoch:
            epoch, last = bumped, meta.producer_epoch
        elif expected[1] == meta.last_producer_epoch:
            # A retry of a bump whose answer was lost: the same epoch again, no write.
            return Result(response=InitResult(E.none, meta.producer_id, meta.producer_epoch))
        else:
            return Result(response=InitResult(E.producer_fenced))
        new = self._next(meta, producer_epoch=epoch, last_producer_epoch=last,
                         timeout_ms=timeout_ms, state=S.EMPTY, partitions=set(), start_ms=-1)
        return self._write(new, InitResult(E.none, meta.producer_id, epoch))  # type: ignore[return-value]

    def _rotate(self, meta: TransactionMetadata, timeout_ms: int, record_last: bool
                ) -> Result[InitResult, records.TxnRecord]:
        """The epoch is exhausted: a new producer id at epoch 0."""
        producer_id = self.new_producer_id()
        new = self._next(meta, producer_id=producer_id, producer_epoch=0,
                         previous_producer_id=meta.producer_id,
                         last_producer_epoch=meta.producer_epoch if record_last else -1,
                         timeout_ms=timeout_ms, state=S.EMPTY, partitions=set(), start_ms=-1)
        return self._write(new, InitResult(E.none, producer_id, 0))  # type: ignore[return-value]

    def _fence(self, meta: TransactionMetadata) -> Result[InitResult, records.TxnRecord]:
        """A new producer instance while a transaction is open: abort it under a bumped
        epoch (fencing the old instance) and tell the new one to retry."""
        return self._abort_fenced(meta, InitResult(E.concurrent_transactions))  # type: ignore[return-value]

    def _abort_fenced(self, meta: TransactionMetadata, response: object
                      ) -> Result[object, records.TxnRecord]:
        epoch = meta.producer_epoch if epoch_exhausted(meta.producer_epoch) else (
            meta.producer_epoch + 1)
        new = self._next(meta, producer_epoch=epoch, last_producer_epoch=meta.producer_epoch,
                         state=S.PREPARE_ABORT)
        return self._write(new, response, notify=True)

    # --- AddPartitionsToTxn / AddOffsetsToTxn -----------------------------------------

    def _check_producer(self, txn_id: str, producer_id: int, epoch: int
                        ) -> tuple[ErrorCode, TransactionMetadata | None]:
        meta = self.txns.get(txn_id)
        if meta is None or meta.producer_id != producer_id:
            return E.invalid_producer_id_mapping, None
        if meta.producer_epoch != epoch:
            return E.producer_fenced, None
        return E.none, meta

    def add_partitions(self, txn_id: str, producer_id: int, epoch: int,
                       partitions: Iterable[TopicPartition]
                       ) -> Result[ErrorCode, records.TxnRecord]:
        """Add partitions to the transaction (starting it if none is open)."""
        error, meta = self._check_producer(txn_id, producer_id, epoch)
        if meta is None:
            return Result(response=error)
        if meta.state in PREPARING or meta.state == S.PREPARE_EPOCH_FENCE:
            return Result(response=E.concurrent_transactions)
        wanted = set(partitions)
        if meta.state == S.ONGOING and wanted <= meta.partitions:
            return Result(response=E.none)
        if meta.state not in (S.ONGOING, *AT_REST):
            return Result(response=E.invalid_txn_state)
        start = meta.start_ms if meta.state == S.ONGOING else self.clock()
        new = self._next(meta, state=S.ONGOING, start_ms=start)
        new.partitions |= wanted
        return self._write(new, E.none)  # type: ignore[return-value]

    def verify_partitions(self, txn_id: str, producer_id: int, epoch: int,
                          partitions: Iterable[TopicPartition]) -> PartitionErrors:
        """KIP-890 part 1: is each partition part of this producer's open transaction?"""
        wanted = list(partitions)
        error, meta = self._check_producer(txn_id, producer_id, epoch)
        if meta is None:
            return dict.fromkeys(wanted, error)
        if meta.state in PREPARING:
            return dict.fromkeys(wanted, E.concurrent_transactions)
        # Kafka looks only at the partitions: they are cleared when the transaction ends
        return {tp: E.none if tp in meta.partitions else E.transaction_abortable
                for tp in wanted}

    # --- EndTxn -----------------------------------------------------------------------

    def end_transaction(self, txn_id: str, producer_id: int, epoch: int, commit: bool
                        ) -> Result[ErrorCode, records.TxnRecord]:
        """EndTxn from the client: write PrepareCommit/PrepareAbort (markers follow)."""
        error, meta = self._check_producer(txn_id, producer_id, epoch)
        if meta is None:
            return Result(response=error)
        state = meta.state
        if state == S.ONGOING:
            new = self._next(meta, state=S.PREPARE_COMMIT if commit else S.PREPARE_ABORT)
            return self._write(new, E.none, notify=True)  # type: ignore[return-value]
        wanted_complete = S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT
        wanted_prepare = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
        if state == wanted_complete:
            return Result(response=E.none)  # a retry of an EndTxn that completed
        if state == wanted_prepare or state == S.PREPARE_EPOCH_FENCE:
            return Result(response=E.concurrent_transactions)
        return Result(response=E.invalid_txn_state)

    def end_transaction_v2(self, txn_id: str, producer_id: int, epoch: int, commit: bool
                           ) -> Result[InitResult, records.TxnRecord]:
        """EndTxn v5+ (transaction version 2, KIP-890 part 2): every end bumps the epoch,
        so a late write of the ended transaction is fenced at the partition; the answer
        carries the producer id and epoch the client continues with. A retry (its epoch
        one below, or the last of an exhausted id) is recognised and answered again."""
        meta = self.txns.get(txn_id)
        if meta is None:
            return Result(response=InitResult(E.invalid_producer_id_mapping))
        retry_overflow = (meta.previous_producer_id == producer_id and meta.producer_epoch == 0
                          and epoch == MAX_EPOCH - 1)
        retry_bump = meta.producer_epoch == epoch + 1
        if meta.producer_id != producer_id and not retry_overflow:
            return Result(response=InitResult(E.invalid_producer_id_mapping))
        if not _valid_v2_epoch(meta, epoch, retry_bump, retry_overflow):
            return Result(response=InitResult(E.producer_fenced))
        target = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
        return self._end_v2(meta, target, retry_bump or retry_overflow)

    def _end_v2(self, meta: TransactionMetadata, target: TxnState, retry: bool
                ) -> Result[InitResult, records.TxnRecord]:
        state = meta.state
        current = InitResult(E.none, meta.producer_id, meta.producer_epoch)
        if state == S.ONGOING:
            return self._prepare_v2(meta, target, meta.partitions)
        if state in PREPARING:
            return Result(response=InitResult(
                E.concurrent_transactions if state == target else E.invalid_txn_state))
        completed = S.COMPLETE_COMMIT if target == S.PREPARE_COMMIT else S.COMPLETE_ABORT
        if retry:
            return Result(response=current if state == completed else InitResult(
                E.invalid_txn_state))
        if target == S.PREPARE_ABORT and state in AT_REST:
            return self._prepare_v2(meta, target, set())  # an abort with nothing added
        return Result(response=InitResult(E.invalid_txn_state))

    def _prepare_v2(self, meta: TransactionMetadata, target: TxnState,
                    partitions: set[TopicPartition]) -> Result[InitResult, records.TxnRecord]:
        next_id = self.new_producer_id() if epoch_exhausted(meta.producer_epoch) else (
            NO_PRODUCER_ID)
        epoch = meta.producer_epoch + 1
        new = self._next(meta, state=target, producer_epoch=epoch,
                         last_producer_epoch=meta.producer_epoch, next_producer_id=next_id,
                         client_transaction_version=2, partitions=set(partitions))
        answer = (InitResult(E.none, next_id, 0) if next_id != NO_PRODUCER_ID
                  else InitResult(E.none, meta.producer_id, epoch))
        return self._write(new, answer, notify=True)  # type: ignore[return-value]

    def marker_jobs(self) -> list[MarkerJob]:
        """Every prepared transaction whose markers are owed."""
        jobs = []
        for txn_id in sorted(self.preparing):
            meta = self.txns[txn_id]
            jobs.append(MarkerJob(txn_id, meta.producer_id, meta.producer_epoch,
                                  meta.state == S.PREPARE_COMMIT, frozenset(meta.partitions)))
        return jobs

    def complete(self, job: MarkerJob) -> Result[ErrorCode, records.TxnRecord]:
        """Every marker of ``job`` is written: CompleteCommit/CompleteAbort."""
        meta = self.txns.get(job.transactional_id)
        if (meta is None or meta.state not in PREPARING or meta.producer_id != job.producer_id
                or meta.producer_epoch != job.producer_epoch):
            return Result(response=E.none)  # completed already (a duplicate job)
        state = S.COMPLETE_COMMIT if meta.state == S.PREPARE_COMMIT else S.COMPLETE_ABORT
        new = self._next(meta, state=state, partitions=set())
        if meta.next_producer_id != NO_PRODUCER_ID:  # TV2 past an exhausted epoch
            new = replace(new, producer_id=meta.next_producer_id, producer_epoch=0,
                          previous_producer_id=meta.producer_id, next_producer_id=NO_PRODUCER_ID,
                          last_producer_epoch=NO_PRODUCER_EPOCH)
        return self._write(new, E.none)  # type: ignore[return-value]

    # --- timers -----------------------------------------------------------------------

    def _schedule_abort(self) -> None:
        self.timer.schedule("abort-timed-out", self.config.abort_interval_ms / 1000,
                            self.abort_timed_out)

    def _schedule_expiry(self) -> None:
        self.timer.schedule("expire-transactional-ids",
                            self.config.remove_expired_interval_ms / 1000, self.expire_ids)

    def abort_timed_out(self) -> Result[None, records.TxnRecord]:
        """Abort every transaction open longer than its timeout, fencing its producer
        with an epoch bump (Kafka's abortTimedOutTransactions)."""
        self._schedule_abort()
        now = self.clock()
        out: list[records.TxnRecord] = []
        for meta in list(self.txns.values()):
            if meta.state == S.ONGOING and meta.start_ms + meta.timeout_ms < now:
                log.info("aborting transaction %s of producer %d: open longer than %d ms",
                         meta.transactional_id, meta.producer_id, meta.timeout_ms)
                out.extend(self._abort_fenced(meta, None).records)
                self.timed_out += 1
        return self._batch(out)

    def expire_ids(self) -> Result[None, records.TxnRecord]:
        """Forget ids idle for transactional.id.expiration.ms (a tombstone each)."""
        self._schedule_expiry()
        now = self.clock()
        out = [records.tombstone(m.transactional_id) for m in self.txns.values()
               if m.state in AT_REST and m.last_update_ms + self.config.id_expiration_ms <= now]
        if out:
            log.info("expiring %d transactional id(s) of %d", len(out), self.partition)
        return self._batch(out)

    def _batch(self, out: list[records.TxnRecord]) -> Result[None, records.TxnRecord]:
        if not out:
            return Result()

        def then(error: ErrorCode) -> Result[None, records.TxnRecord]:
            self.on_prepared()  # the markers wait until the records are replicated
            return Result()
        return Result(tuple(out), None, then=then)

    # --- reads ------------------------------------------------------------------------

    def describe(self, txn_id: str) -> TransactionMetadata | None:
        return self.txns.get(txn_id)

    def list(self) -> Iterable[TransactionMetadata]:
        return self.txns.values()


def _valid_expected(meta: TransactionMetadata, expected: tuple[int, int]) -> bool:
    """KIP-360: whom a producer that names its last id and epoch may replace (Kafka's
    isValidProducerId): a fresh id, the current id, or the previous id of an exhausted
    epoch (a retry after a rotation whose answer was lost)."""
    producer_id, epoch = expected
    return (meta.producer_epoch == NO_PRODUCER_EPOCH or producer_id == meta.producer_id
            or (producer_id == meta.previous_producer_id and epoch_exhausted(epoch)))


def _valid_v2_epoch(meta: TransactionMetadata, epoch: int, retry_bump: bool,
                    retry_overflow: bool) -> bool:
    """Kafka's TV2 rule: the same epoch continues, the epoch below is a retry of an end."""
    if meta.state in PREPARING:
        return retry_bump
    if meta.state in COMPLETE:
        return retry_bump or retry_overflow or epoch == meta.producer_epoch
    return epoch == meta.producer_epoch


def _failed(response: object, error: ErrorCode) -> object:
    """The answer when the write did not replicate: the write's error, as Kafka maps
    append failures for transactional requests (clients retry NOT_COORDINATOR)."""
    mapped = E.not_coordinator if error in (E.not_coordinator, E.coordinator_not_available,
                                            E.not_leader_or_follower) else error
    if isinstance(response, InitResult):
        return InitResult(mapped)
    return mapped


__all__ = ["COMPLETE", "InitResult", "MarkerJob", "TransactionCoordinatorShard"]

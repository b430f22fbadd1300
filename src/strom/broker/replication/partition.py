"""One partition as the broker sees it: its log plus leadership, watermarks and producers.

Replication (leader side): followers fetch with their replica id; each fetch offset is
that follower's log end. The high watermark is the smallest log end over the in-sync
replicas, so a record is visible to consumers (and an acks=all produce is answered) only
once every in-sync replica has it. A follower joins the ISR when it reaches the high
watermark and is proposed for removal after `replica.lag.time.max.ms` without catching
up to the leader's log end. ISR changes go through the metadata store (version-checked);
the partition adopts them when the new metadata image arrives.

The partition validates a produce payload (framing, CRC, size, timestamps) before anything
touches the log, so a rejected request leaves no trace. Everything kept beside the log on
disk (the leader-epoch cache, producer state and its snapshots, offset semantics) belongs
to `strom.storage.partition_log.PartitionLog`, which this class drives; the partition
keeps leadership, the high watermark, the ISR and the waiters. Handlers and the replica
fetcher use the narrow methods below, never the log itself. Long-polling fetches wait on
`wait_for_append`, which is woken by every append: no loop polls the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple
from uuid import UUID

from kio.schema.errors import ErrorCode

from strom.protocol.records import BatchHeader
from strom.storage import Log, LogConfig, OffsetOutOfRange
from strom.storage.errors import CorruptLog, KafkaStorageError, StorageError
from strom.storage.partition_log import (
    Duplicate,
    PartitionLog,
    ProducerView,
    SequenceError,
    TimestampOffset,
)
from strom.storage.validator import InvalidProduce, RecordPolicy, validate_client_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionPolicy:
    """Topic settings the partition enforces itself (storage owns the rest)."""

    records: RecordPolicy = field(default_factory=RecordPolicy)
    min_insync_replicas: int = 1


@dataclass(frozen=True, slots=True)
class AppendResult:
    error: ErrorCode = ErrorCode.none
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    message: str | None = None
    record_errors: tuple[tuple[int, str], ...] = ()
    records: int = 0  # records appended (or acknowledged again, for a retry), for metrics


@dataclass(frozen=True, slots=True)
class ReadResult:
    error: ErrorCode
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: bytes
    # read_committed: (producer id, first offset) of aborted transactions in the range
    aborted: tuple[tuple[int, int], ...] = ()


class TransactionStats(NamedTuple):
    open_transactions: int
    aborted_transactions: int
    last_stable_offset: int


@dataclass
class FollowerState:
    log_end_offset: int = -1
    last_caught_up_ms: int = 0
    fetched: bool = False  # fetched since the last ISR proposal: only such a follower joins


class Partition:
    def __init__(
        self,
        topic: str,
        index: int,
        topic_id: UUID,
        log_: Log,
        policy: PartitionPolicy,
        clock: Callable[[], int],
        leader_epoch: int = 0,
    ) -> None:
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.log = log_  # the segments, for read-only views (metrics); writes go to _plog
        self._plog = PartitionLog(log_)  # rebuilds producer state; never fails for content
        self.policy = policy
        self.leader_epoch = leader_epoch
        self._clock = clock
        self._waiters: list[asyncio.Future[None]] = []
        self.high_watermark = log_.log_end_offset
        self.leader_id = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.partition_epoch = 0
        self.is_leader = False  # the replica manager assigns the role from metadata
        self.followers: dict[int, FollowerState] = {}
        self._hw_waiters: list[tuple[int, asyncio.Future[bool]]] = []

    # --- the log's offsets -------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        return self._plog.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self._plog.log_start_offset

    @property
    def latest_epoch(self) -> int:
        """The newest leader epoch in this replica's log (-1 if none)."""
        return self._plog.latest_epoch

    # --- produce ----------------------------------------------------------------------

    def append(self, payload: bytes | memoryview | None) -> AppendResult:
        """Append a client's batch after validating every record (see storage.validator).

        A writable ``payload`` (a slice of the request's frame) is patched and written as
        it is; anything else is copied into a buffer that can be."""
        buf = (payload if isinstance(payload, memoryview) and not payload.readonly
               else bytearray(payload or b""))
        try:
            headers = [validate_client_batch(buf, self.policy.records, self._clock())]
        except InvalidProduce as exc:
            log.info("rejected batch for %s-%d: %s", self.topic, self.index, exc)
            return AppendResult(exc.error, message=str(exc), record_errors=exc.record_errors)
        return self.append_validated(buf, headers)

    def append_validated(self, buf: bytearray | memoryview,
                         headers: list[BatchHeader]) -> AppendResult:
        """Append batches this broker built or already checked (internal topics)."""
        log_append_time = self.policy.records.log_append_time
        append_time = self._clock() if log_append_time else None
        try:
            outcome = self._plog.append_as_leader(buf, headers, leader_epoch=self.leader_epoch,
                                                  log_append_time_ms=append_time)
        except SequenceError as exc:
            return AppendResult(exc.error, message=str(exc))
        except KafkaStorageError as exc:  # disk full or failing: the log dir is offline
            return AppendResult(ErrorCode.kafka_storage_error, message=str(exc))
        if isinstance(outcome, Duplicate):  # a retry: answered as first written
            return AppendResult(base_offset=outcome.first_offset,
                                log_append_time=outcome.timestamp if log_append_time else -1,
                                log_start_offset=self.log_start_offset,
                                records=sum(h.records_count for h in headers))
        self.maybe_advance_high_watermark()
        self._wake_waiters()
        return AppendResult(
            base_offset=outcome.first_offset,
            log_append_time=append_time if append_time is not None else -1,
            log_start_offset=self.log_start_offset,
            records=sum(h.records_count for h in headers),
        )

    def producer_snapshot_writer(self) -> Callable[[], None] | None:
        """Producer state captured now; the writer fsyncs it off the loop (see PartitionLog)."""
        return self._plog.producer_snapshot_writer()

    def producer_last_offsets(self) -> dict[int, int]:
        """For the log cleaner (see PartitionLog)."""
        return self._plog.producer_last_offsets()

    def remove_expired_producers(self, now_ms: int, expiration_ms: int) -> int:
        """Forget idle idempotent producers (`producer.id.expiration.ms`, see PartitionLog)."""
        return self._plog.remove_expired_producers(now_ms, expiration_ms)

    # --- replication --------------------------------------------------------------------

    def become_leader(self, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...],
                      partition_epoch: int, me: int, high_watermark: int | None = None) -> None:
        now = self._clock()
        new_term = not self.is_leader or leader_epoch != self.leader_epoch
        self.is_leader = True
        self.leader_id = me
        self._plog.take_first_lost_offset()  # a leader's log is the reference, gap and all
        self.leader_epoch = leader_epoch
        self.replicas, self.isr, self.partition_epoch = replicas, isr, partition_epoch
        if new_term:
            self.followers = {r: FollowerState(-1, now) for r in replicas if r != me}
            if high_watermark is not None:
                self.high_watermark = min(high_watermark, self.log_end_offset)
        self.maybe_advance_high_watermark()

    def become_follower(self, leader: int, leader_epoch: int, replicas: tuple[int, ...],
                        isr: tuple[int, ...], partition_epoch: int,
                        high_watermark: int | None = None) -> None:
        self.is_leader = False
        self.leader_id = leader
        self.leader_epoch = leader_epoch
        self.replicas, self.isr, self.partition_epoch = replicas, isr, partition_epoch
        self.followers = {}
        lost = self._plog.take_first_lost_offset()
        if lost is not None:  # recovery cut out damage: let the leader refill the gap
            log.warning("%s-%d: truncating to %d, where recovery lost records, to fetch "
                        "them again from the leader", self.topic, self.index, lost)
            with contextlib.suppress(StorageError):
                self.truncate_to(lost)
        if high_watermark is not None:
            self.high_watermark = min(high_watermark, self.log_end_offset)
        self._fail_hw_waiters()

    def append_as_follower(self, data: bytes, leader_high_watermark: int) -> None:
        """Append what the leader sent (offsets already assigned) and follow its HW."""
        self._plog.append_as_follower(data)
        new_hw = min(leader_high_watermark, self.log_end_offset)
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            self._wake_waiters()

    def truncate_to(self, offset: int) -> None:
        """Drop this replica's records from `offset` on (never below the log start)."""
        end = self.log_end_offset
        if self._plog.truncate_to(offset):
            log.info("truncated %s-%d from %d to %d", self.topic, self.index, end,
                     self.log_end_offset)
        self.high_watermark = min(self.high_watermark, self.log_end_offset)

    def truncate_to_epoch_end(self, leader_epoch: int, end_offset: int) -> None:
        """A follower's side of OffsetForLeaderEpoch (KIP-279): the leader says where
        `leader_epoch` ended on its log; keep no record past where it ended on both logs.
        Without epochs on either side, the high watermark is the safe point."""
        if self.latest_epoch < 0 or leader_epoch < 0 or end_offset < 0:
            self.truncate_to(self.high_watermark)
            return
        _, our_end = self._plog.end_offset_for_epoch(leader_epoch)
        self.truncate_to(min(end_offset, our_end) if our_end >= 0 else end_offset)

    def follow_leader_log_start(self, leader_log_start: int) -> None:
        """A follower keeps no record below its leader's log start (DeleteRecords,
        retention on the leader)."""
        if leader_log_start > self.log_start_offset:
            self._plog.delete_records_before(min(leader_log_start, self.log_end_offset))

    def restart_at(self, leader_log_start: int) -> None:
        """A follower whose whole log lies below its leader's log start empties it and
        continues there; no epoch or producer of the old log survives."""
        log.info("%s-%d: log end %d is below the leader's log start %d; starting over there",
                 self.topic, self.index, self.log_end_offset, leader_log_start)
        self._plog.truncate_fully_and_start_at(leader_log_start)
        self.high_watermark = min(self.high_watermark, self.log_end_offset)

    def epoch_end_offset(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch on the leader: (epoch, where it ended on this log); the
        current epoch (or a newer one asked for) ends at the log end."""
        if epoch >= self.leader_epoch:
            return self.leader_epoch, self.log_end_offset
        return self._plog.end_offset_for_epoch(epoch)

    def record_follower_fetch(self, replica: int, fetch_offset: int) -> None:
        """A follower's fetch tells us its log end; maybe grow the ISR or the HW."""
        state = self.followers.get(replica)
        if state is None:
            return
        state.log_end_offset = fetch_offset
        state.fetched = True
        if fetch_offset >= self.log_end_offset:
            state.last_caught_up_ms = self._clock()
        self.maybe_advance_high_watermark()

    def isr_candidates(self) -> tuple[int, ...] | None:
        """A proposed ISR when followers should join; None when nothing to propose."""
        # As Kafka, a follower joins on its own fetch: a dead replica's last position must
        # not bring it back when another follower fetches (it would hold the HW forever).
        joining = [r for r, s in self.followers.items()
                   if r not in self.isr and s.fetched and s.log_end_offset >= self.high_watermark
                   and s.log_end_offset >= 0]
        for s in self.followers.values():
            s.fetched = False
        if not joining:
            return None
        return tuple(r for r in self.replicas if r in self.isr or r in joining)

    def lagging_isr(self, lag_ms: int) -> tuple[int, ...] | None:
        """A proposed smaller ISR without followers that have not caught up in `lag_ms`."""
        now = self._clock()
        lagging = {r for r, s in self.followers.items()
                   if r in self.isr and now - s.last_caught_up_ms > lag_ms}
        if not lagging:
            return None
        return tuple(r for r in self.isr if r not in lagging)

    def maybe_advance_high_watermark(self) -> None:
        if not self.is_leader:
            return
        end = self.log_end_offset
        for replica in self.isr:
            state = self.followers.get(replica)
            if state is not None:
                end = min(end, max(state.log_end_offset, 0))
        if end > self.high_watermark:
            self.high_watermark = end
            self._wake_waiters()
            self._release_hw_waiters()

    def wait_for_high_watermark(self, offset: int) -> asyncio.Future[bool]:
        """Completes with True once the HW reaches `offset`, False if leadership is lost."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.high_watermark >= offset:
            future.set_result(True)
        else:
            self._hw_waiters.append((offset, future))
        return future

    def _release_hw_waiters(self) -> None:
        keep = []
        for offset, future in self._hw_waiters:
            if future.done():
                continue
            if self.high_watermark >= offset:
                future.set_result(True)
            else:
                keep.append((offset, future))
        self._hw_waiters = keep

    def _fail_hw_waiters(self) -> None:
        waiters, self._hw_waiters = self._hw_waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_result(False)

    # --- fetch ------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True,
             up_to_log_end: bool = False, read_committed: bool = False) -> ReadResult:
        """Consumers read below the high watermark, read_committed ones below the last
        stable offset (and learn the aborted transactions there); followers
        (`up_to_log_end`) to the end."""
        hw = self.high_watermark
        lso = self._plog.last_stable_offset(hw)
        bound = None if up_to_log_end else (lso if read_committed else hw)
        try:
            result = self._plog.read(offset, max_bytes, max_offset=bound,
                                     min_one_batch=min_one_batch)
            data = result.data
            error = ErrorCode.none
        except OffsetOutOfRange:
            data, error = b"", ErrorCode.offset_out_of_range
        except KafkaStorageError:  # the log dir is offline
            data, error = b"", ErrorCode.kafka_storage_error
        except CorruptLog:  # logged with file and position by the log
            data, error = b"", ErrorCode.corrupt_message
        aborted: tuple[tuple[int, int], ...] = ()
        if read_committed and data:
            aborted = tuple(self._plog.aborted_transactions(offset, lso))
        return ReadResult(error, hw, lso, self.log_start_offset, data, aborted)

    def list_offset(self, timestamp: int, read_committed: bool = False) -> TimestampOffset:
        """ListOffsets (see `PartitionLog.list_offset`), bounded by the high watermark or,
        for read_committed, the last stable offset."""
        bound = self.high_watermark
        if read_committed:
            bound = self._plog.last_stable_offset(bound)
        return self._plog.list_offset(timestamp, bound)

    @property
    def last_stable_offset(self) -> int:
        return self._plog.last_stable_offset(self.high_watermark)

    # --- transactions -------------------------------------------------------------------

    def append_marker(self, producer_id: int, producer_epoch: int, committed: bool,
                      coordinator_epoch: int) -> AppendResult:
        """WriteTxnMarkers on the leader: end the producer's transaction here."""
        try:
            info = self._plog.append_marker(producer_id, producer_epoch, committed,
                                            coordinator_epoch, leader_epoch=self.leader_epoch,
                                            timestamp_ms=self._clock())
        except SequenceError as exc:
            return AppendResult(exc.error, message=str(exc))
        except KafkaStorageError as exc:
            return AppendResult(ErrorCode.kafka_storage_error, message=str(exc))
        self.maybe_advance_high_watermark()
        self._wake_waiters()
        return AppendResult(base_offset=info.first_offset, log_start_offset=self.log_start_offset)

    def in_transaction(self, producer_id: int) -> bool:
        """Has this producer a transaction open here (its batches need no verification)?"""
        return producer_id in self._plog.producers.ongoing

    def transaction_stats(self) -> TransactionStats:
        """For metrics: open transactions, aborted ones indexed, the last stable offset."""
        return TransactionStats(len(self._plog.producers.ongoing), len(self._plog.aborted),
                                self.last_stable_offset)

    def producer_states(self) -> list[ProducerView]:
        """DescribeProducers: every producer this replica tracks."""
        return self._plog.producer_states()

    def wait_for_append(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    # --- admin ------------------------------------------------------------------------

    def update(self, config: LogConfig, policy: PartitionPolicy) -> None:
        self._plog.update_config(config)
        self.policy = policy

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: -1 means up to the high watermark."""
        target = self.high_watermark if offset == -1 else offset
        if target > self.high_watermark or target < 0:
            raise OffsetOutOfRange(offset, self.log_start_offset, self.high_watermark)
        return self._plog.delete_records_before(target)

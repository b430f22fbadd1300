"""One partition as the broker sees it: its log plus leadership, watermarks and producers.

Replication (leader side): followers fetch with their replica id; each fetch offset is
that follower's log end. The high watermark is the smallest log end over the in-sync
replicas, so a record is visible to consumers (and an acks=all produce is answered) only
once every in-sync replica has it. A follower joins the ISR when it reaches the high
watermark and is proposed for removal after `replica.lag.time.max.ms` without catching
up to the leader's log end. ISR changes go through the metadata store (version-checked);
the partition adopts them when the new metadata image arrives.

The partition validates a produce payload (framing, CRC, size, timestamps, producer
sequences) before anything touches the log, so a rejected request leaves no trace.
Long-polling fetches wait on `wait_for_append`, which is woken by every append: no loop
polls the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from strom.protocol import records
from strom.protocol.records import BatchHeader
from strom.storage import Log, LogConfig, OffsetOutOfRange, producer_snapshot
from strom.storage.errors import CorruptLog, KafkaStorageError, StorageError
from strom.storage.leader_epoch import LeaderEpochCache
from strom.storage.producer_state import Duplicate, ProducerStateManager, SequenceError
from strom.storage.validator import InvalidProduce, RecordPolicy, validate_client_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionPolicy:
    """Topic settings the partition enforces itself (storage owns the rest)."""

    records: RecordPolicy = field(default_factory=RecordPolicy)
    min_insync_replicas: int = 1


@dataclass(frozen=True, slots=True)
class AppendResult:
    error: str = "none"
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    message: str | None = None
    record_errors: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ReadResult:
    error: str
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: bytes


@dataclass
class FollowerState:
    log_end_offset: int = -1
    last_caught_up_ms: int = 0


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
        self.log = log_
        self.policy = policy
        self.leader_epoch = leader_epoch
        self.producers = ProducerStateManager()
        self._clock = clock
        self._waiters: list[asyncio.Future[None]] = []
        self.high_watermark = log_.log_end_offset
        self.epochs = LeaderEpochCache(log_.dir)
        self.epochs.truncate_from_end(log_.log_end_offset)
        self.leader_id = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.partition_epoch = 0
        self.is_leader = False  # the replica manager assigns the role from metadata
        self.followers: dict[int, FollowerState] = {}
        self._hw_waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._producers_dirty = False
        self._rebuild_producer_state()

    # --- produce ----------------------------------------------------------------------

    def append(self, payload: bytes | None) -> AppendResult:
        """Append a client's batch after validating every record (see storage.validator)."""
        buf = bytearray(payload or b"")
        try:
            headers = [validate_client_batch(buf, self.policy.records, self._clock())]
        except InvalidProduce as exc:
            log.info("rejected batch for %s-%d: %s", self.topic, self.index, exc)
            return AppendResult(exc.error, message=str(exc), record_errors=exc.record_errors)
        return self.append_validated(buf, headers)

    def append_validated(self, buf: bytearray, headers: list[BatchHeader]) -> AppendResult:
        """Append batches this broker built or already checked (internal topics)."""
        try:
            duplicate = self._check_sequences(headers)
        except SequenceError as exc:
            return AppendResult(exc.error, message=str(exc))
        if duplicate is not None:
            return AppendResult(
                base_offset=duplicate.first_offset,
                log_append_time=duplicate.timestamp if self.policy.records.log_append_time else -1,
                log_start_offset=self.log.log_start_offset,
            )
        now = self._clock()
        append_time = now if self.policy.records.log_append_time else None
        try:
            info = self.log.append_as_leader(
                buf, headers, leader_epoch=self.leader_epoch,
                log_append_time_ms=append_time,
            )
        except KafkaStorageError as exc:  # disk full or failing: the log dir is offline
            return AppendResult("kafka_storage_error", message=str(exc))
        self.epochs.assign(self.leader_epoch, info.first_offset)
        offset = info.first_offset
        for header in headers:
            timestamp = append_time if append_time is not None else header.max_timestamp
            if header.producer_id >= 0:
                self.producers.record(header, offset, timestamp)
                self._producers_dirty = True
            offset += header.last_offset_delta + 1
        self.maybe_advance_high_watermark()
        self._wake_waiters()
        return AppendResult(
            base_offset=info.first_offset,
            log_append_time=append_time if append_time is not None else -1,
            log_start_offset=self.log.log_start_offset,
        )

    def _check_sequences(self, headers: list[BatchHeader]) -> Duplicate | None:
        duplicate = None
        for header in headers:
            found = self.producers.check(header)
            if found is not None:
                if len(headers) != 1:
                    raise SequenceError(
                        "duplicate_sequence_number", "duplicate batch within a multi-batch request"
                    )
                duplicate = found
        return duplicate

    def _rebuild_producer_state(self) -> None:
        """Load the newest producer snapshot, then replay the batch headers after it.

        Without a snapshot only the last two segments are replayed, as Kafka does: older
        producers have long finished their retries. Nothing in a log may stop a start: a
        batch whose CRC fails is not trusted for sequences, and any other failure starts
        the partition with no producer state (its producers count as new, as after
        state expiry) and logs it.
        """
        try:
            self._replay_producer_batches()
        except Exception:
            log.exception("cannot rebuild producer state of %s-%d; starting without it",
                          self.topic, self.index)
            self.producers.truncate()

    def _replay_producer_batches(self) -> None:
        log_ = self.log
        found = producer_snapshot.load_latest(log_.dir, log_.log_end_offset)
        if found is not None:
            start, entries = found
            self.producers.load_snapshot(entries)
        else:
            bases = [s.base_offset for s in log_.segments]
            start = bases[-2] if len(bases) >= 2 else log_.log_start_offset
        offset = max(start, log_.log_start_offset)
        while offset < log_.log_end_offset:
            try:
                chunk = log_.read(offset, 1 << 20).data
            except (OffsetOutOfRange, StorageError):  # damage was logged; never brick a start
                break
            last = offset
            for _, header in records.scan_batches(chunk, verify_crc=True):
                if header.next_offset > offset and header.last_offset_delta >= 0:
                    self.producers.record(header, header.base_offset, header.max_timestamp)
                last = header.next_offset
            if last <= offset:
                break
            offset = last

    def snapshot_producers(self) -> None:
        """Persist idempotence state at the log end (on checkpoints and clean shutdown)."""
        if not self._producers_dirty or self.log.offline is not None:
            return
        self._producers_dirty = False
        try:
            producer_snapshot.write(self.log.dir, self.log.log_end_offset,
                                    self.producers.to_snapshot())
        except OSError as exc:
            self.log.io_failed(exc, "writing a producer snapshot")

    # --- replication --------------------------------------------------------------------

    def become_leader(self, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...],
                      partition_epoch: int, me: int, high_watermark: int | None = None) -> None:
        now = self._clock()
        new_term = not self.is_leader or leader_epoch != self.leader_epoch
        self.is_leader = True
        self.leader_id = me
        self.log.first_lost_offset = None  # a leader's log is the reference, gap and all
        self.leader_epoch = leader_epoch
        self.replicas, self.isr, self.partition_epoch = replicas, isr, partition_epoch
        if new_term:
            self.followers = {r: FollowerState(-1, now) for r in replicas if r != me}
            if high_watermark is not None:
                self.high_watermark = min(high_watermark, self.log.log_end_offset)
        self.maybe_advance_high_watermark()

    def become_follower(self, leader: int, leader_epoch: int, replicas: tuple[int, ...],
                        isr: tuple[int, ...], partition_epoch: int,
                        high_watermark: int | None = None) -> None:
        self.is_leader = False
        self.leader_id = leader
        self.leader_epoch = leader_epoch
        self.replicas, self.isr, self.partition_epoch = replicas, isr, partition_epoch
        self.followers = {}
        lost, self.log.first_lost_offset = self.log.first_lost_offset, None
        if lost is not None:  # recovery cut out damage: let the leader refill the gap
            log.warning("%s-%d: truncating to %d, where recovery lost records, to fetch "
                        "them again from the leader", self.topic, self.index, lost)
            with contextlib.suppress(StorageError):
                self.truncate_to(lost)
        if high_watermark is not None:
            self.high_watermark = min(high_watermark, self.log.log_end_offset)
        self._fail_hw_waiters()

    def append_as_follower(self, data: bytes, leader_high_watermark: int) -> None:
        """Append what the leader sent (offsets already assigned) and follow its HW."""
        if data:
            self.log.append_as_follower(data)
            for _, header in records.scan_batches(data):
                self.epochs.assign(header.partition_leader_epoch, header.base_offset)
                if header.producer_id >= 0:
                    self.producers.record(header, header.base_offset, header.max_timestamp)
                    self._producers_dirty = True
        new_hw = min(leader_high_watermark, self.log.log_end_offset)
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            self._wake_waiters()

    def truncate_to(self, offset: int) -> None:
        if offset < self.log.log_end_offset:
            log.info("truncating %s-%d from %d to %d", self.topic, self.index,
                     self.log.log_end_offset, offset)
            self.log.truncate_to(max(offset, self.log.log_start_offset))
            self.epochs.truncate_from_end(self.log.log_end_offset)
            self.producers.truncate()
            self._rebuild_producer_state()
        self.high_watermark = min(self.high_watermark, self.log.log_end_offset)

    def record_follower_fetch(self, replica: int, fetch_offset: int) -> None:
        """A follower's fetch tells us its log end; maybe grow the ISR or the HW."""
        state = self.followers.get(replica)
        if state is None:
            return
        state.log_end_offset = fetch_offset
        if fetch_offset >= self.log.log_end_offset:
            state.last_caught_up_ms = self._clock()
        self.maybe_advance_high_watermark()

    def isr_candidates(self) -> tuple[int, ...] | None:
        """A proposed ISR when followers should join; None when nothing to propose."""
        joining = [r for r, s in self.followers.items()
                   if r not in self.isr and s.log_end_offset >= self.high_watermark
                   and s.log_end_offset >= 0]
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
        end = self.log.log_end_offset
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
             up_to_log_end: bool = False) -> ReadResult:
        """Consumers read below the high watermark; followers (`up_to_log_end`) to the end."""
        hw = self.high_watermark
        try:
            result = self.log.read(offset, max_bytes, max_offset=None if up_to_log_end else hw,
                                   min_one_batch=min_one_batch)
            data = result.data
            error = "none"
        except OffsetOutOfRange:
            data, error = b"", "offset_out_of_range"
        except KafkaStorageError:  # the log dir is offline
            data, error = b"", "kafka_storage_error"
        except CorruptLog:  # logged with file and position by the log
            data, error = b"", "corrupt_message"
        return ReadResult(error, hw, hw, self.log.log_start_offset, data)

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
        self.log.update_config(config)
        self.policy = policy

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: -1 means up to the high watermark."""
        target = self.high_watermark if offset == -1 else offset
        if target > self.high_watermark or target < 0:
            raise OffsetOutOfRange(offset, self.log.log_start_offset, self.high_watermark)
        return self.log.delete_records_before(target)

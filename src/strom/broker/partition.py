"""One partition as the broker sees it: its log plus leadership, watermarks and producers.

The partition validates a produce payload (framing, CRC, size, timestamps, producer
sequences) before anything touches the log, so a rejected request leaves no trace.
Long-polling fetches wait on `wait_for_append`, which is woken by every append: no loop
polls the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from strom.broker import producer_snapshot
from strom.broker.producer_state import Duplicate, ProducerStateManager, SequenceError
from strom.protocol import records
from strom.protocol.records import BatchHeader, InvalidBatch
from strom.storage import Log, LogConfig, OffsetOutOfRange

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionPolicy:
    """Topic settings the partition enforces itself (storage owns the rest)."""

    max_message_bytes: int = 1048588
    log_append_time: bool = False
    timestamp_before_max_ms: int = 2**63 - 1
    timestamp_after_max_ms: int = 3600000
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
        self._producers_dirty = False
        self._rebuild_producer_state()

    # --- produce ----------------------------------------------------------------------

    def append(self, payload: bytes | None) -> AppendResult:
        if not payload:
            return AppendResult("corrupt_message", message="empty record set")
        try:
            headers = records.validate_batches(payload)
        except InvalidBatch as exc:
            log.info("rejected batch for %s-%d: %s", self.topic, self.index, exc)
            return AppendResult(exc.reason, message=str(exc))
        problem = self._check_policy(headers)
        if problem is not None:
            return problem
        try:
            duplicate = self._check_sequences(headers)
        except SequenceError as exc:
            return AppendResult(exc.error, message=str(exc))
        if duplicate is not None:
            return AppendResult(
                base_offset=duplicate.first_offset,
                log_append_time=duplicate.timestamp if self.policy.log_append_time else -1,
                log_start_offset=self.log.log_start_offset,
            )
        now = self._clock()
        append_time = now if self.policy.log_append_time else None
        info = self.log.append_as_leader(
            bytearray(payload), headers, leader_epoch=self.leader_epoch,
            log_append_time_ms=append_time,
        )
        offset = info.first_offset
        for header in headers:
            timestamp = append_time if append_time is not None else header.max_timestamp
            if header.producer_id >= 0:
                self.producers.record(header, offset, timestamp)
                self._producers_dirty = True
            offset += header.last_offset_delta + 1
        self.high_watermark = self.log.log_end_offset
        self._wake_waiters()
        return AppendResult(
            base_offset=info.first_offset,
            log_append_time=append_time if append_time is not None else -1,
            log_start_offset=self.log.log_start_offset,
        )

    def _check_policy(self, headers: list[BatchHeader]) -> AppendResult | None:
        now = self._clock()
        for header in headers:
            if header.size > self.policy.max_message_bytes:
                return AppendResult(
                    "message_too_large",
                    message=f"batch of {header.size} bytes exceeds max.message.bytes "
                    f"{self.policy.max_message_bytes}",
                )
            if header.is_control:
                return AppendResult("invalid_record", message="clients may not write control batches")
            if self.policy.log_append_time:
                continue
            if header.max_timestamp > now + self.policy.timestamp_after_max_ms or (
                header.base_timestamp >= 0
                and header.base_timestamp < now - self.policy.timestamp_before_max_ms
            ):
                return AppendResult(
                    "invalid_timestamp",
                    message=f"timestamp {header.max_timestamp} is outside the accepted range",
                )
        return None

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
        producers have long finished their retries.
        """
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
            except OffsetOutOfRange:
                break
            last = offset
            for _, header in records.scan_batches(chunk):
                if header.next_offset > offset:
                    self.producers.record(header, header.base_offset, header.max_timestamp)
                last = header.next_offset
            if last <= offset:
                break
            offset = last

    def snapshot_producers(self) -> None:
        """Persist idempotence state at the log end (on checkpoints and clean shutdown)."""
        if not self._producers_dirty:
            return
        self._producers_dirty = False
        producer_snapshot.write(self.log.dir, self.log.log_end_offset,
                                self.producers.to_snapshot())

    # --- fetch ------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True) -> ReadResult:
        hw = self.high_watermark
        try:
            result = self.log.read(offset, max_bytes, max_offset=hw, min_one_batch=min_one_batch)
            data = result.data
            error = "none"
        except OffsetOutOfRange:
            data, error = b"", "offset_out_of_range"
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

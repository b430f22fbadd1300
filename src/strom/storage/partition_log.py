"""One partition's log with what replication and idempotence keep beside it (Kafka's UnifiedLog).

`Log` (log.py) is the segments, as Kafka's LocalLog. `PartitionLog` wraps it with the two
structures that must always agree with the segments, and is the only writer of all three,
so the invariants live in one place:

* the leader-epoch cache (`leader_epoch.py`): every append assigns its epoch (the leader's
  epoch on the leader, each batch's partition leader epoch on a follower); a truncation
  forgets the epochs from the new log end; a raised log start (retention, DeleteRecords)
  forgets epochs wholly below it; a full truncation clears it;
* producer state (`producer_state.py`, snapshots in `producer_snapshot.py`): a leader
  append is checked first (fencing, sequences, retries inside the dedup window); every
  append is recorded; a truncation rebuilds it from the newest snapshot at or below the
  new end plus the batches after it; a full truncation empties it. As in Kafka
  (KIP-360), producers outlive the records retention deletes; they end by expiry
  (`remove_expired_producers`, `producer.id.expiration.ms`), and the next snapshot
  leaves them out;
* offset semantics: earliest, latest, by timestamp and max timestamp for ListOffsets, and
  the last stable offset, given the high watermark that the broker's `Partition` keeps.

Opening never fails for what the log holds: producer state is rebuilt from CRC-checked
batches only, and any failure starts the partition with no producer state (its producers
count as new, as after expiry), logged.

Threading: everything runs on the event loop, except the writer `producer_snapshot_writer`
returns, which fsyncs a snapshot from a worker thread. A lock orders it with truncation,
and a generation count drops a snapshot taken before a truncation it would contradict.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import NamedTuple

from kio.schema.errors import ErrorCode

from strom.protocol import records
from strom.protocol.records import BatchHeader
from strom.storage import markers, producer_snapshot
from strom.storage.config import LogConfig
from strom.storage.errors import KafkaStorageError, OffsetOutOfRange, StorageError
from strom.storage.leader_epoch import LeaderEpochCache
from strom.storage.log import AppendInfo, Log, ReadResult
from strom.storage.producer_state import Duplicate, ProducerStateManager, SequenceError
from strom.storage.txn_index import AbortedTransactions, AbortedTxn

log = logging.getLogger(__name__)

# ListOffsets' special timestamps (Kafka's ListOffsetsRequest constants)
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, EARLIEST_PENDING_UPLOAD, LATEST_TIERED = (
    -1, -2, -3, -4, -5, -6,
)
_REPLAY_CHUNK = 1 << 20


class TimestampOffset(NamedTuple):
    """A ListOffsets answer; (-1, -1) when no record qualifies."""

    timestamp: int
    offset: int


NOT_FOUND = TimestampOffset(-1, -1)


class ProducerView(NamedTuple):
    """One producer as DescribeProducers reports it (-1: unknown or none)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int


class PartitionLog:
    """`Log` + leader-epoch cache + producer state, kept consistent on every change."""

    def __init__(self, log_: Log) -> None:
        self.log = log_
        self.producers = ProducerStateManager()
        self._epochs = LeaderEpochCache(log_.dir)
        self._epochs.truncate_from_end(log_.log_end_offset)  # recovery may have cut the tail
        self._epochs.truncate_from_start(log_.log_start_offset)
        self._snapshot_lock = threading.Lock()
        self._generation = 0  # bumped by every truncation: older snapshots are stale
        self._producers_dirty = False
        self.aborted = AbortedTransactions(log_.dir, [s.base_offset for s in log_.segments])
        log_.on_log_start_moved = self._log_start_moved
        self._rebuild_producer_state()

    def _log_start_moved(self, offset: int) -> None:
        self._epochs.truncate_from_start(offset)
        self.aborted.drop_below(offset)

    # -- what others read --------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def latest_epoch(self) -> int:
        """The newest leader epoch with records in this log; -1 if none."""
        return self._epochs.latest_epoch

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest known epoch <= `epoch`, where it ended), as OffsetForLeaderEpoch answers;
        (-1, -1) if `epoch` is older than every epoch known."""
        return self._epochs.end_offset_for(epoch, self.log.log_end_offset)

    # -- append ------------------------------------------------------------------------

    def append_as_leader(
        self,
        buf: bytearray | memoryview,
        headers: Sequence[BatchHeader],
        *,
        leader_epoch: int,
        log_append_time_ms: int | None = None,
    ) -> AppendInfo | Duplicate:
        """Check producer sequences, then append validated batches (see `Log`).

        A retry inside the dedup window returns the `Duplicate` and appends nothing;
        fencing and sequence gaps raise `SequenceError`; a failing disk raises
        `KafkaStorageError`.
        """
        duplicate = self._check_sequences(headers)
        if duplicate is not None:
            return duplicate
        info = self.log.append_as_leader(buf, headers, leader_epoch=leader_epoch,
                                         log_append_time_ms=log_append_time_ms)
        self._epochs.assign(leader_epoch, info.first_offset)
        offset = info.first_offset
        for header in headers:
            if header.producer_id >= 0:
                timestamp = (header.max_timestamp if log_append_time_ms is None
                             else log_append_time_ms)
                self.producers.record(header, offset, timestamp)
                self._producers_dirty = True
            offset += header.last_offset_delta + 1
        return info

    def _check_sequences(self, headers: Sequence[BatchHeader]) -> Duplicate | None:
        duplicate = None
        for header in headers:
            found = self.producers.check(header)
            if found is not None:
                if len(headers) != 1:
                    raise SequenceError(
                        ErrorCode.duplicate_sequence_number,
                        "duplicate batch within a multi-batch request",
                    )
                duplicate = found
        return duplicate

    def append_marker(self, producer_id: int, producer_epoch: int, committed: bool,
                      coordinator_epoch: int, *, leader_epoch: int, timestamp_ms: int
                      ) -> AppendInfo:
        """Write a transaction marker (WriteTxnMarkers on the leader): the producer's
        transaction in this partition ends, committed or aborted.

        Refused (`SequenceError`) from an older producer epoch or an older coordinator.
        """
        self.producers.check_marker(producer_id, producer_epoch, coordinator_epoch)
        buf = bytearray(markers.build(producer_id, producer_epoch, committed,
                                      coordinator_epoch, timestamp_ms))
        info = self.log.append_as_leader(buf, records.validate_batches(buf),
                                         leader_epoch=leader_epoch)
        self._epochs.assign(leader_epoch, info.first_offset)
        self._complete(producer_id, producer_epoch,
                       markers.Marker(committed, coordinator_epoch), info.first_offset,
                       timestamp_ms)
        return info

    def _complete(self, producer_id: int, producer_epoch: int, marker: markers.Marker,
                  offset: int, timestamp: int) -> None:
        """A marker at ``offset``: end the transaction; index it if it aborted."""
        first = self.producers.complete_txn(producer_id, producer_epoch,
                                            marker.coordinator_epoch, timestamp)
        self._producers_dirty = True
        if marker.committed or first is None:
            return
        unstable = self.producers.first_unstable_offset()
        entry = AbortedTxn(offset, producer_id, first,
                           offset + 1 if unstable is None else unstable)
        bases = [s.base_offset for s in self.log.segments]
        self.aborted.add(entry, bases[max(bisect_right(bases, offset) - 1, 0)])

    def append_as_follower(self, data: bytes) -> None:
        """Append what the leader sent (offsets and epochs already assigned)."""
        if not data:
            return
        self.log.append_as_follower(data)
        for pos, header in records.scan_batches(data):
            self._epochs.assign(header.partition_leader_epoch, header.base_offset)
            self._record(header, data, pos)

    def _record(self, header: BatchHeader, data: bytes | memoryview, pos: int) -> None:
        """Producer state (and the aborted index) for a batch already in the log."""
        if header.producer_id < 0:
            return
        if header.is_control:
            marker = markers.parse(memoryview(data)[pos : pos + header.size])
            if marker is not None:
                self._complete(header.producer_id, header.producer_epoch, marker,
                               header.base_offset, header.max_timestamp)
            return
        self.producers.record(header, header.base_offset, header.max_timestamp)
        self._producers_dirty = True

    # -- truncation and the log start ---------------------------------------------------

    def truncate_to(self, offset: int) -> bool:
        """Drop everything at or after `offset` (never below the log start); True if the
        log end moved. Epochs from the new end are forgotten, producers rebuilt."""
        if offset >= self.log.log_end_offset:
            return False
        self.log.truncate_to(max(offset, self.log.log_start_offset))
        self._epochs.truncate_from_end(self.log.log_end_offset)
        self.aborted.truncate_from(self.log.log_end_offset,
                                   [s.base_offset for s in self.log.segments])
        with self._snapshot_lock:
            self._generation += 1
            self.producers.truncate()
            self._rebuild_producer_state()
            self._producers_dirty = True
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Empty the log and continue at `offset` (a follower behind the leader's log
        start): no epoch, no producer and no snapshot survives."""
        self.log.truncate_fully_and_start_at(offset)
        self._epochs.clear()
        self.aborted.truncate_from(0, [offset])
        with self._snapshot_lock:
            self._generation += 1
            self.producers.truncate()
            self._producers_dirty = False
            try:
                producer_snapshot.delete_all(self.log.dir)
            except OSError as exc:
                raise self.log.io_failed(exc, "deleting producer snapshots") from exc

    def delete_records_before(self, offset: int) -> int:
        """Raise the log start to `offset` (DeleteRecords, or a follower following its
        leader's log start); returns the new log start. Epochs follow (see `Log` hook)."""
        return self.log.delete_records_before(offset)

    def take_first_lost_offset(self) -> int | None:
        """Where recovery cut damaged batches out of this log (a follower truncates there
        to fetch them again; a leader's log is the reference): reported once."""
        lost, self.log.first_lost_offset = self.log.first_lost_offset, None
        return lost

    def update_config(self, config: LogConfig) -> None:
        self.log.update_config(config)

    # -- reads and offsets -------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, max_offset: int | None,
             min_one_batch: bool = True) -> ReadResult:
        return self.log.read(offset, max_bytes, max_offset=max_offset,
                             min_one_batch=min_one_batch)

    def last_stable_offset(self, high_watermark: int) -> int:
        """Where read_committed consumers stop: the first offset of the oldest open
        transaction, or the high watermark when none is open below it."""
        unstable = self.producers.first_unstable_offset()
        return high_watermark if unstable is None else min(unstable, high_watermark)

    def producer_states(self) -> list[ProducerView]:
        """DescribeProducers' view of every producer tracked here."""
        views = []
        for pid, entry in self.producers.producers.items():
            last = entry.batches[-1] if entry.batches else None
            views.append(ProducerView(pid, entry.epoch, last.last_seq if last else -1,
                                      entry.last_timestamp, entry.coordinator_epoch,
                                      entry.txn_first_offset))
        return views

    def aborted_transactions(self, start: int, end: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions a read_committed fetch
        of [start, end) must report."""
        return [(e.producer_id, e.first_offset) for e in self.aborted.overlapping(start, end)]

    def list_offset(self, timestamp: int, high_watermark: int) -> TimestampOffset:
        """ListOffsets for one partition: a special timestamp (LATEST, EARLIEST, ...) or
        the first record stamped at or after `timestamp` below the high watermark.

        Raises `KafkaStorageError` when the log is offline, whatever the query (as Kafka
        answers), and `CorruptLog` when a lookup meets damage.
        """
        if self.log.offline is not None:
            raise KafkaStorageError(self.log.log_dir, self.log.offline)
        if timestamp == LATEST:
            return TimestampOffset(-1, high_watermark)
        if timestamp in (EARLIEST, EARLIEST_LOCAL):
            return TimestampOffset(-1, self.log.log_start_offset)
        if timestamp in (EARLIEST_PENDING_UPLOAD, LATEST_TIERED):
            return NOT_FOUND
        if timestamp == MAX_TIMESTAMP:
            return TimestampOffset(*self.log.max_timestamp_and_offset())
        found = self.log.offset_for_timestamp(timestamp)
        if found is None or found.offset >= high_watermark:
            return NOT_FOUND
        return TimestampOffset(found.timestamp, found.offset)

    # -- producer state at open and in snapshots ----------------------------------------

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
                          self.log.topic, self.log.partition)
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
                chunk = log_.read(offset, _REPLAY_CHUNK).data
            except (OffsetOutOfRange, StorageError):  # damage was logged; never brick a start
                break
            last = offset
            for pos, header in records.scan_batches(chunk, verify_crc=True):
                if header.next_offset > offset and header.last_offset_delta >= 0:
                    self._record(header, chunk, pos)
                last = header.next_offset
            if last <= offset:
                break
            offset = last

    def remove_expired_producers(self, now_ms: int, expiration_ms: int) -> int:
        """On the event loop: forget producers idle for `expiration_ms`; returns how many.
        The state counts as changed, so the next checkpoint writes a snapshot without
        them (a restart must not bring them back)."""
        removed = self.producers.remove_expired(now_ms, expiration_ms)
        if removed:
            self._producers_dirty = True
        return removed

    def producer_last_offsets(self) -> dict[int, int]:
        """pid -> offset of its last batch: the log cleaner keeps those batches (emptied
        if need be) so that a live producer's sequence numbers survive compaction."""
        return {pid: entry.batches[-1].last_offset
                for pid, entry in self.producers.producers.items() if entry.batches}

    def producer_snapshot_writer(self) -> Callable[[], None] | None:
        """On the event loop: capture producer state at the log end, if it changed; the
        returned writer fsyncs it as a snapshot and may run in a worker thread. None when
        there is nothing to write (unchanged, or the log is offline)."""
        if not self._producers_dirty or self.log.offline is not None:
            return None
        self._producers_dirty = False
        offset, entries = self.log.log_end_offset, self.producers.to_snapshot()
        generation = self._generation

        def write() -> None:
            with self._snapshot_lock:
                if generation != self._generation:
                    return  # truncated since: the state captured is no longer the log's
                try:  # markers the snapshot covers are then found in the index files
                    self.aborted.sync()
                except OSError as exc:
                    self.log.io_failed(exc, "syncing the aborted-transaction index")
                    return
                self._write_snapshot(offset, entries)

        return write

    def _write_snapshot(self, offset: int, entries: list[producer_snapshot.SnapshotEntry]
                        ) -> None:
        try:
            producer_snapshot.write(self.log.dir, offset, entries)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not self.log.dir.exists():
                return  # the partition was deleted meanwhile: nothing to keep
            self.log.io_failed(exc, "writing a producer snapshot")

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_TIMESTAMP",
    "NOT_FOUND",
    "Duplicate",
    "PartitionLog",
    "ProducerView",
    "SequenceError",
    "TimestampOffset",
]

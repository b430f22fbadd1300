"""One partition's log: an ordered run of segments, and what the broker asks of it.

This is Kafka's LocalLog: segments only. The leader-epoch cache and producer state that
must agree with them are kept by ``PartitionLog`` (partition_log.py), which wraps a
``Log`` and is its only writer besides the ``LogManager`` (flush, retention).

Offsets: ``log_start_offset`` <= every readable offset < ``log_end_offset`` (the next
offset to assign). ``recovery_point``: everything below it is fsynced, so recovery after a
crash starts there. The high watermark is the broker's business; it passes it in where it
bounds something (``read(max_offset=...)``, ``enforce_retention(high_watermark=...)``).

Hot paths. ``append_as_leader`` patches the batch headers in place (base offset, leader
epoch, LogAppendTime), issues one ``write`` for the whole produce payload and indexes it
with a few integer comparisons per batch: O(batch), never O(history). ``read`` finds the
segment by bisect over base offsets and the position by the sparse index, then reads whole
batches with one ``pread``.

Threading. Everything runs on the broker's event loop except ``flush``, which may run in
one worker thread at a time while the loop keeps appending and reading. A lock serialises
``flush`` with the rare operations that create, seal or delete segments (roll, truncation,
retention, DeleteRecords, close, delete); appends that do not roll and reads never take it.

Faults. Any ``OSError`` from the disk (ENOSPC, EIO, ...) takes the log offline: the call
raises ``KafkaStorageError`` (KAFKA_STORAGE_ERROR to the client, the connection stays)
and so does every later call until a restart, as Kafka takes a log dir offline. The
``on_io_error`` hook lets the ``LogManager`` take the log's whole directory offline. A
write that failed half way is cut back to the last whole batch (see ``LogSegment.append``)
and an offline log never appends again, so no valid batch lands behind a torn one; an
offline log is not marked cleanly shut down, so the next start recovers it. Damage met by
a read raises ``CorruptLog`` (CORRUPT_MESSAGE), logged once at ERROR with file and
position, rather than serving a partial batch a consumer would stall on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from strom.protocol.records import (
    BatchHeader,
    InvalidBatch,
    patch_base_offset,
    patch_leader_epoch,
    patch_log_append_time,
    validate_batches,
)
from strom.storage import health, retention
from strom.storage.config import LogConfig, now_ms
from strom.storage.errors import (
    CorruptLog,
    InvalidAppend,
    KafkaStorageError,
    OffsetOutOfRange,
    StorageError,
)
from strom.storage.files import (
    DELETED_SUFFIX,
    SWAP_SUFFIX,
    delete_dir_name,
    fsync_dir,
    parse_partition_dir,
)
from strom.storage.loader import load_segments
from strom.storage.segment import INT32_MAX, BatchInfo, LogSegment

log = logging.getLogger(__name__)

Clock = Callable[[], int]
IoErrorHook = Callable[["Log", OSError], None]
StartMovedHook = Callable[[int], None]


class AppendInfo(NamedTuple):
    """What an append did; the broker builds the produce response from it.

    A NamedTuple, not a frozen dataclass: it is built on every produce and a tuple is
    several times cheaper to construct.
    """

    first_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    max_timestamp: int  # largest batch max timestamp appended (-1 if none)
    offset_of_max_timestamp: int  # last offset of the batch carrying it (-1 if none)
    log_start_offset: int
    record_count: int
    size_bytes: int


class ReadResult(NamedTuple):
    """Whole batches; ``first_offset`` is the first batch's base offset (may be below the
    offset asked for: clients skip the leading records of a batch)."""

    data: bytes
    first_offset: int


class OffsetAndTimestamp(NamedTuple):
    offset: int
    timestamp: int


class TimestampAndOffset(NamedTuple):
    timestamp: int
    offset: int


class Log:
    """The segments of ``<log dir>/<topic>-<partition>``; create with ``Log.open``."""

    def __init__(
        self,
        dir: Path,
        config: LogConfig,
        clock: Clock,
        segments: list[LogSegment],
        log_start_offset: int,
        recovery_point: int,
        lost_offsets: Sequence[tuple[int, int]] = (),
    ) -> None:
        parsed = parse_partition_dir(dir.name)
        if parsed is None:
            raise ValueError(f"{dir.name!r} is not a <topic>-<partition> directory")
        self.dir = dir
        self.topic, self.partition = parsed
        self.config = config
        self._max_offset_entries = config.max_offset_index_entries
        self._max_time_entries = config.max_time_index_entries
        self._clock = clock
        self._segments = segments
        self._bases = [segment.base_offset for segment in segments]
        self.log_start_offset = log_start_offset
        self.log_end_offset = segments[-1].next_offset
        self.recovery_point = min(recovery_point, self.log_end_offset)
        self.last_flush_ms = clock()
        self._lock = threading.RLock()
        self._unsynced_sealed: list[LogSegment] = []  # rolled since the last flush
        self._dir_dirty = False  # files created or deleted since the last flush
        self._closed = False
        self.offline: str | None = None  # why the log is offline (until a restart)
        self.on_io_error: IoErrorHook | None = None
        # Called with the new log start after retention or DeleteRecords raised it, so
        # that the PartitionLog's leader-epoch cache follows even when the LogManager
        # (retention) rather than the PartitionLog drove the change.
        self.on_log_start_moved: StartMovedHook | None = None
        # Recovery dropped damaged batches but kept later ones: a follower truncates to
        # the first lost offset so that replication refills the gap.
        self.first_lost_offset: int | None = min((a for a, _ in lost_offsets), default=None)

    @classmethod
    def open(
        cls,
        dir: Path,
        config: LogConfig,
        *,
        clock: Clock = now_ms,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        clean_shutdown: bool = False,
    ) -> Log:
        """Open or create the log in ``dir``; recover from ``recovery_point`` unless clean."""
        dir = Path(dir)
        if parse_partition_dir(dir.name) is None:
            raise ValueError(f"{dir.name!r} is not a <topic>-<partition> directory")
        loaded = load_segments(
            dir,
            config,
            clock(),
            recovery_point=recovery_point,
            log_start_offset=log_start_offset,
            clean_shutdown=clean_shutdown,
        )
        opened = cls(
            dir, config, clock, loaded.segments, loaded.log_start_offset,
            loaded.recovery_point, loaded.lost_offsets,
        )
        opened._dir_dirty = loaded.dir_dirty  # a new log's files: fsynced by its first flush
        return opened

    def __repr__(self) -> str:
        return (
            f"Log({self.topic}-{self.partition}, start={self.log_start_offset}, "
            f"end={self.log_end_offset}, segments={len(self._segments)})"
        )

    # -- introspection ----------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segments(self) -> Sequence[LogSegment]:
        return tuple(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def log_dir(self) -> Path:
        """The log directory (one of ``log.dirs``) holding this partition."""
        return self.dir.parent

    # -- faults -------------------------------------------------------------------------

    def io_failed(self, exc: OSError, what: str) -> KafkaStorageError:
        """Take the log offline after ``exc``; return the error to raise to the caller.

        Public so that the broker reports I/O errors of files it keeps beside the log
        (producer snapshots) the same way.
        """
        health.count_io_error()
        first = self.offline is None
        if first:
            self.offline = f"{what} failed: {exc.strerror or exc}"
        if self.on_io_error is not None:
            self.on_io_error(self, exc)
        elif first:
            log.error("%s-%d: %s; the log is offline until the broker restarts",
                      self.topic, self.partition, self.offline)
        return self._offline_error()

    def take_offline(self, reason: str) -> None:
        """Refuse every later operation (another log of the same directory failed)."""
        if self.offline is None:
            self.offline = reason

    def _offline_error(self) -> KafkaStorageError:
        return KafkaStorageError(
            self.log_dir,
            f"{self.topic}-{self.partition} is in an offline log directory {self.log_dir} "
            f"({self.offline})",
        )

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """For the rarer disk operations: refuse if offline, go offline on OSError."""
        if self.offline is not None:
            raise self._offline_error()
        try:
            yield
        except OSError as exc:
            raise self.io_failed(exc, what) from exc

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        self._max_offset_entries = config.max_offset_index_entries
        self._max_time_entries = config.max_time_index_entries
        for segment in self._segments:
            segment.index_interval_bytes = config.index_interval_bytes

    # -- append -----------------------------------------------------------------------

    def append_as_leader(
        self,
        buf: bytearray | memoryview,
        headers: Sequence[BatchHeader],
        *,
        leader_epoch: int,
        log_append_time_ms: int | None = None,
    ) -> AppendInfo:
        """Assign offsets to validated batches (patched in ``buf``) and append them.

        ``headers`` are those ``validate_batches(buf)`` returned. With
        ``log_append_time_ms`` each batch is stamped with it and re-signed.
        """
        if not headers:
            raise InvalidAppend("empty record set")
        next_offset = first_offset = self.log_end_offset
        batches: list[BatchInfo] = []
        max_ts = offset_of_max = -1
        records = position = 0
        for header in headers:
            size = header.batch_length + 12
            last = next_offset + header.last_offset_delta
            patch_base_offset(buf, position, next_offset)
            patch_leader_epoch(buf, position, leader_epoch)
            if log_append_time_ms is None:
                timestamp = header.max_timestamp
            else:
                patch_log_append_time(buf, position, size, log_append_time_ms)
                timestamp = log_append_time_ms
            if timestamp > max_ts:
                max_ts, offset_of_max = timestamp, last
            batches.append((position, last, timestamp, size))
            records += header.records_count
            position += size
            next_offset = last + 1
        if position != len(buf):
            raise InvalidAppend(f"headers cover {position} bytes of a {len(buf)}-byte payload")
        self._append(buf, batches, first_offset)
        return AppendInfo(
            first_offset=first_offset,
            last_offset=next_offset - 1,
            log_append_time_ms=-1 if log_append_time_ms is None else log_append_time_ms,
            max_timestamp=max_ts,
            offset_of_max_timestamp=offset_of_max,
            log_start_offset=self.log_start_offset,
            record_count=records,
            size_bytes=position,
        )

    def append_as_follower(self, buf: bytes | bytearray) -> AppendInfo:
        """Append batches whose offsets the leader assigned; they must follow the log end.

        Gaps are allowed (compacted leaders have them); going backwards is not.
        """
        try:
            headers = validate_batches(buf)
        except InvalidBatch as exc:
            raise InvalidAppend(str(exc)) from exc
        expected = self.log_end_offset
        batches: list[BatchInfo] = []
        max_ts = offset_of_max = -1
        records = position = 0
        for header in headers:
            if header.base_offset < expected:
                raise InvalidAppend(
                    f"batch at offset {header.base_offset} does not follow offset {expected - 1}"
                )
            if header.max_timestamp > max_ts:
                max_ts, offset_of_max = header.max_timestamp, header.last_offset
            batches.append((position, header.last_offset, header.max_timestamp, header.size))
            records += header.records_count
            position += header.size
            expected = header.next_offset
        self._append(buf, batches, headers[0].base_offset)
        return AppendInfo(
            first_offset=headers[0].base_offset,
            last_offset=expected - 1,
            log_append_time_ms=-1,
            max_timestamp=max_ts,
            offset_of_max_timestamp=offset_of_max,
            log_start_offset=self.log_start_offset,
            record_count=records,
            size_bytes=position,
        )

    def _append(self, buf: bytes | bytearray | memoryview, batches: list[BatchInfo], first: int) -> None:
        if self.offline is not None:
            raise self._offline_error()
        try:
            self._write(buf, batches, first)
        except OSError as exc:
            raise self.io_failed(exc, "append") from exc

    def _write(self, buf: bytes | bytearray | memoryview, batches: list[BatchInfo], first: int) -> None:
        now = self._clock()
        last = batches[-1][1]
        segment = self._segments[-1]
        if segment.size and self._should_roll(segment, len(buf), last, now):
            segment = self.roll(first)
        if segment.size == 0:
            segment.roll_base_ms = now
        segment.append(buf, batches)
        self.log_end_offset = last + 1
        # flush.messages is a promise made per append, kept on the append path as Kafka
        # does; flush.ms is kept by the periodic `LogManager.flush_dirty`, off the loop.
        if self.log_end_offset - self.recovery_point >= self.config.flush_messages:
            self._flush(None)

    def _should_roll(self, segment: LogSegment, size: int, last_offset: int, now: int) -> bool:
        config = self.config
        return (
            segment.size > config.segment_bytes - size
            or now - segment.roll_base_ms > config.segment_ms
            or last_offset - segment.base_offset > INT32_MAX
            or segment.index.count >= self._max_offset_entries
            or segment.time_index.count >= self._max_time_entries
        )

    def roll(self, base_offset: int | None = None) -> LogSegment:
        """Seal the active segment and start a new one at the log end (or later)."""
        with self._lock:
            new_base = self.log_end_offset if base_offset is None else base_offset
            new_base = max(new_base, self.log_end_offset)
            active = self._segments[-1]
            if active.size == 0:
                if active.base_offset == new_base:
                    return active
                self._delete_segments([active])  # an empty segment at the wrong base
            else:
                active.seal()
                self._unsynced_sealed.append(active)
            segment = LogSegment.create(
                self.dir, new_base, self.config.index_interval_bytes, self._clock()
            )
            self._segments.append(segment)
            self._bases.append(new_base)
            self._dir_dirty = True
            self.log_start_offset = max(self.log_start_offset, self._bases[0])
            return segment

    def maybe_roll_by_time(self, now_ms: int) -> bool:
        """Roll an idle active segment older than segment.ms (appends check this too)."""
        active = self._segments[-1]
        if active.size and now_ms - active.roll_base_ms > self.config.segment_ms:
            with self._guard("roll"):
                self.roll()
            return True
        return False

    # -- reads ------------------------------------------------------------------------

    def read(
        self,
        offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> ReadResult:
        """Whole batches from the one holding ``offset``, from a single segment.

        At most ``max_bytes`` unless the first batch alone is larger and ``min_one_batch``
        (KIP-74). No batch whose base offset is >= ``max_offset`` (the high watermark),
        and nothing at all when ``offset`` is at or past it, as Kafka answers a consumer.
        ``OffsetOutOfRange`` outside [log start, log end]; empty at the log end.
        """
        if self.offline is not None:
            raise self._offline_error()
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRange(offset, self.log_start_offset, self.log_end_offset)
        if offset == self.log_end_offset or (max_offset is not None and offset >= max_offset):
            return ReadResult(b"", offset)
        try:
            return self._read(offset, max_bytes, max_offset, min_one_batch)
        except CorruptLog as exc:
            health.report_corrupt(exc.path, exc.position, exc.reason,
                                  f"read of {self.topic}-{self.partition} at offset {offset}")
            raise
        except OSError as exc:
            raise self.io_failed(exc, f"read at offset {offset}") from exc

    def _read(
        self, offset: int, max_bytes: int, max_offset: int | None, min_one_batch: bool
    ) -> ReadResult:
        segments, bases = self._segments, self._bases
        i = bisect_right(bases, offset) - 1
        while i < len(segments):
            segment = segments[i]
            found = segment.find_batch(offset)
            if found is None:  # past this segment's last batch: the next one has it
                i += 1
                continue
            position, base, size = found
            if max_offset is not None and base >= max_offset:
                break
            try:
                end = self._read_end(i, position, size, max_offset, max_bytes)
            except CorruptLog:  # damage further on: the first batch alone is safe
                end = position + size if size <= max_bytes else position
            if end == position:
                if not min_one_batch:
                    break
                end = position + size
            bound = bases[i + 1] if i + 1 < len(segments) else self.log_end_offset
            return ReadResult(segment.read_checked(position, end - position, size, bound), base)
        return ReadResult(b"", offset)

    def _read_end(
        self, i: int, position: int, size: int, max_offset: int | None, max_bytes: int
    ) -> int:
        """Where a read from the batch at ``position`` of segment ``i`` stops: the
        segment end, the high watermark or ``max_bytes``, at a batch boundary."""
        segment = self._segments[i]
        end = segment.size
        if max_offset is not None and (
            i + 1 == len(self._segments) or max_offset < self._bases[i + 1]
        ):
            end = segment.position_before_offset(max_offset)
        if end - position > max_bytes:
            if size > max_bytes:
                return position
            return segment.last_boundary_at_or_below(position + max_bytes, position)
        return end

    def offset_for_timestamp(self, timestamp: int) -> OffsetAndTimestamp | None:
        """The earliest record stamped >= ``timestamp`` at or after the log start."""
        with self._guard("timestamp lookup"):
            return self._offset_for_timestamp(timestamp)

    def _offset_for_timestamp(self, timestamp: int) -> OffsetAndTimestamp | None:
        segments = self._segments
        first = max(bisect_right(self._bases, self.log_start_offset) - 1, 0)
        for segment in segments[first:]:
            if segment.max_timestamp_and_offset()[0] >= timestamp:
                found = segment.find_timestamp(timestamp, self.log_start_offset)
                if found is not None:
                    return OffsetAndTimestamp(*found)
        return None

    def max_timestamp_and_offset(self) -> TimestampAndOffset:
        """The largest timestamp and the first record carrying it; (-1, -1) if none."""
        with self._guard("timestamp lookup"):
            return self._max_timestamp_and_offset()

    def _max_timestamp_and_offset(self) -> TimestampAndOffset:
        best: LogSegment | None = None
        best_ts = best_offset = -1
        for segment in self._segments:
            timestamp, offset = segment.max_timestamp_and_offset()
            if timestamp > best_ts:
                best, best_ts, best_offset = segment, timestamp, offset
        if best is None:
            return TimestampAndOffset(-1, -1)
        return TimestampAndOffset(best_ts, best.first_record_with_timestamp(best_offset, best_ts))

    # -- truncation and retention -----------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Drop every batch holding an offset >= ``offset`` (a follower diverged).

        A batch straddling ``offset`` goes whole, and the log end becomes its base offset:
        the log end always matches the data, before and after a restart. (Kafka sets the
        log end to ``offset`` regardless; followers truncate at batch boundaries, where
        the two agree.) The log start follows the log end down if it was above it; no
        record lies in between.
        """
        with self._lock, self._guard("truncation"):
            if offset >= self.log_end_offset:
                return
            if offset < self.log_start_offset:
                self.truncate_fully_and_start_at(offset)
                return
            self._delete_segments(
                [s for s in reversed(self._segments[1:]) if s.base_offset > offset]
            )
            active = self._segments[-1]
            if active in self._unsynced_sealed:
                self._unsynced_sealed.remove(active)
            active.truncate_to(offset, self._clock())
            self.log_end_offset = active.next_offset
            self.log_start_offset = min(self.log_start_offset, self.log_end_offset)
            self.recovery_point = min(self.recovery_point, self.log_end_offset)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete everything and continue at ``offset`` (a follower far behind)."""
        with self._lock, self._guard("truncation"):
            self._delete_segments(list(reversed(self._segments)))
            segment = LogSegment.create(
                self.dir, offset, self.config.index_interval_bytes, self._clock()
            )
            self._segments, self._bases = [segment], [offset]
            self.log_start_offset = self.log_end_offset = self.recovery_point = offset
            fsync_dir(self.dir)
            self._dir_dirty = False

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: raise the log start to ``offset``; drop whole segments below it."""
        if offset > self.log_end_offset:
            raise OffsetOutOfRange(offset, self.log_start_offset, self.log_end_offset)
        with self._lock, self._guard("DeleteRecords"):
            before = self.log_start_offset
            self.log_start_offset = max(self.log_start_offset, offset)
            self._delete_old_segments(
                retention.below_log_start(
                    self._segments, self.log_end_offset, self.log_start_offset
                )
            )
            self._start_moved_from(before)
            return self.log_start_offset

    def enforce_retention(self, now_ms: int, high_watermark: int | None = None) -> int:
        """Delete the oldest segments past retention.ms or retention.bytes; return how many.

        As in Kafka a segment goes only once wholly below the high watermark, and when
        every segment is expired the active one is rolled so that it can go too.
        """
        with self._lock, self._guard("retention"):
            before = self.log_start_offset
            count = retention.expired(
                self._segments,
                self.log_end_offset,
                self.log_start_offset,
                self.config,
                now_ms,
                high_watermark,
            )
            self._delete_old_segments(count)
            self._start_moved_from(before)
            if count:
                log.info("%s-%d: retention deleted %d segment(s); log start offset now %d",
                         self.topic, self.partition, count, self.log_start_offset)
            return count

    def _start_moved_from(self, before: int) -> None:
        if self.log_start_offset != before and self.on_log_start_moved is not None:
            self.on_log_start_moved(self.log_start_offset)

    def _delete_old_segments(self, count: int) -> None:
        if count == 0:
            return
        if count == len(self._segments):
            self.roll()
        self._delete_segments(self._segments[:count])
        self.log_start_offset = max(self.log_start_offset, self._bases[0])
        self.recovery_point = max(self.recovery_point, self._bases[0])

    def _delete_segments(self, doomed: Sequence[LogSegment]) -> None:
        """Unlink segments in the given order (oldest first for retention, newest first
        for truncation, so a crash midway never leaves a hole in the offsets).

        Kafka renames to ``.deleted`` and unlinks after file.delete.delay.ms so concurrent
        readers finish; our reads are synchronous on the one loop thread, so nothing can
        still be reading a segment once it is out of the list, and we unlink at once.
        """
        gone = {id(segment) for segment in doomed}
        self._segments = [s for s in self._segments if id(s) not in gone]
        self._bases = [s.base_offset for s in self._segments]
        self._unsynced_sealed = [s for s in self._unsynced_sealed if id(s) not in gone]
        for segment in doomed:
            segment.delete()
        self._dir_dirty = True

    # -- compaction -------------------------------------------------------------------

    def replace_segments(
        self, groups: Sequence[tuple[LogSegment, Sequence[LogSegment]]]
    ) -> list[LogSegment] | None:
        """Put each of the log cleaner's ``cleaned`` segments (named ``.cleaned``,
        fsynced) in place of its run of consecutive sealed segments; None, and nothing
        done, if the log changed meanwhile (retention, truncation, deletion took some).

        Runs on the thread that reads the log (the event loop), so no read is between
        segment lists or on a closed file. Kafka's crash-safe order: the cleaned files
        become ``.swap`` and the directory is fsynced before any old file goes; a restart
        then finishes the swap (see ``loader``), so a crash at any point loses nothing.
        The old segments are closed and renamed ``.deleted``; unlinking them (milliseconds
        per 16 MiB) is left to the caller's worker thread, returned here.
        """
        with self._lock:
            if self._closed or self.offline is not None:
                return None
            if any(self._position_of(old) is None for _, old in groups):
                return None
            with self._guard("segment replacement"):
                for cleaned, _ in groups:
                    cleaned.change_suffix(SWAP_SUFFIX)
                fsync_dir(self.dir)
                retired: list[LogSegment] = []
                for cleaned, old in groups:
                    at = self._position_of(old)
                    assert at is not None
                    self._segments[at : at + len(old)] = [cleaned]
                    for segment in reversed(old):  # the first shares the cleaned one's name
                        segment.close()
                        segment.change_suffix(DELETED_SUFFIX)
                    cleaned.change_suffix("")
                    retired += old
                self._bases = [segment.base_offset for segment in self._segments]
                gone = {id(segment) for segment in retired}
                self._unsynced_sealed = [s for s in self._unsynced_sealed if id(s) not in gone]
                self._dir_dirty = True
            return retired

    def _position_of(self, run: Sequence[LogSegment]) -> int | None:
        """Where ``run`` starts in the segment list if it is there, whole and sealed."""
        ids = [id(segment) for segment in self._segments]
        try:
            at = ids.index(id(run[0]))
        except ValueError:
            return None
        if at + len(run) >= len(ids) or ids[at : at + len(run)] != [id(s) for s in run]:
            return None
        return at

    # -- durability and lifecycle -----------------------------------------------------

    def flush(self, up_to: int | None = None) -> None:
        """fsync everything below ``up_to`` (default: the log end); advance the recovery
        point. Safe to run in a worker thread while the event loop appends. An offline
        log has nothing it could make durable: a no-op."""
        if self.offline is not None:
            return
        try:
            self._flush(up_to)
        except OSError as exc:
            raise self.io_failed(exc, "flush") from exc

    def _flush(self, up_to: int | None) -> None:
        with self._lock:
            if self._closed:
                return
            end = self.log_end_offset if up_to is None else min(up_to, self.log_end_offset)
            sealed, self._unsynced_sealed = self._unsynced_sealed, []
            for segment in sealed:
                segment.flush()
            if end > self.recovery_point:
                segments, bases = list(self._segments), list(self._bases)
                first = max(bisect_right(bases, self.recovery_point) - 1, 0)
                last = bisect_right(bases, end - 1)
                for segment in segments[first:last]:
                    if segment not in sealed:
                        segment.flush()
            if self._dir_dirty:
                self._dir_dirty = False
                fsync_dir(self.dir)
            self.recovery_point = max(self.recovery_point, end)
            if up_to is None:
                self.last_flush_ms = self._clock()

    def close(self) -> None:
        """Flush everything (indexes written, max timestamp recorded) and close files.

        Never raises for I/O: an offline log (or one failing now) only closes its files,
        writing nothing, so that the manager can still close the other logs.
        """
        with self._lock:
            if self._closed:
                return
            if self.offline is None:
                try:
                    active = self._segments[-1]
                    active.seal()
                    self._unsynced_sealed.append(active)
                    self._flush(None)
                except OSError as exc:
                    self.io_failed(exc, "close")
            for segment in self._segments:
                segment.close()
            self._closed = True

    def delete(self) -> None:
        """Remove the whole partition directory (DeleteTopics, reassignment away)."""
        with self._lock:
            for segment in self._segments:
                segment.close()
            self._closed = True
            doomed = self.dir.with_name(delete_dir_name(self.dir.name))
            try:
                os.rename(self.dir, doomed)
            except OSError as exc:
                raise StorageError(f"cannot delete {self.dir}: {exc}") from exc
            fsync_dir(self.dir.parent)
            shutil.rmtree(doomed, ignore_errors=True)

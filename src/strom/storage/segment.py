"""One segment of a partition log: a ``.log`` file of whole batches and its two indexes.

The segment is the unit of rolling, retention and recovery. It stores batches exactly as
they arrived (base offset already assigned) and never looks inside them on the hot path:
appends cost one ``write`` plus a few integer comparisons per batch, reads cost a sparse
index lookup and a scan of at most ``index.interval.bytes`` worth of batch headers.

Indexing follows Kafka's recovery rule, applied per batch: when more than
``index.interval.bytes`` were written since the last entry, the next batch gets an offset
index entry (its last offset, its position) and the time index gets (max timestamp so far,
offset of the batch that carried it) if that maximum grew. Appends and recovery use the
same rule, so a rebuilt index equals the one written live.

A segment is either *active* (the log's last: writable indexes in memory, next offset
and max timestamp known) or *sealed* (rolled or merely loaded from disk: indexes mapped
lazily, statistics read from the time index's last entry, which Kafka and we append on
roll and on close). A sealed segment's indexes are checked the first time they are used
and rebuilt from the log if they are missing or damaged.

Damage. Recovery cuts invalid bytes at the end of the file (a torn write), as Kafka does.
Invalid bytes *followed by valid batches* are not a torn write but damage (bit rot, a
lost page, out-of-order writeback): Kafka cuts there too and silently drops every later
batch. Here the original file is kept aside (``<base>.log.<ms>.corrupt``, for the
operator), the segment is rewritten without the damaged bytes, every damaged range is
logged at ERROR with its byte position and counted, and the offsets it held become a gap
(``lost_offsets``) that reads skip as they skip a compacted range. Reads meet damage
below the log end as ``CorruptLog`` with file and position, never as a partial batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from strom.protocol.records import (
    CURRENT_MAGIC,
    HEADER_PREFIX,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    BatchHeader,
    InvalidBatch,
    crc_of,
    decode_records,
    read_header,
    scan_batches,
)
from strom.storage import health
from strom.storage.errors import CorruptLog
from strom.storage.files import (
    CORRUPT_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    TMP_SUFFIX,
    TXN_INDEX_SUFFIX,
    fsync_dir,
    segment_path,
)
from strom.storage.index import OffsetIndex, TimeIndex

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
_SCAN_CHUNK = 8 * 1024  # header scans past an index entry: a few small batches per read
_RECOVERY_CHUNK = 1 << 20  # recovery reads whole batches to check their CRC
_RESYNC_WINDOW = 1 << 20  # damage: how much is searched per read for the next valid batch
_MAGIC = bytes([CURRENT_MAGIC])

# (position in the appended buffer, last offset, max timestamp, size) of one batch
BatchInfo = tuple[int, int, int, int]
# (position, base offset, size, last offset, max timestamp) of a batch found by a scan
Slot = tuple[int, int, int, int, int]

_SCAN = HEADER_PREFIX  # see strom.protocol.records: the header fields scans need
_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD


class LogSegment:
    """A ``.log`` file with its ``.index`` and ``.timeindex``, named by base offset."""

    def __init__(
        self, dir: Path, base_offset: int, fd: int, size: int, interval: int, suffix: str = ""
    ) -> None:
        self.base_offset = base_offset
        self.log_path = segment_path(dir, base_offset, LOG_SUFFIX + suffix)
        self.index = OffsetIndex(segment_path(dir, base_offset, INDEX_SUFFIX + suffix),
                                 base_offset)
        self.time_index = TimeIndex(
            segment_path(dir, base_offset, TIME_INDEX_SUFFIX + suffix), base_offset
        )
        self.index_interval_bytes = interval
        self.size = size
        self.roll_base_ms = 0  # wall time of the first append, for segment.ms
        self._fd = fd
        self._checked = False  # indexes validated (or freshly built)
        self._stats_known = False  # the four fields below are exact
        self._next_offset = base_offset
        self._max_ts = -1
        self._offset_of_max_ts = -1
        self._bytes_since_index = 0
        # [first, next) offset ranges whose batches recovery dropped as damaged while
        # keeping valid batches after them
        self.lost_offsets: list[tuple[int, int]] = []

    @classmethod
    def create(
        cls, dir: Path, base_offset: int, interval: int, now_ms: int, suffix: str = ""
    ) -> LogSegment:
        """A new empty segment; ``suffix`` (``.cleaned``) names one the log cleaner builds
        beside the segments it replaces."""
        path = segment_path(dir, base_offset, LOG_SUFFIX + suffix)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        segment = cls(dir, base_offset, fd, 0, interval, suffix)
        segment.index.create()
        segment.time_index.create()
        segment._checked = segment._stats_known = True
        segment.roll_base_ms = now_ms
        return segment

    @classmethod
    def open(cls, dir: Path, base_offset: int, interval: int, suffix: str = "") -> LogSegment:
        """Open an existing segment sealed; nothing but its size is read."""
        fd = os.open(segment_path(dir, base_offset, LOG_SUFFIX + suffix),
                     os.O_RDWR | os.O_APPEND)
        return cls(dir, base_offset, fd, os.fstat(fd).st_size, interval, suffix)

    def __repr__(self) -> str:
        return f"LogSegment({self.log_path.name}, size={self.size})"

    # -- state ----------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        """One past the last offset in this segment (its base offset when empty)."""
        if not self._stats_known:
            self._load_stats()
        return self._next_offset

    def max_timestamp_and_offset(self) -> tuple[int, int]:
        """(largest batch max timestamp, last offset of that batch); (-1, -1) if none."""
        if not self._stats_known:
            self._load_stats()
        return self._max_ts, self._offset_of_max_ts

    def largest_timestamp(self) -> int:
        """What retention.ms compares against: max timestamp, else the file's mtime."""
        timestamp, _ = self.max_timestamp_and_offset()
        if timestamp >= 0:
            return timestamp
        return os.stat(self.log_path).st_mtime_ns // 1_000_000

    def index_entries(self) -> tuple[int, int]:
        """Entries in the offset and time indexes (loads a sealed segment's)."""
        return self.index.entries, self.time_index.entries

    def _load_stats(self) -> None:
        """Statistics of a sealed segment: time index's last entry, a short tail scan."""
        self._ensure_checked()
        if self._stats_known:
            return
        self._max_ts, offset = self.time_index.last_entry()
        self._offset_of_max_ts = offset if self._max_ts >= 0 else -1
        next_offset = self.base_offset
        for slot in self._headers(self.index.last_position(), self.size):
            next_offset = slot[3] + 1
        self._next_offset = next_offset
        self._stats_known = True

    def _ensure_checked(self) -> None:
        if self._checked:
            return
        if not (self.index.sane(self.size) and self.time_index.sane()):
            log.warning("rebuilding damaged indexes of %s", self.log_path)
            self.recover()
            self.index.seal()
            self.time_index.seal()
        self._checked = True

    # -- activation, recovery, truncation ---------------------------------------------

    def activate(self, now_ms: int) -> int:
        """Prepare a segment loaded from disk to take appends (clean open, truncation).

        Loads the indexes writable, checks them, and scans the batches past the last index
        entry (CRC included) to learn the next offset. A damaged index or tail triggers a
        full recovery. Returns the bytes truncated (0 on a healthy segment).
        """
        self.index.load(writable=True)
        self.time_index.load(writable=True)
        if not (self.index.sane(self.size) and self.time_index.sane()):
            return self.recover(now_ms)
        max_ts, offset = self.time_index.last_entry()
        self._max_ts, self._offset_of_max_ts = max_ts, (offset if max_ts >= 0 else -1)
        start = self.index.last_position()
        end, next_offset = self._index_from(start)
        if end != self.size or (start > 0 and end == start):
            return self.recover(now_ms)
        self._next_offset = next_offset
        self._checked = self._stats_known = True
        self.roll_base_ms = self.first_batch_timestamp(now_ms)
        return 0

    def recover(self, now_ms: int = 0, *, offset_limit: int | None = None) -> int:
        """Rebuild both indexes from the log, checking every batch's CRC and offsets.

        ``offset_limit`` is the next segment's base offset: no batch here may reach it
        (base offsets are not covered by the CRC, so a flipped bit there shows only so).
        Invalid bytes at the end are cut; damage followed by valid batches is removed
        with the original file kept aside (see the module docstring). Returns the bytes
        removed.
        """
        self._reset_indexes()
        self.size = os.fstat(self._fd).st_size
        end, next_offset = self._index_from(0, offset_limit)
        removed = self.size - end
        if removed:
            salvaged = self._salvageable(end, next_offset, offset_limit)
            if salvaged:
                self._rewrite_without_damage(end, salvaged)
                self._reset_indexes()
                end, next_offset = self._index_from(0, offset_limit)
            if end < self.size:
                log.warning("truncating %d invalid bytes at %d of %s",
                            self.size - end, end, self.log_path)
                os.ftruncate(self._fd, end)
                self.size = end
        self._next_offset = next_offset
        # As after a clean roll, the last entry carries the segment's max timestamp.
        self.time_index.maybe_append(self._max_ts, self._offset_of_max_ts)
        self.index.persist(fsync=False)
        self.time_index.persist(fsync=False)
        self._checked = self._stats_known = True
        self.roll_base_ms = self.first_batch_timestamp(now_ms)
        return removed

    def _reset_indexes(self) -> None:
        self.index.reset()
        self.time_index.reset()
        self._max_ts, self._offset_of_max_ts = -1, -1

    # -- damage -------------------------------------------------------------------------

    def _salvageable(
        self, position: int, next_offset: int, limit: int | None
    ) -> list[tuple[int, int, int]]:
        """Runs of valid batches after the invalid byte at ``position``.

        Returns (start, end, offsets lost before start) per run; empty when nothing valid
        follows, i.e. the invalid bytes are a torn tail.
        """
        runs: list[tuple[int, int, int]] = []
        while position < self.size:
            start = self._resync(position + 1, next_offset, limit)
            if start is None:
                break
            lost_from = next_offset
            end = start
            for pos, header in self._forward_batches(start, next_offset, limit):
                end, next_offset = pos + header.size, header.next_offset
            runs.append((start, end, lost_from))
            position = end
        return runs

    def _resync(self, position: int, expected: int, limit: int | None) -> int | None:
        """Where the next valid batch of this segment starts after damage, if anywhere."""
        return find_next_batch(
            self._fd, position, self.size,
            lambda h: h.base_offset >= expected and self._offsets_fit(h, limit),
        )

    def _offsets_fit(self, header: BatchHeader, limit: int | None) -> bool:
        """Offsets a batch of this segment can hold: int32 relative, below ``limit``."""
        return (
            header.last_offset_delta >= 0
            and header.last_offset - self.base_offset <= INT32_MAX
            and (limit is None or header.last_offset < limit)
        )

    def _rewrite_without_damage(self, keep_to: int, runs: list[tuple[int, int, int]]) -> None:
        """Keep the original aside, then replace the file by its valid batches only.

        Order matters for crashes: the original is hard-linked aside first and the new
        file is renamed over the old one, so the ``.log`` always holds one or the other.
        """
        aside = self.log_path.with_name(
            f"{self.log_path.name}.{time.time_ns() // 1_000_000}{CORRUPT_SUFFIX}"
        )
        try:
            os.link(self.log_path, aside)
        except OSError:
            shutil.copyfile(self.log_path, aside)
        damaged_from = keep_to
        for start, end, lost_from in runs:
            lost_to = self._base_offset_at(start)
            lost = f"offsets {lost_from}..{lost_to - 1}" if lost_to > lost_from else "no offset"
            health.report_corrupt(
                self.log_path, damaged_from,
                f"{start - damaged_from} damaged bytes before valid batches ({lost} lost; "
                f"the later batches are kept; original file kept at {aside.name})",
                "recovery",
            )
            if lost_to > lost_from:
                self.lost_offsets.append((lost_from, lost_to))
            damaged_from = end
        self._copy_runs([(0, keep_to), *((s, e) for s, e, _ in runs)])

    def _base_offset_at(self, position: int) -> int:
        return read_header(os.pread(self._fd, HEADER_SIZE, position)).base_offset

    def _copy_runs(self, runs: list[tuple[int, int]]) -> None:
        tmp = self.log_path.with_name(self.log_path.name + TMP_SUFFIX)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for start, end in runs:
                position = start
                while position < end:
                    chunk = os.pread(self._fd, min(_RECOVERY_CHUNK, end - position), position)
                    if not chunk:
                        raise CorruptLog(self.log_path, position, "file shrank during recovery")
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                    position += len(chunk)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, self.log_path)
        fsync_dir(self.log_path.parent)
        os.close(self._fd)
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND)
        self.size = os.fstat(self._fd).st_size

    def truncate_to(self, offset: int, now_ms: int) -> int:
        """Drop the batch holding ``offset`` and all after it; return bytes removed."""
        if not self.index.writable or not self._stats_known:
            self.activate(now_ms)
        found = self.find_batch(offset)
        if found is None:
            return 0
        position, base_offset, _ = found
        removed = self.size - position
        os.ftruncate(self._fd, position)
        self.size = position
        self.index.truncate_to_position(position)
        self.time_index.truncate_to_offset(base_offset)
        max_ts, max_offset = self.time_index.last_entry()
        self._max_ts, self._offset_of_max_ts = max_ts, (max_offset if max_ts >= 0 else -1)
        _, self._next_offset = self._index_from(self.index.last_position())
        if self.size == 0:
            self.roll_base_ms = now_ms
        return removed

    def _index_from(self, position: int, limit: int | None = None) -> tuple[int, int]:
        """Index the valid batches from ``position`` (an index entry or 0) to the end.

        Returns (end of the valid bytes, next offset). Stops at a bad CRC, a torn batch,
        offsets going backwards, reaching ``limit`` or not fitting the int32 relative
        offsets of the indexes.
        """
        next_offset = self.base_offset
        end = position
        self._bytes_since_index = 0
        for pos, header in self._forward_batches(position, self.base_offset, limit):
            self._index_batch(pos, header.last_offset, header.max_timestamp, header.size)
            next_offset = header.next_offset
            end = pos + header.size
        return end, next_offset

    def _forward_batches(
        self, position: int, next_offset: int, limit: int | None
    ) -> Iterator[tuple[int, BatchHeader]]:
        """Valid batches from ``position``: whole, good CRC, offsets moving forward."""
        for pos, header in self._valid_batches(position):
            if header.base_offset < next_offset or not self._offsets_fit(header, limit):
                return
            yield pos, header
            next_offset = header.next_offset

    def _index_batch(self, position: int, last_offset: int, max_ts: int, size: int) -> None:
        if max_ts > self._max_ts:
            self._max_ts, self._offset_of_max_ts = max_ts, last_offset
        if self._bytes_since_index > self.index_interval_bytes:
            self.index.append(last_offset, position)
            self.time_index.maybe_append(self._max_ts, self._offset_of_max_ts)
            self._bytes_since_index = 0
        self._bytes_since_index += size

    def first_batch_timestamp(self, default: int) -> int:
        """The first batch's max timestamp (segment.ms and max.compaction.lag.ms age a
        segment by it); ``default`` when the segment is empty or unreadable."""
        if self.size < HEADER_SIZE:
            return default
        try:
            header = read_header(os.pread(self._fd, HEADER_SIZE, 0))
        except InvalidBatch:  # damage a clean start does not scan: reads will report it
            return default
        return header.max_timestamp if header.max_timestamp >= 0 else default

    # -- append -----------------------------------------------------------------------

    def append(self, buf: bytes | bytearray | memoryview, batches: Sequence[BatchInfo]) -> None:
        """Write ``buf`` (whole batches, offsets assigned) with one write, then index it."""
        start = self.size
        try:
            written = os.write(self._fd, buf)
            if written < len(buf):
                with memoryview(buf) as view:
                    while written < len(view):
                        written += os.write(self._fd, view[written:])
        except OSError:
            # Never leave half a payload behind: the next append would follow garbage.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        index, time_index = self.index, self.time_index
        interval = self.index_interval_bytes
        max_ts, offset_of_max = self._max_ts, self._offset_of_max_ts
        since = self._bytes_since_index
        last = self._next_offset - 1
        for rel, last, ts, size in batches:
            if ts > max_ts:
                max_ts, offset_of_max = ts, last
            if since > interval:
                index.append(last, start + rel)
                time_index.maybe_append(max_ts, offset_of_max)
                since = 0
            since += size
        self._max_ts, self._offset_of_max_ts = max_ts, offset_of_max
        self._bytes_since_index = since
        self._next_offset = last + 1
        self.size = start + len(buf)

    # -- reads ------------------------------------------------------------------------

    def read(self, position: int, length: int) -> bytes:
        return os.pread(self._fd, length, position)

    def read_checked(self, position: int, length: int, first_size: int, bound: int) -> bytes:
        """Read ``length`` bytes of whole batches at ``position``, vouching for the first.

        The first batch is the one the fetch offset points into: served damaged (past the
        file end, bad CRC, offsets at or past ``bound``, the next segment's base or the log
        end) a client would stall on it or skip records, so this raises ``CorruptLog``.
        Later batches go unchecked, as in Kafka (clients check CRCs): one CRC per read
        rather than one per batch keeps fetches cheap, and a client that stops at a later
        damaged batch asks for it next, first.
        """
        if position + first_size > self.size:
            raise CorruptLog(self.log_path, position,
                             f"batch of {first_size} bytes runs past the end of the file "
                             f"({self.size} bytes)")
        data = os.pread(self._fd, length, position)
        if len(data) < length:
            raise CorruptLog(self.log_path, position, "file shorter than its batches")
        try:
            header = read_header(data)
        except InvalidBatch as exc:
            raise CorruptLog(self.log_path, position, str(exc)) from exc
        if crc_of(data, 0, first_size) != header.crc:
            raise CorruptLog(self.log_path, position, "CRC-32C mismatch")
        if header.last_offset >= bound or header.last_offset_delta < 0:
            raise CorruptLog(self.log_path, position,
                             f"offsets {header.base_offset}..{header.last_offset} do not "
                             f"fit below {bound}")
        return data

    def find_batch(self, offset: int) -> tuple[int, int, int] | None:
        """(position, base offset, size) of the first batch whose last offset >= ``offset``."""
        self._ensure_checked()
        _, position = self.index.lookup(offset)
        for pos, base, size, last, _ in self._headers(position, self.size):
            if last >= offset:
                return pos, base, size
        return None

    def position_before_offset(self, offset: int) -> int:
        """Where the first batch with base offset >= ``offset`` starts (size if none)."""
        found = self.find_batch(offset)
        if found is None:
            return self.size
        position, base, size = found
        return position if base >= offset else position + size

    def last_boundary_at_or_below(self, limit: int, start: int) -> int:
        """The largest batch boundary <= ``limit``, at or after boundary ``start``."""
        position = start
        if limit - start > 2 * self.index_interval_bytes:
            self._ensure_checked()
            position = max(start, self.index.position_floor(limit))
        for pos, _, size, _, _ in self._headers(position, self.size):
            if pos + size > limit:
                return pos
        return self.size

    def find_timestamp(self, timestamp: int, min_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record >= ``min_offset`` stamped >= ``timestamp``."""
        self._ensure_checked()
        _, after = self.time_index.lookup_before(timestamp)
        _, position = self.index.lookup(after)
        for pos, _, size, last, max_ts in self._headers(position, self.size):
            if max_ts >= timestamp and last >= min_offset:
                return self._first_record(pos, size, min_offset, timestamp)
        return None

    def first_record_with_timestamp(self, batch_offset: int, timestamp: int) -> int:
        """Offset of the first record stamped ``timestamp`` in the batch holding the offset."""
        found = self.find_batch(batch_offset)
        if found is None:
            return batch_offset
        position, base, size = found
        return self._first_record(position, size, base, timestamp)[0]

    def _first_record(
        self, position: int, size: int, min_offset: int, timestamp: int
    ) -> tuple[int, int]:
        """Look inside one batch (ListOffsets only); batch granularity if it cannot."""
        batch = self.read(position, size)
        header = read_header(batch)
        fallback = max(header.base_offset, min_offset), header.max_timestamp
        if header.uses_log_append_time:
            return fallback
        try:
            records = decode_records(batch)
        except ValueError:  # InvalidBatch, DecompressionError
            return fallback
        for record in records:
            if record.offset >= min_offset and record.timestamp >= timestamp:
                return record.offset, record.timestamp
        return fallback

    def _headers(self, position: int, end: int) -> Iterator[Slot]:
        """Scan the batches from ``position`` (a batch boundary) to ``end``."""
        unpack = _SCAN.unpack_from
        while position < end:
            chunk = os.pread(self._fd, min(_SCAN_CHUNK, end - position), position)
            if len(chunk) < HEADER_SIZE:
                raise CorruptLog(self.log_path, position, "torn batch header")
            offset = 0
            while len(chunk) - offset >= HEADER_SIZE:
                base, length, _, magic, _, _, delta, _, max_ts = unpack(chunk, offset)
                if magic != CURRENT_MAGIC or length < _MIN_BATCH_LENGTH:
                    raise CorruptLog(self.log_path, position + offset,
                                     f"no batch header (magic {magic}, length {length})")
                yield position + offset, base, length + LOG_OVERHEAD, base + delta, max_ts
                offset += length + LOG_OVERHEAD
            position += offset

    def _valid_batches(self, position: int) -> Iterator[tuple[int, BatchHeader]]:
        """Whole batches with a good CRC from ``position``; stops at the first bad one."""
        size = os.fstat(self._fd).st_size
        chunk_size = _RECOVERY_CHUNK
        while position < size:
            chunk = os.pread(self._fd, min(chunk_size, size - position), position)
            done = 0
            for rel, header in scan_batches(chunk, 0, verify_crc=True):
                yield position + rel, header
                done = rel + header.size
            if done == len(chunk):
                position += done
                continue
            if position + len(chunk) >= size:
                return  # what is left up to the end of the file is not a valid batch
            if len(chunk) - done >= HEADER_SIZE:
                try:
                    header = read_header(chunk, done)
                except InvalidBatch:
                    return
                if done + header.size <= len(chunk):
                    return  # whole but invalid (CRC)
                chunk_size = max(chunk_size, header.size)
            position += done  # a batch straddles the chunk: read on from its start

    # -- roll, flush, close -----------------------------------------------------------

    def seal(self) -> None:
        """Stop taking appends: record the max timestamp, write the indexes, unmap."""
        self.time_index.maybe_append(self._max_ts, self._offset_of_max_ts)
        self.index.seal()
        self.time_index.seal()

    def flush(self) -> None:
        """fsync the log and write + fsync the indexes."""
        os.fdatasync(self._fd)
        self.index.persist(fsync=True)
        self.time_index.persist(fsync=True)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.index.close()
        self.time_index.close()

    def change_suffix(self, suffix: str) -> None:
        """Rename the three files to ``<base>.log<suffix>`` etc. (the cleaner's
        ``.cleaned`` -> ``.swap`` -> final steps); the log file goes last, so a crash midway
        leaves a swap ``.log`` with indexes that recovery rebuilds."""
        for index in (self.index, self.time_index):
            target = _with_suffix(index.path, suffix)
            with contextlib.suppress(FileNotFoundError):  # sealed and never written
                os.replace(index.path, target)
            index.path = target
        with contextlib.suppress(FileNotFoundError):  # aborted transactions, if any
            os.replace(self.txn_index_path, _with_suffix(self.txn_index_path, suffix))
        target = _with_suffix(self.log_path, suffix)
        os.replace(self.log_path, target)
        self.log_path = target

    @property
    def txn_index_path(self) -> Path:
        """``<base>.txnindex`` beside the log file (kept by ``txn_index``)."""
        return self.log_path.with_name(
            self.log_path.name.replace(LOG_SUFFIX, TXN_INDEX_SUFFIX, 1))

    def delete(self) -> None:
        """Unlink the files, ``.log`` first: a crash midway leaves only orphan indexes."""
        self.close()
        self.log_path.unlink(missing_ok=True)
        self.index.delete()
        self.time_index.delete()
        self.txn_index_path.unlink(missing_ok=True)


def _with_suffix(path: Path, suffix: str) -> Path:
    """``0042.log.cleaned`` -> ``0042.log<suffix>``: the base name plus one extension."""
    base, _, rest = path.name.partition(".")
    kind = rest.split(".")[0]
    return path.with_name(f"{base}.{kind}{suffix}")


def find_next_batch(
    fd: int, position: int, size: int, accept: Callable[[BatchHeader], bool]
) -> int | None:
    """The first position at or after ``position`` where a whole batch starts whose CRC-32C
    matches and whose header ``accept`` takes; None if there is none before ``size``.

    Candidates are the bytes equal to the v2 magic (found with ``bytes.find``, so zeros
    and most garbage are skipped in C); each needs a sane header and a matching CRC, so
    garbage cannot pass for a batch. Used by recovery and by ``strom storage verify``.
    """
    while position <= size - HEADER_SIZE:
        chunk = os.pread(fd, _RESYNC_WINDOW + HEADER_SIZE, position)
        stop = len(chunk) - HEADER_SIZE + 1 + MAGIC_OFFSET  # candidates fit a header
        found = chunk.find(_MAGIC, MAGIC_OFFSET, stop)
        while found >= 0:
            candidate = found - MAGIC_OFFSET
            if _whole_batch_at(fd, position + candidate, chunk, candidate, size, accept):
                return position + candidate
            found = chunk.find(_MAGIC, found + 1, stop)
        position += len(chunk) - HEADER_SIZE + 1
    return None


def _whole_batch_at(
    fd: int, position: int, chunk: bytes, at: int, size: int,
    accept: Callable[[BatchHeader], bool],
) -> bool:
    try:
        header = read_header(chunk, at)
    except InvalidBatch:
        return False
    if position + header.size > size or not accept(header):
        return False
    return crc_of(os.pread(fd, header.size, position), 0, header.size) == header.crc

"""The log cleaner: compaction of one partition log, Kafka's algorithm and rules.

A compacted log keeps at least the latest record of every key. The cleaner splits the log
at the *first dirty offset* (where the last clean stopped, kept in
``cleaner-offset-checkpoint``) and the *first uncleanable offset* (the active segment, the
high watermark, segments younger than ``min.compaction.lag.ms``). It reads the dirty part
once to map every key to its latest offset, then rewrites the whole cleanable part,
segment group by segment group, keeping a record when

* it has a key (a compacted log cannot hold keyless records; Kafka drops them too),
* no later record of its key exists below the first uncleanable offset,
* it is not a tombstone past its delete horizon: a tombstone is kept for
  ``delete.retention.ms`` after the clean that first saw it, which stamps its batch with
  the horizon (KIP-534), so consumers that were behind still see the delete,
* it is not part of an aborted transaction.

A transaction marker goes once its transaction has no data left and its delete horizon
has passed; the last batch of a producer the broker still tracks is kept, emptied if need
be, so its sequence numbers survive. Offsets never change: a cleaned log has gaps.

Threads. ``plan`` reads the live segment list and runs where the log is read (the event
loop); ``CleanJob.run`` does the I/O in a worker thread on file descriptors of its own
(retention may unlink a segment meanwhile, the descriptor keeps it readable); the swap
(``Log.replace_segments``) runs on the loop again and refuses if the log changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strom.protocol.records import (
    HEADER_SIZE,
    Attr,
    BatchHeader,
    InvalidBatch,
    crc_of,
    read_header,
)
from strom.storage import compaction, markers
from strom.storage.compaction import RecordSlice
from strom.storage.errors import CorruptLog
from strom.storage.files import CLEANED_SUFFIX
from strom.storage.log import Log
from strom.storage.segment import INT32_MAX, LogSegment

log = logging.getLogger(__name__)

_ENTRY_BYTES = 24  # what Kafka budgets per key in the dedupe buffer: 16-byte digest + offset
_MAX_DECOMPRESSED = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CleanerConfig:
    """The ``log.cleaner.*`` broker settings the cleaner acts on."""

    enable: bool = True
    threads: int = 1
    dedupe_buffer_size: int = 128 * 1024 * 1024
    io_buffer_size: int = 512 * 1024
    io_buffer_load_factor: float = 0.9
    io_max_bytes_per_second: float = float("inf")
    backoff_ms: int = 15000

    @property
    def map_capacity(self) -> int:
        """Keys one clean may map, as Kafka sizes its per-thread offset map."""
        per_thread = self.dedupe_buffer_size // max(self.threads, 1)
        return max(int(per_thread // _ENTRY_BYTES * self.io_buffer_load_factor), 1)


class Throttler:
    """Keeps the cleaner's disk I/O under ``log.cleaner.io.max.bytes.per.second``, shared
    by every cleaner thread, by sleeping the thread that got ahead."""

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._bytes = 0.0

    def account(self, size: int) -> None:
        if self.rate == float("inf"):
            return
        with self._lock:
            now = time.monotonic()
            if now - self._start > 1.0:  # a fresh window: no credit for idle time
                self._start, self._bytes = now, 0.0
            self._bytes += size
            ahead = self._bytes / self.rate - (now - self._start)
        if ahead > 0:
            time.sleep(ahead)


class OffsetMap:
    """Key -> latest offset over the dirty part of a log (Kafka's SkimpyOffsetMap).

    Keys are held as 16-byte BLAKE2b digests so memory does not grow with key size; a
    collision would make the cleaner drop a live record, which 128 bits rule out in
    practice even against keys chosen by a client.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._offsets: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._offsets)

    @staticmethod
    def digest(key: bytes) -> bytes:
        return hashlib.blake2b(key, digest_size=16).digest()

    def put(self, key: bytes, offset: int) -> None:
        self._offsets[self.digest(key)] = offset

    def put_if_later(self, key: bytes, offset: int) -> None:
        """For records whose commit is learnt late: a later write of the key still wins."""
        digest = self.digest(key)
        if offset > self._offsets.get(digest, -1):
            self._offsets[digest] = offset

    def get(self, key: bytes) -> int | None:
        return self._offsets.get(self.digest(key))

    @property
    def full(self) -> bool:
        return len(self._offsets) >= self.capacity


@dataclass(slots=True)
class CleanPlan:
    """What one clean covers, taken from the live log on the thread that owns it."""

    log: Log
    segments: tuple[LogSegment, ...]  # from the log start up to the first uncleanable offset
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    dirty_bytes: int
    now_ms: int
    # pid -> last offset of producers the broker tracks: their last batch is kept
    producers: Mapping[int, int] = field(default_factory=dict)

    @property
    def dirty_ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


def first_dirty_offset(log_: Log, checkpointed: int | None) -> int:
    """Where the dirty part starts: the checkpoint, unless the log moved past it (Kafka
    resets to the log start when the checkpoint is below it or beyond the active segment)."""
    start = log_.log_start_offset
    if checkpointed is None or checkpointed < start:
        return start
    if checkpointed > log_.active_segment.base_offset:
        return start
    return checkpointed


def plan(
    log_: Log,
    checkpointed: int | None,
    now_ms: int,
    *,
    high_watermark: int | None = None,
    producers: Mapping[int, int] | None = None,
) -> CleanPlan:
    """The cleanable part of a compacted log and its dirty ratio."""
    segments = log_.segments
    limit = segments[-1].base_offset
    if high_watermark is not None:
        limit = min(limit, high_watermark)
    first_dirty = first_dirty_offset(log_, checkpointed)
    lag = log_.config.min_compaction_lag_ms
    chosen: list[LogSegment] = []
    clean = dirty = 0
    for i, segment in enumerate(segments[:-1]):
        upper = segments[i + 1].base_offset
        if upper > limit:
            break
        if upper > first_dirty and lag > 0 and now_ms - segment.largest_timestamp() < lag:
            break
        chosen.append(segment)
        if upper <= first_dirty:
            clean += segment.size
        else:
            dirty += segment.size
    end = segments[len(chosen)].base_offset if chosen else first_dirty
    return CleanPlan(log_, tuple(chosen), min(first_dirty, end), end, clean, dirty, now_ms,
                     dict(producers or {}))


def max_compaction_lag_due(log_: Log, first_dirty: int, now_ms: int) -> bool:
    """max.compaction.lag.ms: the oldest dirty record waited too long, clean regardless of
    the dirty ratio (and roll the active segment, which the caller does)."""
    lag = log_.config.max_compaction_lag_ms
    for segment in log_.segments:
        if segment.base_offset >= first_dirty or segment is log_.active_segment:
            if segment.size == 0:
                return False
            return now_ms - segment.first_batch_timestamp(now_ms) > lag
    return False


@dataclass(slots=True)
class CleanStats:
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_removed: int = 0
    tombstones_removed: int = 0
    invalid_batches: int = 0
    earliest_horizon_ms: int | None = None  # a tombstone or marker that will expire then


@dataclass(slots=True)
class CleanedGroup:
    """One new segment and the old ones it replaces."""

    cleaned: LogSegment
    old: tuple[LogSegment, ...]


class CleanAborted(Exception):
    """The broker is stopping (or the log going away): the clean stops, nothing replaced."""


class _Source:
    """A segment read through a descriptor of our own, batch by batch."""

    def __init__(self, segment: LogSegment) -> None:
        self.segment = segment
        self.fd = os.open(segment.log_path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def batches(self, chunk: int, throttle: Throttler,
                stop: threading.Event) -> Iterator[tuple[BatchHeader, bytes]]:
        """Whole batches in file order, a chunk at a time; stops at the first torn one."""
        position = 0
        while position + HEADER_SIZE <= self.size:
            if stop.is_set():
                raise CleanAborted()
            data = os.pread(self.fd, max(chunk, HEADER_SIZE), position)
            throttle.account(len(data))
            at = 0
            while at + HEADER_SIZE <= len(data):
                header = self._header(data, at, position)
                if at + header.size > len(data):
                    if at == 0:  # one batch larger than the chunk
                        data = os.pread(self.fd, header.size, position)
                        throttle.account(len(data))
                        continue
                    break
                if crc_of(data, at, header.size) != header.crc:
                    raise CorruptLog(self.segment.log_path, position + at, "CRC-32C mismatch")
                yield header, data[at : at + header.size]
                at += header.size
                time.sleep(0)  # hand the GIL to the event loop between batches
            if at == 0:
                raise CorruptLog(self.segment.log_path, position, "torn batch in a sealed segment")
            position += at

    def _header(self, data: bytes, at: int, position: int) -> BatchHeader:
        """A sealed segment holds whole valid batches; anything else is damage that the
        cleaner must not paper over (rewriting would drop what follows it)."""
        try:
            header = read_header(data, at)
        except InvalidBatch as exc:
            raise CorruptLog(self.segment.log_path, position + at, str(exc)) from exc
        if position + at + header.size > self.size:
            raise CorruptLog(self.segment.log_path, position + at, "batch runs past the file end")
        return header


class CleanJob:
    """Cleans one planned log: build the offset map, write the cleaned segments.

    ``run`` does the I/O (a worker thread may call it); the caller then swaps each group
    in with ``Log.replace_segments`` and, when all went in, moves the checkpoint to
    ``end``. ``discard`` removes cleaned files that did not go in.
    """

    def __init__(self, plan_: CleanPlan, config: CleanerConfig, throttle: Throttler) -> None:
        self.plan = plan_
        self.config = config
        self.throttle = throttle
        self.stats = CleanStats()
        self.end = plan_.first_uncleanable
        self.groups: list[CleanedGroup] = []
        self.retired: list[LogSegment] = []  # replaced segments, renamed .deleted, to unlink
        self._sources: dict[int, _Source] = {}
        self._stop = threading.Event()
        self._aborted: dict[int, list[tuple[int, int]]] = {}  # pid -> [(first, marker)]
        bounds = [s.base_offset for s in plan_.segments[1:]] + [plan_.first_uncleanable]
        self._uppers = {id(s): upper for s, upper in zip(plan_.segments, bounds, strict=True)}

    def run(self) -> list[CleanedGroup]:
        plan_ = self.plan
        try:
            self._sources = {id(s): _Source(s) for s in plan_.segments}
            offsets = self._build_offset_map()
            segments = [s for s in plan_.segments if self._upper(s) <= self.end]
            for group in _groups(segments, plan_.log.config.segment_bytes):
                self.groups.append(self._clean_group(group, offsets))
            return self.groups
        except BaseException:
            self.discard(self.groups)
            raise
        finally:
            for source in self._sources.values():
                source.close()

    def abort(self) -> None:
        """From any thread: make ``run`` stop soon with ``CleanAborted``."""
        self._stop.set()

    def discard(self, groups: Sequence[CleanedGroup]) -> None:
        for group in groups:
            with contextlib.suppress(OSError):
                group.cleaned.delete()

    def _upper(self, segment: LogSegment) -> int:
        """The offset just past ``segment``: the next segment's base."""
        return self._uppers[id(segment)]

    # -- the offset map --------------------------------------------------------------

    def _build_offset_map(self) -> OffsetMap:
        """Map the dirty part, whole segments at a time, until the map is full (then the
        clean ends at that segment, as in Kafka; the next clean goes on from there).

        Transactional records count only once their commit marker is seen: an aborted
        write must not supersede the value it failed to replace, and one whose outcome
        lies beyond the cleaned range supersedes nothing yet (it is kept as it is).
        """
        offsets = OffsetMap(self.config.map_capacity)
        pending: dict[int, tuple[int, list[tuple[bytes, int]]]] = {}  # pid -> (first, keys)
        for segment in self.plan.segments:
            if self._upper(segment) <= self.plan.first_dirty:
                continue
            if offsets.full:
                self.end = segment.base_offset
                break
            for header, raw in self._sources[id(segment)].batches(
                    self.config.io_buffer_size, self.throttle, self._stop):
                self._map_batch(offsets, pending, header, raw)
        return offsets

    def _map_batch(self, offsets: OffsetMap,
                   pending: dict[int, tuple[int, list[tuple[bytes, int]]]],
                   header: BatchHeader, raw: bytes) -> None:
        slices, body = self._records(header, raw)
        pid = header.producer_id
        if header.is_control:
            first, keys = pending.pop(pid, (None, []))
            if compaction.control_type(body, slices) == markers.ABORT:
                if first is not None:
                    self._aborted.setdefault(pid, []).append((first, header.base_offset))
                return
            for key, offset in keys:
                offsets.put_if_later(key, offset)
            return
        located = [(r.key, header.base_offset + r.offset_delta) for r in slices
                   if r.key is not None]
        if header.is_transactional:
            pending.setdefault(pid, (header.base_offset, []))[1].extend(located)
            return
        for key, offset in located:
            offsets.put(key, offset)

    def _records(self, header: BatchHeader, raw: bytes) -> tuple[list[RecordSlice], bytes]:
        body = compaction.batch_body(raw, header, _MAX_DECOMPRESSED)
        return compaction.slice_records(body, header.records_count), body

    def _is_aborted(self, header: BatchHeader) -> bool:
        return any(first <= header.base_offset < marker
                   for first, marker in self._aborted.get(header.producer_id, ()))

    # -- rewriting -------------------------------------------------------------------

    def _clean_group(self, group: Sequence[LogSegment], offsets: OffsetMap) -> CleanedGroup:
        plan_ = self.plan
        cleaned = LogSegment.create(plan_.log.dir, group[0].base_offset,
                                    plan_.log.config.index_interval_bytes, plan_.now_ms,
                                    CLEANED_SUFFIX)
        txns = _TxnTracker()
        try:
            for segment in group:
                for header, raw in self._sources[id(segment)].batches(
                        self.config.io_buffer_size, self.throttle, self._stop):
                    kept = self._retained(header, raw, offsets, txns)
                    if kept:
                        self._append(cleaned, kept)
            cleaned.seal()
            cleaned.flush()
        except BaseException:
            with contextlib.suppress(OSError):
                cleaned.delete()
            raise
        return CleanedGroup(cleaned, tuple(group))

    def _append(self, cleaned: LogSegment, data: bytes) -> None:
        header = read_header(data)
        cleaned.append(data, [(0, header.last_offset, header.max_timestamp, header.size)])
        self.stats.bytes_written += len(data)
        self.throttle.account(len(data))

    def _retained(self, header: BatchHeader, raw: bytes, offsets: OffsetMap,
                  txns: _TxnTracker) -> bytes | None:
        """The bytes of ``raw`` that stay: itself, a rebuilt batch, an empty one, None."""
        self.stats.bytes_read += len(raw)
        try:
            slices, body = self._records(header, raw)
        except InvalidBatch:
            self.stats.invalid_batches += 1  # CRC was fine: keep what we cannot judge
            return raw
        self.stats.records_read += len(slices)
        if header.is_control:
            return self._control_retained(header, raw, body, slices, txns)
        if header.is_transactional:
            txns.data(header.producer_id, header.base_offset)
        if self._is_aborted(header):
            kept: list[RecordSlice] = []
            needs_horizon = False
        else:
            kept, needs_horizon = self._filter(header, slices, offsets)
        if kept and header.is_transactional:
            txns.retained(header.producer_id)
        self.stats.records_removed += len(slices) - len(kept)
        return self._rewritten(header, raw, body, slices, kept, needs_horizon)

    def _filter(self, header: BatchHeader, slices: Sequence[RecordSlice],
                offsets: OffsetMap) -> tuple[list[RecordSlice], bool]:
        now = self.plan.now_ms
        horizon = header.base_timestamp if header.attributes & Attr.DELETE_HORIZON else None
        kept: list[RecordSlice] = []
        needs_horizon = False
        for record in slices:
            if record.key is None:
                continue
            latest = offsets.get(record.key)
            if latest is not None and header.base_offset + record.offset_delta < latest:
                continue
            if record.is_tombstone:
                if horizon is not None and now >= horizon:
                    self.stats.tombstones_removed += 1
                    continue
                needs_horizon = needs_horizon or horizon is None
            kept.append(record)
        return kept, needs_horizon

    def _rewritten(self, header: BatchHeader, raw: bytes, body: bytes,
                   slices: Sequence[RecordSlice], kept: Sequence[RecordSlice],
                   needs_horizon: bool) -> bytes | None:
        if not kept:
            last = self.plan.producers.get(header.producer_id)
            if header.producer_id >= 0 and last == header.last_offset:
                return compaction.empty_batch(header)
            return None
        horizon = None
        if needs_horizon:
            horizon = self.plan.now_ms + self.plan.log.config.delete_retention_ms
            self._note_horizon(horizon)
        elif header.attributes & Attr.DELETE_HORIZON and any(r.is_tombstone for r in kept):
            # a tombstone kept under a horizon still ahead: clean again when it passes (a
            # batch whose tombstones are gone keeps its flag but asks for nothing)
            self._note_horizon(header.base_timestamp)
        if len(kept) == len(slices) and horizon is None:
            return raw
        return compaction.rebuild(header, body, kept, delete_horizon_ms=horizon)

    def _control_retained(self, header: BatchHeader, raw: bytes, body: bytes,
                          slices: Sequence[RecordSlice], txns: _TxnTracker) -> bytes | None:
        """A marker stays while its transaction has data in the log; once empty it is
        kept for delete.retention.ms (stamped with a horizon) and then removed."""
        if txns.marker(header.producer_id) or not slices:
            return raw
        if header.attributes & Attr.DELETE_HORIZON:
            if self.plan.now_ms >= header.base_timestamp:
                self.stats.records_removed += len(slices)
                return None
            self._note_horizon(header.base_timestamp)
            return raw
        horizon = self.plan.now_ms + self.plan.log.config.delete_retention_ms
        self._note_horizon(horizon)
        return compaction.rebuild(header, body, slices, delete_horizon_ms=horizon)

    def _note_horizon(self, horizon: int) -> None:
        earliest = self.stats.earliest_horizon_ms
        self.stats.earliest_horizon_ms = horizon if earliest is None else min(earliest, horizon)


class _TxnTracker:
    """Per producer, whether its current transaction kept any data in this clean."""

    def __init__(self) -> None:
        self._open: dict[int, bool] = {}

    def data(self, pid: int, _offset: int) -> None:
        self._open.setdefault(pid, False)

    def retained(self, pid: int) -> None:
        self._open[pid] = True

    def marker(self, pid: int) -> bool:
        """The transaction ends here; True if it still holds data."""
        return self._open.pop(pid, False)


def _groups(segments: Sequence[LogSegment], max_bytes: int) -> Iterator[list[LogSegment]]:
    """Consecutive segments whose total fits one segment (``segment.bytes``, and offsets
    within int32 of the base), so cleaning merges the small segments it leaves behind."""
    group: list[LogSegment] = []
    size = 0
    for segment in segments:
        fits = (size + segment.size <= max_bytes and group
                and segment.base_offset - group[0].base_offset <= INT32_MAX // 2)
        if group and not fits:
            yield group
            group, size = [], 0
        group.append(segment)
        size += segment.size
    if group:
        yield group


def checkpoint_path(log_dir: Path) -> Path:
    return log_dir / "cleaner-offset-checkpoint"


__all__ = [
    "CleanAborted",
    "CleanJob",
    "CleanPlan",
    "CleanStats",
    "CleanedGroup",
    "CleanerConfig",
    "OffsetMap",
    "Throttler",
    "checkpoint_path",
    "first_dirty_offset",
    "max_compaction_lag_due",
    "plan",
]

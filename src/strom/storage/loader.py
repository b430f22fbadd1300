"""Opening a partition directory: find the segments, clean up, recover after a crash.

What startup reads is bounded by what recovery needs, so a broker with years of history
starts as fast as an empty one:

* every segment file is opened and ``fstat``-ed, nothing more; sealed segments load their
  indexes lazily, on first use;
* after a clean shutdown only the active segment is touched: its indexes are loaded and
  the few batches past the last index entry are scanned (CRC included) to find the log end;
* after a crash, segments from the one holding the recovery point on are rescanned with
  CRC checks and their indexes rebuilt. Invalid bytes at the end of a segment are cut.
  Unlike Kafka, which then drops every later segment, later segments are recovered on
  their own and kept: they hold acknowledged batches, and a crash cannot make them
  invalid after a valid check. Damage *inside* a segment is cut out with the original
  kept aside (see ``segment``). Either way the offsets lost are logged at ERROR and
  returned as ``LoadedLog.lost_offsets``, so a follower can re-fetch them. Recovered data
  is fsynced, so the recovery point can move to the log end;
* a missing index file is rebuilt even after a clean shutdown; an index whose file is
  damaged is rebuilt when first used.

Leftovers of interrupted deletes (``.deleted``, ``.cleaned``, ``.tmp``, orphan indexes)
are removed.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from strom.storage import health
from strom.storage.config import LogConfig
from strom.storage.files import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    TMP_SUFFIX,
    TXN_INDEX_SUFFIX,
    fsync_dir,
    parse_segment_name,
)
from strom.storage.segment import LogSegment

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoadedLog:
    segments: list[LogSegment]
    log_start_offset: int
    recovery_point: int
    lost_offsets: list[tuple[int, int]] = field(default_factory=list)  # [first, next)
    dir_dirty: bool = False  # files were created that no fsync of the directory covers yet


def load_segments(
    dir: Path,
    config: LogConfig,
    now_ms: int,
    *,
    recovery_point: int,
    log_start_offset: int,
    clean_shutdown: bool,
) -> LoadedLog:
    """Open (or create) the segments of one partition directory, recovering if needed.

    A new log's files are not made durable here: like Kafka (``LocalLog.flush``), the
    directory is fsynced by the log's first flush (``dir_dirty``). Until then a crash can
    only lose empty files, which the next start creates again; an fsync per partition
    made creating 1,000 partitions take seconds on a busy disk.
    """
    interval = config.index_interval_bytes
    if _make_dir(dir):  # new: nothing to list or recover
        return _fresh(dir, log_start_offset, interval, now_ms)
    _complete_swaps(dir, interval, now_ms)
    bases, missing_index = _list_segments(dir)
    segments = [LogSegment.open(dir, base, interval) for base in bases]
    if not segments:
        return _fresh(dir, log_start_offset, interval, now_ms)
    for i, segment in enumerate(segments):
        if segment.base_offset in missing_index:
            log.warning("rebuilding missing index of %s", segment.log_path)
            segment.recover(now_ms, offset_limit=_next_base(segments, i))
            segment.flush()
            if segment is not segments[-1]:
                segment.seal()
    if clean_shutdown:
        if segments[-1].base_offset not in missing_index:
            segments[-1].activate(now_ms)
        lost = [gap for segment in segments for gap in segment.lost_offsets]
    else:
        lost = _recover(dir, segments, recovery_point, now_ms)
    start = max(log_start_offset, segments[0].base_offset)
    end = segments[-1].next_offset
    if start > end:
        # The log start checkpoint is ahead of the data (lost files): start over there.
        log.warning("%s: log start %d is past the log end %d; emptying the log", dir, start, end)
        for segment in reversed(segments):
            segment.delete()
        segments = [LogSegment.create(dir, start, interval, now_ms)]
        fsync_dir(dir)
        end = start
        lost = []
    return LoadedLog(segments, start, end, lost)


def _make_dir(dir: Path) -> bool:
    """Create the partition directory; False if it was already there."""
    try:
        dir.mkdir()
    except FileExistsError:
        return False
    except FileNotFoundError:  # the log dir itself is missing
        dir.mkdir(parents=True, exist_ok=True)
    return True


def _fresh(dir: Path, log_start_offset: int, interval: int, now_ms: int) -> LoadedLog:
    start = max(log_start_offset, 0)
    segments = [LogSegment.create(dir, start, interval, now_ms)]
    return LoadedLog(segments, start, start, dir_dirty=True)


def _next_base(segments: list[LogSegment], i: int) -> int | None:
    return segments[i + 1].base_offset if i + 1 < len(segments) else None


def _recover(
    dir: Path, segments: list[LogSegment], recovery_point: int, now_ms: int
) -> list[tuple[int, int]]:
    """Rescan from the segment holding the recovery point; return the offsets lost."""
    bases = [segment.base_offset for segment in segments]
    first = max(bisect_right(bases, recovery_point) - 1, 0)
    lost: list[tuple[int, int]] = []
    for i in range(first, len(segments)):
        segment = segments[i]
        limit = _next_base(segments, i)
        removed = segment.recover(now_ms, offset_limit=limit)
        segment.flush()
        lost += segment.lost_offsets
        if removed and limit is not None and segment.next_offset < limit:
            # Kafka drops every later segment here; they hold valid, acknowledged batches
            health.report_corrupt(
                segment.log_path, segment.size,
                f"segment lost its tail (offsets {segment.next_offset}..{limit - 1}); "
                f"the {len(segments) - i - 1} later segment(s) are kept",
                "recovery",
            )
            lost.append((segment.next_offset, limit))
    for segment in segments[first:-1]:
        segment.seal()
    return lost


def _complete_swaps(dir: Path, interval: int, now_ms: int) -> None:
    """Finish segment replacements a crash interrupted (the log cleaner's swap step).

    A ``<base>.log.swap`` was complete and fsynced before it got that name, and its
    offsets are a subset of the segments it replaces: those (the segments whose base lies
    in its offset range) go, then the swap takes its final name, as Kafka's loader does.
    Swap indexes are rebuilt from the log rather than trusted. Index ``.swap`` files
    without a ``.log.swap`` belong to a rename the crash cut short: the cleaned segment
    had not replaced anything yet, and they go.
    """
    names = os.listdir(dir)
    swaps = sorted(
        int(name.split(".")[0]) for name in names if name.endswith(LOG_SUFFIX + SWAP_SUFFIX)
    )
    for name in names:
        if name.endswith(SWAP_SUFFIX) and not name.endswith(LOG_SUFFIX + SWAP_SUFFIX):
            (dir / name).unlink(missing_ok=True)
    for base in swaps:
        swap = LogSegment.open(dir, base, interval, SWAP_SUFFIX)
        swap.recover(now_ms)
        end = swap.next_offset
        for name in names:
            parsed = parse_segment_name(name)
            if parsed is not None and base <= parsed[0] < max(end, base + 1):
                (dir / name).unlink(missing_ok=True)
        swap.change_suffix("")
        swap.close()
        log.info("%s: completed an interrupted segment replacement at offset %d", dir, base)
    if swaps:
        fsync_dir(dir)


def _list_segments(dir: Path) -> tuple[list[int], set[int]]:
    """Base offsets of the segments, and which of them lack an index file."""
    logs: set[int] = set()
    indexes: dict[int, set[str]] = {}
    for name in os.listdir(dir):
        if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, TMP_SUFFIX)):
            (dir / name).unlink(missing_ok=True)
            continue
        parsed = parse_segment_name(name)
        if parsed is None:
            continue
        base, suffix = parsed
        if suffix == LOG_SUFFIX:
            logs.add(base)
        elif suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
            indexes.setdefault(base, set()).add(suffix)
    for base, suffixes in indexes.items():
        if base not in logs:
            for suffix in suffixes:
                (dir / f"{base:020d}{suffix}").unlink(missing_ok=True)
    missing = {base for base in logs
               if not {INDEX_SUFFIX, TIME_INDEX_SUFFIX} <= indexes.get(base, set())}
    return sorted(logs), missing

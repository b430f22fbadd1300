"""Which of a log's oldest segments may go: retention.ms, retention.bytes, log start.

Pure functions over the segment list, so the rules read as Kafka states them and the
``Log`` only has to delete what they count. Every rule counts a *prefix* (segments go
oldest first, never leaving a hole), stops at an empty active segment, and, for the
retention rules, at the first segment not wholly below the high watermark, as Kafka does:
a segment some replica may still need is never deleted by time or size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from strom.storage.config import LogConfig
from strom.storage.segment import LogSegment

# predicate(segment, offset just past its end, is it the active segment)
Predicate = Callable[[LogSegment, int, bool], bool]


def deletable_prefix(
    segments: Sequence[LogSegment], log_end: int, predicate: Predicate, limit: int | None = None
) -> int:
    """How many of the oldest segments satisfy ``predicate``, none reaching past ``limit``."""
    count = 0
    for i, segment in enumerate(segments):
        last = i + 1 == len(segments)
        upper = log_end if last else segments[i + 1].base_offset
        if (last and segment.size == 0) or (limit is not None and upper > limit):
            break
        if not predicate(segment, upper, last):
            break
        count += 1
    return count


def below_log_start(segments: Sequence[LogSegment], log_end: int, log_start: int) -> int:
    """Segments wholly below the log start (DeleteRecords); the active one always stays."""
    return deletable_prefix(
        segments, log_end, lambda _s, upper, last: not last and upper <= log_start
    )


def expired(
    segments: Sequence[LogSegment],
    log_end: int,
    log_start: int,
    config: LogConfig,
    now_ms: int,
    high_watermark: int | None,
) -> int:
    """Segments to delete now: the longest prefix any of the three rules allows.

    Time and size retention apply only when cleanup.policy includes ``delete``: a
    compact-only topic (Connect's configs, Streams changelogs, ``__consumer_offsets``)
    keeps its latest record per key forever, as Kafka keeps it.
    """
    limit = log_end if high_watermark is None else high_watermark
    by_time = by_size = 0
    if not config.delete:
        return below_log_start(segments, log_end, log_start)
    if config.retention_ms >= 0:
        by_time = deletable_prefix(
            segments,
            log_end,
            lambda s, _u, _l: now_ms - s.largest_timestamp() > config.retention_ms,
            limit,
        )
    excess = sum(s.size for s in segments) - config.retention_bytes
    if config.retention_bytes >= 0 and excess > 0:
        by_size = deletable_prefix(segments, log_end, _SizeBudget(excess), limit)
    return max(by_time, by_size, below_log_start(segments, log_end, log_start))


class _SizeBudget:
    """retention.bytes: take segments while what remains stays at or above the limit."""

    def __init__(self, excess: int) -> None:
        self.excess = excess

    def __call__(self, segment: LogSegment, _upper: int, _last: bool) -> bool:
        if self.excess - segment.size < 0:
            return False
        self.excess -= segment.size
        return True

"""Per-topic log settings, under the names Kafka gives them, and the default clock.

Only settings the storage layer itself acts on live here; the broker maps topic configs
(``segment.bytes``, ``retention.ms``, ...) onto this record and may swap it at runtime
with ``Log.update_config``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

LONG_MAX = 2**63 - 1
WEEK_MS = 7 * 24 * 3600 * 1000


def now_ms() -> int:
    """Wall-clock milliseconds: the default ``clock`` of logs and log managers."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Effective settings of one partition log (Kafka property names in comments)."""

    segment_bytes: int = 1 << 30  # segment.bytes
    segment_ms: int = WEEK_MS  # segment.ms
    retention_ms: int = WEEK_MS  # retention.ms, -1 = forever
    retention_bytes: int = -1  # retention.bytes, -1 = unlimited
    index_interval_bytes: int = 4096  # index.interval.bytes
    segment_index_bytes: int = 10 * 1024 * 1024  # segment.index.bytes
    flush_messages: int = LONG_MAX  # flush.messages
    flush_ms: int = LONG_MAX  # flush.ms
    # file.delete.delay.ms: accepted for config round trips, but segments are unlinked
    # right away (see Log._delete_segments for why that is safe here).
    file_delete_delay_ms: int = 60000
    # cleanup.policy: "delete" enables time and size retention, "compact" the log cleaner;
    # a compact-only topic keeps every key's latest record however old it is.
    delete: bool = True
    compact: bool = False
    delete_retention_ms: int = 24 * 3600 * 1000  # delete.retention.ms (tombstones kept)
    min_compaction_lag_ms: int = 0  # min.compaction.lag.ms
    max_compaction_lag_ms: int = LONG_MAX  # max.compaction.lag.ms
    min_cleanable_dirty_ratio: float = 0.5  # min.cleanable.dirty.ratio

    def __post_init__(self) -> None:
        if not 14 <= self.segment_bytes <= 2**31 - 1:
            # Kafka's minimum is LegacyRecord.RECORD_OVERHEAD_V0 (14); positions are int32.
            raise ValueError(f"segment.bytes {self.segment_bytes} out of [14, 2^31-1]")
        if self.segment_ms < 1:
            raise ValueError(f"segment.ms {self.segment_ms} must be positive")
        if self.index_interval_bytes < 0:
            raise ValueError("index.interval.bytes must be >= 0")
        if self.segment_index_bytes < 12:
            raise ValueError("segment.index.bytes must hold at least one entry")
        if self.flush_messages < 1 or self.flush_ms < 0:
            raise ValueError("flush.messages must be >= 1 and flush.ms >= 0")

    @property
    def max_offset_index_entries(self) -> int:
        return self.segment_index_bytes // 8

    @property
    def max_time_index_entries(self) -> int:
        return self.segment_index_bytes // 12

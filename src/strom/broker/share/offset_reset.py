"""Where a new share-partition starts: Kafka's `share.auto.offset.reset`.

`latest` (the default) starts at the high watermark, `earliest` at the log start, and
`by_duration:<ISO-8601 duration>` at the first record stamped no earlier than that long
ago (the high watermark if none is), as Kafka 4.4's share groups do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?",
                       re.IGNORECASE)


class OffsetSource(Protocol):
    """What a share-partition's start is chosen from (a `Partition`)."""

    @property
    def high_watermark(self) -> int: ...

    @property
    def log_start_offset(self) -> int: ...

    def list_offset(self, timestamp: int, read_committed: bool = False) -> object: ...


def duration_ms(text: str) -> int | None:
    """Milliseconds of an ISO-8601 duration such as P1D, PT1H30M, PT0.5S (None: not one)."""
    found = _DURATION.fullmatch(text.strip())
    if found is None or not any(found.groups()):
        return None
    days, hours, minutes, seconds = found.groups()
    total = (int(days or 0) * 86_400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
             + float((seconds or "0").replace(",", ".")))
    return int(total * 1000)


def start_offset(partition: OffsetSource, reset: str, now_ms: Callable[[], int]) -> int:
    """The offset a new share-partition starts at, for the group's reset setting."""
    setting = reset.strip().lower()
    if setting == "earliest":
        return partition.log_start_offset
    if setting.startswith("by_duration:"):
        span = duration_ms(reset.strip()[len("by_duration:"):])
        if span is not None:
            found = partition.list_offset(now_ms() - span)
            offset = int(getattr(found, "offset", -1))
            return offset if offset >= 0 else partition.high_watermark
    return partition.high_watermark

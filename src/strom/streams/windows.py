"""Window specifications and windowed keys, with Kafka Streams' arithmetic.

- `TimeWindows.of(size)`: tumbling; `.advance_by(step)` makes them hopping. Windows are
  aligned to the epoch: `[start, start + size)` with `start % advance == 0`.
- `SlidingWindows.of(time_difference)`: a window per record `[t - diff, t]` (both ends
  inclusive), Kafka's KIP-450 sliding windows.
- `SessionWindows.with_inactivity_gap(gap)`: sessions that merge when closer than `gap`.

Every kind takes `grace_ms`: how long after a window ends records are still accepted
(stream time, not wall-clock time). Kafka 3.0+ asks for the grace explicitly
(`ofSizeAndGrace`/`ofSizeWithNoGrace`); here `grace_ms` defaults to 0, i.e. no grace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Window:
    """`[start, end)` for time windows; `[start, end]` for sessions and sliding windows."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Windowed:
    """A key in a window: what windowed aggregations emit as their key."""

    key: Any
    window: Window


@dataclass(frozen=True, slots=True)
class TimeWindows:
    """Tumbling (advance == size) or hopping (advance < size) windows."""

    size_ms: int
    advance_ms: int
    grace_ms: int = 0

    @classmethod
    def of(cls, size_ms: int, grace_ms: int = 0) -> TimeWindows:
        if size_ms <= 0:
            raise ValueError("window size must be positive")
        return cls(size_ms, size_ms, grace_ms)

    def advance_by(self, advance_ms: int) -> TimeWindows:
        if not 0 < advance_ms <= self.size_ms:
            raise ValueError("advance must be positive and at most the window size")
        return TimeWindows(self.size_ms, advance_ms, self.grace_ms)

    def grace(self, grace_ms: int) -> TimeWindows:
        return TimeWindows(self.size_ms, self.advance_ms, grace_ms)

    def windows_for(self, timestamp: int) -> list[Window]:
        """Every window that contains `timestamp`, oldest first (Kafka's windowsFor)."""
        start = max(0, timestamp - self.size_ms + self.advance_ms)
        start -= start % self.advance_ms
        found = []
        while start <= timestamp:
            found.append(Window(start, start + self.size_ms))
            start += self.advance_ms
        return found

    def retention_ms(self) -> int:
        """How long the store keeps windows unless told: size + grace (Kafka 3.0+)."""
        return self.size_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    """A window of `time_difference_ms` ending at each record (both ends inclusive)."""

    time_difference_ms: int
    grace_ms: int = 0

    @classmethod
    def of(cls, time_difference_ms: int, grace_ms: int = 0) -> SlidingWindows:
        if time_difference_ms <= 0:
            raise ValueError("time difference must be positive")
        return cls(time_difference_ms, grace_ms)

    def retention_ms(self) -> int:
        return self.time_difference_ms * 2 + self.grace_ms


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Sessions separated by at least `gap_ms` of inactivity."""

    gap_ms: int
    grace_ms: int = 0

    @classmethod
    def with_inactivity_gap(cls, gap_ms: int, grace_ms: int = 0) -> SessionWindows:
        if gap_ms <= 0:
            raise ValueError("inactivity gap must be positive")
        return cls(gap_ms, grace_ms)

    def retention_ms(self) -> int:
        return self.gap_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class JoinWindows:
    """How far apart two records of a stream-stream join may be: a left record at t joins
    right records in `[t - before_ms, t + after_ms]` (Kafka's JoinWindows)."""

    before_ms: int
    after_ms: int
    grace_ms: int = 0

    @classmethod
    def of(cls, time_difference_ms: int, grace_ms: int = 0) -> JoinWindows:
        if time_difference_ms < 0:
            raise ValueError("time difference must not be negative")
        return cls(time_difference_ms, time_difference_ms, grace_ms)

    def before(self, ms: int) -> JoinWindows:
        return JoinWindows(ms, self.after_ms, self.grace_ms)

    def after(self, ms: int) -> JoinWindows:
        return JoinWindows(self.before_ms, ms, self.grace_ms)

    def size_ms(self) -> int:
        return self.before_ms + self.after_ms

    def retention_ms(self) -> int:
        return self.before_ms + self.after_ms + self.grace_ms

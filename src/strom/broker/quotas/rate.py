"""Kafka's windowed rate (its `Rate` over a `SampledStat`), the measure quotas compare.

Samples: `quota.window.num` windows of `quota.window.size.seconds` each. A value goes
into the current sample; a sample is complete once its window has passed, and the next
one (reused round-robin) starts at the time of the first value that falls after it.
Samples older than all windows together are reset before a measurement.

The rate is the sum of the retained samples divided by the elapsed time since the
oldest sample started — but never by less than `num - 1` full windows, so a client's
first burst is averaged over ~10 s rather than over the few milliseconds it took (what
keeps Kafka from throttling a fresh client for its first request).

Throttle time (Kafka's QuotaUtils.throttleTime): when the rate exceeds the bound, the
time for the average to fall back to it if nothing more came:
`(rate - bound) / bound * window_size`, rounded to a millisecond.

Pure arithmetic on times the caller passes in (milliseconds), so tests drive the clock.
"""

from __future__ import annotations


class _Sample:
    __slots__ = ("start_ms", "value")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.value = 0.0

    def reset(self, now_ms: int) -> None:
        self.start_ms = now_ms
        self.value = 0.0


class Rate:
    """A per-second rate over `samples` windows of `window_ms`."""

    __slots__ = ("_current", "_samples", "samples", "window_ms")

    def __init__(self, samples: int = 11, window_ms: int = 1000) -> None:
        self.samples = max(samples, 2)
        self.window_ms = max(window_ms, 1)
        self._samples: list[_Sample] = []
        self._current = 0

    def record(self, value: float, now_ms: int) -> None:
        sample = self._sample_at(now_ms)
        sample.value += value

    def _sample_at(self, now_ms: int) -> _Sample:
        if not self._samples:
            self._samples.append(_Sample(now_ms))
            return self._samples[0]
        sample = self._samples[self._current]
        if now_ms - sample.start_ms < self.window_ms:
            return sample
        self._current = (self._current + 1) % self.samples
        if self._current >= len(self._samples):
            sample = _Sample(now_ms)
            self._samples.append(sample)
        else:
            sample = self._samples[self._current]
            sample.reset(now_ms)
        return sample

    def _purge(self, now_ms: int) -> None:
        expire = self.samples * self.window_ms
        for sample in self._samples:
            if now_ms - sample.start_ms >= expire:
                sample.reset(now_ms)

    def window_size_ms(self, now_ms: int) -> int:
        """The span the rate divides by (after purging obsolete samples)."""
        self._purge(now_ms)
        oldest = min((s.start_ms for s in self._samples), default=now_ms)
        elapsed = now_ms - oldest
        full = elapsed // self.window_ms
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_ms
        return elapsed

    def total(self) -> float:
        return sum(s.value for s in self._samples)

    def measure(self, now_ms: int) -> float:
        """Units per second."""
        window = self.window_size_ms(now_ms)
        return self.total() / (window / 1000.0)


def throttle_time_ms(rate: float, bound: float, window_ms: int) -> int:
    """How long until the rate falls back to `bound` with nothing more recorded."""
    if rate <= bound or bound <= 0:
        return 0 if rate <= bound else window_ms
    return round((rate - bound) / bound * window_ms)

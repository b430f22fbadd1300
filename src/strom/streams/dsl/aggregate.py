"""Aggregation processors: per key, per time window, per session. Kafka's semantics:

- Records with a None key or value are skipped (they cannot be grouped or aggregated).
- The result's timestamp is the largest timestamp of the records aggregated into it.
- Every update is forwarded at once as `Change(new, old)` (Kafka with its record cache
  off, `statestore.cache.max.bytes=0`); `suppress` is how to get one result per window.
- Windowed: a record for a window that ended at or before (observed stream time - grace)
  is late and dropped; observed stream time is the largest timestamp this processor saw.
- Sessions: late means the merged session ended before (observed stream time - grace -
  inactivity gap). A record joins every session of its key within the gap; those
  sessions are removed (a tombstone is forwarded for each) and one merged session is
  written, forwarded with the session end as its timestamp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from strom.streams.dsl.change import Change
from strom.streams.dsl.store_processor import StoreProcessor
from strom.streams.record import Record
from strom.streams.windows import SessionWindows, SlidingWindows, TimeWindows, Window, Windowed

log = logging.getLogger(__name__)

Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]  # key, value, aggregate -> aggregate
Merger = Callable[[Any, Any, Any], Any]  # key, aggregate, aggregate -> aggregate


class StreamAggregateProcessor(StoreProcessor):
    def __init__(self, store: str, initializer: Initializer, aggregator: Aggregator) -> None:
        super().__init__(store)
        self._initializer = initializer
        self._aggregator = aggregator

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        found = self._store.get_with_timestamp(record.key)
        if found is None:
            old, timestamp = None, record.timestamp
            base = self._initializer()
        else:
            old, old_ts = found
            base, timestamp = old, max(record.timestamp, old_ts)
        new = self._aggregator(record.key, record.value, base)
        self._store.put(record.key, new, timestamp)
        self.context.forward(Record(record.key, Change(new, old), timestamp, record.headers,
                                    record.topic, record.partition, record.offset))


def reducer_as_aggregator(reducer: Callable[[Any, Any], Any]
                          ) -> tuple[Initializer, Aggregator, Merger]:
    """A reduce is an aggregate whose first value is the record's value itself; as a
    session merger it reduces the two sessions' values."""
    unset = object()

    def aggregate(key: Any, value: Any, agg: Any) -> Any:
        return value if agg is unset else reducer(agg, value)

    def merge(key: Any, agg: Any, other: Any) -> Any:
        return other if agg is unset else reducer(agg, other)

    return (lambda: unset), aggregate, merge


class WindowAggregateProcessor(StoreProcessor):
    """Tumbling and hopping windows (Kafka's KStreamWindowAggregate)."""

    def __init__(self, store: str, windows: TimeWindows, initializer: Initializer,
                 aggregator: Aggregator) -> None:
        super().__init__(store)
        self._windows = windows
        self._initializer = initializer
        self._aggregator = aggregator
        self._observed = -1
        self.dropped_late = 0

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        self._observed = max(self._observed, record.timestamp)
        close_time = self._observed - self._windows.grace_ms
        for window in self._windows.windows_for(record.timestamp):
            if window.end > close_time:
                self._update(record, window)
            else:
                self.dropped_late += 1
                log.debug("dropping late record %s@%s for window %s", record.topic,
                          record.offset, window)

    def _update(self, record: Record, window: Window) -> None:
        found = self._store.fetch_with_timestamp(record.key, window.start)
        if found is None:
            old, base, timestamp = None, self._initializer(), record.timestamp
        else:
            old, old_ts = found
            base, timestamp = old, max(record.timestamp, old_ts)
        new = self._aggregator(record.key, record.value, base)
        self._store.put(record.key, new, window.start, timestamp)
        self.context.forward(Record(Windowed(record.key, window), Change(new, old), timestamp,
                                    record.headers, record.topic, record.partition,
                                    record.offset))


class SessionAggregateProcessor(StoreProcessor):
    """Session windows (Kafka's KStreamSessionWindowAggregate)."""

    def __init__(self, store: str, windows: SessionWindows, initializer: Initializer,
                 aggregator: Aggregator, merger: Merger) -> None:
        super().__init__(store)
        self._windows = windows
        self._initializer = initializer
        self._aggregator = aggregator
        self._merger = merger
        self._observed = -1
        self.dropped_late = 0

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        ts, gap = record.timestamp, self._windows.gap_ms
        self._observed = max(self._observed, ts)
        # a session closes a gap after its end, plus grace (Kafka 3.3+, KIP-825)
        close_time = self._observed - self._windows.grace_ms - gap
        merged = self._store.find_sessions(record.key, ts - gap, ts + gap)
        agg = self._initializer()
        start, end = ts, ts
        for session, value in merged:
            agg = self._merger(record.key, agg, value)
            start, end = min(start, session.window.start), max(end, session.window.end)
        if end < close_time:
            self.dropped_late += 1
            return
        if (start, end) != (ts, ts):
            for session, value in merged:
                self._store.remove(session)
                self._emit(record, session, Change(None, value))
        agg = self._aggregator(record.key, record.value, agg)
        session = Windowed(record.key, Window(start, end))
        self._store.put(session, agg)
        self._emit(record, session, Change(agg, None))

    def _emit(self, record: Record, session: Windowed, change: Change) -> None:
        self.context.forward(Record(session, change, session.window.end, record.headers,
                                    record.topic, record.partition, record.offset))


class _Scan:
    """What a sliding-window record learns from the windows of its key near its time."""

    def __init__(self) -> None:
        self.starts: set[int] = set()
        self.left_agg: tuple[Any, int] | None = None  # the previous record's left window
        self.right_agg: tuple[Any, int] | None = None  # a window that will be this record's right
        self.left_exists = False
        self.right_exists = False
        self.previous_ts: int | None = None
        self.combined: tuple[Window, tuple[Any, int]] | None = None  # early records: [0, D]


class SlidingWindowAggregateProcessor(StoreProcessor):
    """Sliding windows (Kafka's KStreamSlidingWindowAggregate, KIP-450).

    Every record at t has a *left* window `[t - D, t]`, and a *right* window
    `[t + 1, t + 1 + D]` that exists only once a later record falls into it; a window holds
    exactly the records inside it, so the set of windows is that of every distinct
    combination of records within D of each other. A new record updates the windows that
    contain it, creates its left window (seeded with the aggregate of the previous
    record's left window when that one overlaps), the previous record's right window if it
    now has content, and its own right window if later records exist. Records with
    t < D share one window `[0, D]`.
    """

    def __init__(self, store: str, windows: SlidingWindows, initializer: Initializer,
                 aggregator: Aggregator) -> None:
        super().__init__(store)
        self._d = windows.time_difference_ms
        self._grace = windows.grace_ms
        self._initializer = initializer
        self._aggregator = aggregator
        self._observed = -1
        self.dropped_late = 0

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        ts = record.timestamp
        self._observed = max(self._observed, ts)
        close = self._observed - self._grace
        if ts + 1 + self._d <= close:
            self.dropped_late += 1
            return
        if ts < self._d:
            self._process_early(record, close)
        else:
            self._process_in_order(record, close)

    def _process_in_order(self, record: Record, close: int) -> None:
        """Windows newest first, as Kafka does with its stores' backward fetch (which fixes
        the order of the updates forwarded)."""
        ts, d = record.timestamp, self._d
        scan = _Scan()
        for start, found in reversed(self._fetch(record.key, max(0, ts - 2 * d), ts + 1)):
            scan.starts.add(start)
            end = start + d
            if start == ts + 1:
                scan.right_exists = True
            elif end > ts:
                scan.right_agg = scan.right_agg or found
                self._update(record, Window(start, end), found, close)
            elif end == ts:
                scan.left_exists = True
                self._update(record, Window(start, end), found, close)
                if found[1] >= ts:
                    return  # a record at this very time made every window already
                scan.previous_ts = found[1]
            else:
                scan.left_agg, scan.previous_ts = found, found[1]
                break
        self._create_windows(record, close, scan)

    def _create_windows(self, record: Record, close: int, scan: _Scan) -> None:
        ts, d = record.timestamp, self._d
        if scan.previous_ts is not None:
            start = scan.previous_ts + 1
            if start not in scan.starts and start + d >= ts:
                self._update(record, Window(start, start + d), (self._initializer(), ts), close,
                             fresh=True)
        if not scan.left_exists:
            seed = (scan.left_agg[0] if scan.left_agg is not None and scan.previous_ts is not None
                    and ts - d <= scan.previous_ts else self._initializer())
            self._update(record, Window(ts - d, ts), (seed, ts), close, fresh=True)
        self._maybe_right_window(record, scan)

    def _maybe_right_window(self, record: Record, scan: _Scan) -> None:
        ts = record.timestamp
        if not scan.right_exists and scan.right_agg is not None and scan.right_agg[1] > ts:
            window = Window(ts + 1, ts + 1 + self._d)
            value, timestamp = scan.right_agg
            self._store.put(record.key, value, window.start, timestamp)
            self._forward(record, window, Change(value, None), timestamp)

    def _process_early(self, record: Record, close: int) -> None:
        ts, d = record.timestamp, self._d
        scan = _Scan()
        for start, found in self._fetch(record.key, 0, ts + 1):
            scan.starts.add(start)
            if start == 0:
                scan.combined = (Window(0, d), found)
                if found[1] < ts:
                    scan.previous_ts = found[1]
            elif start <= ts:
                scan.right_agg = found
                self._update(record, Window(start, start + d), found, close)
            else:
                scan.right_exists = True
        if scan.right_agg is None and scan.combined is not None and scan.combined[1][1] > ts:
            scan.right_agg = scan.combined[1]
        self._maybe_right_window(record, scan)
        if scan.previous_ts is not None and scan.previous_ts + 1 not in scan.starts:
            start = scan.previous_ts + 1
            self._update(record, Window(start, start + d), (self._initializer(), ts), close,
                         fresh=True)
        if scan.combined is None:
            self._update(record, Window(0, d), (self._initializer(), ts), close, fresh=True)
        else:
            self._update(record, scan.combined[0], scan.combined[1], close)

    def _fetch(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, tuple[Any, int]]]:
        found: list[tuple[int, tuple[Any, int]]] = self._store.fetch_range_with_timestamps(
            key, time_from, time_to)
        return found

    def _update(self, record: Record, window: Window, current: tuple[Any, int],
                close: int, fresh: bool = False) -> None:
        """Add the record to `window` (holding `current`); `fresh`: a window made now."""
        if window.end < close:  # sliding windows include their end
            self.dropped_late += 1
            return
        old, old_ts = current
        new = self._aggregator(record.key, record.value, old)
        timestamp = max(record.timestamp, old_ts)
        self._store.put(record.key, new, window.start, timestamp)
        self._forward(record, window, Change(new, None if fresh else old), timestamp)

    def _forward(self, record: Record, window: Window, change: Change, timestamp: int) -> None:
        self.context.forward(Record(Windowed(record.key, window), change, timestamp,
                                    record.headers, record.topic, record.partition,
                                    record.offset))

"""Aggregation processors: per key, per time window, per session. Kafka's semantics:

- Records with a None key or value are skipped (they cannot be grouped or aggregated).
- The result's timestamp is the largest timestamp of the records aggregated into it.
- Every update is forwarded at once as `Change(new, old)` (Kafka with its record cache
  off, `statestore.cache.max.bytes=0`); `suppress` is how to get one result per window.
- Windowed: a record for a window that ended at or before (observed stream time - grace)
  is late and dropped; observed stream time is the largest timestamp this processor saw.
- Sessions: a record joins every session of its key within the inactivity gap; those
  sessions are removed (a tombstone is forwarded for each) and one merged session is
  written, forwarded with the session end as its timestamp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from strom.streams.dsl.change import Change
from strom.streams.processor import Processor
from strom.streams.record import Record
from strom.streams.windows import SessionWindows, TimeWindows, Window, Windowed

log = logging.getLogger(__name__)

Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]  # key, value, aggregate -> aggregate
Merger = Callable[[Any, Any, Any], Any]  # key, aggregate, aggregate -> aggregate


class StreamAggregateProcessor(Processor):
    def __init__(self, store: str, initializer: Initializer, aggregator: Aggregator) -> None:
        self._store_name = store
        self._initializer = initializer
        self._aggregator = aggregator

    def init(self, context: Any) -> None:
        super().init(context)
        self._store = context.get_state_store(self._store_name)

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

    return (lambda: unset), aggregate, aggregate


class WindowAggregateProcessor(Processor):
    """Tumbling and hopping windows (Kafka's KStreamWindowAggregate)."""

    def __init__(self, store: str, windows: TimeWindows, initializer: Initializer,
                 aggregator: Aggregator) -> None:
        self._store_name = store
        self._windows = windows
        self._initializer = initializer
        self._aggregator = aggregator
        self._observed = -1
        self.dropped_late = 0

    def init(self, context: Any) -> None:
        super().init(context)
        self._store = context.get_state_store(self._store_name)

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


class SessionAggregateProcessor(Processor):
    """Session windows (Kafka's KStreamSessionWindowAggregate)."""

    def __init__(self, store: str, windows: SessionWindows, initializer: Initializer,
                 aggregator: Aggregator, merger: Merger) -> None:
        self._store_name = store
        self._windows = windows
        self._initializer = initializer
        self._aggregator = aggregator
        self._merger = merger
        self._observed = -1
        self.dropped_late = 0

    def init(self, context: Any) -> None:
        super().init(context)
        self._store = context.get_state_store(self._store_name)

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        ts, gap = record.timestamp, self._windows.gap_ms
        self._observed = max(self._observed, ts)
        close_time = self._observed - self._windows.grace_ms
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

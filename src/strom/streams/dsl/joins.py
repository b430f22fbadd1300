"""Joins. Built: stream-table (inner, left), stream-global-table (inner, left),
stream-stream windowed (inner, left, outer), table-table (inner, left, outer),
foreign-key (inner, left; in `fk_join`), and stream-table joins against a versioned
table look the row up as of the record's timestamp.

- **Stream-stream windowed** (`Stream.join(other, joiner, JoinWindows)`): both sides
  co-partitioned (repartitioned if their keys changed); each side writes its records into
  its window store with `retain_duplicates` (`KSTREAM-JOINTHIS-<n>-store`,
  `KSTREAM-JOINOTHER-<n>-store`, sequence-numbered keys as in Kafka) and probes the other
  side's store for `[t - before, t + after]` (mirrored for the right side). A match is
  emitted at once with the larger timestamp. For left/outer joins, a record without a
  match waits in the shared outer store (`KSTREAM-OUTERSHARED-<n>-store`, keys
  `[timestamp: 8][is left: 1][key]`, values a list of `[is left: 1][value]`: records of
  the same key, side and time are all kept, as Kafka's ListValueStore does) and
  is emitted with a None partner once stream time passes its window end plus grace
  (Kafka 3.1+ semantics: no eager null results); a later match removes it.
- **Table-table** (inner/left/outer): both tables materialized in the same task; a change
  on either side looks up the other's store and forwards `Change(joined new, joined
  old)`, timestamped with the larger of the two timestamps.
- **Foreign-key table-table** (KIP-213, built in `fk_join`): the left side sends subscription records
  (`<name>-subscription-registration-topic`, keyed by the foreign key, carrying a hash
  of the left value) to the right table's partition; the right side answers on
  `<name>-subscription-response-topic` keyed by the left key; the left drops answers
  whose hash no longer matches its current value. Stores: the subscription store on the
  right (`<name>-subscription-store`), keyed `[fk length: 4][fk][pk]` as Kafka does.
- **Global tables** (`StreamsBuilder.global_table`, built): every instance reads all
  partitions of the topic into a store of its own (no changelog: the topic is the
  changelog), read to its end before any task starts; a stream-global-table join maps
  each record to the table key with a `key_selector` and needs no co-partitioning.
- **Versioned tables** (KIP-889, built: `state.versioned`) for temporal stream-table
  joins: each key's history kept for a retention, looked up as of the stream record's
  timestamp. Left to do: out-of-order updates through derived tables (Kafka's `isLatest`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strom.streams.dsl.change import Change
from strom.streams.dsl.store_processor import StoreProcessor
from strom.streams.processor import Processor
from strom.streams.record import Record
from strom.streams.state.versioned import VersionedKeyValueStore
from strom.streams.windows import JoinWindows


class StreamTableJoinProcessor(StoreProcessor):
    """Each stream record meets the table's current value of its key (Kafka's
    KStreamKTableJoin): records with a None key are dropped; a None value too (inner)."""

    def __init__(self, store: str, joiner: Callable[[Any, Any], Any], left: bool) -> None:
        super().__init__(store)
        self._joiner = joiner
        self._left = left

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        if isinstance(self._store, VersionedKeyValueStore):  # the row as of the record's time
            found = self._store.get(record.key, as_of=record.timestamp)
            other = None if found is None else found[0]
        else:
            other = self._store.get(record.key)
        if other is None and not self._left:
            return
        self.context.forward(record.with_value(self._joiner(record.value, other)))


class _TimeTracker:
    """Stream time shared by both sides of one stream-stream join in one task, and the
    smallest timestamp that may be waiting in the outer store (a cheap "nothing can have
    expired yet" test before scanning it, as Kafka's tracker keeps)."""

    def __init__(self) -> None:
        self.stream_time = -1
        self.min_time = 2**63 - 1


class StreamStreamJoinProcessor(Processor):
    """One side of a windowed stream-stream join (Kafka's KStreamKStreamJoin)."""

    def __init__(self, *, is_left: bool, this_store: str, other_store: str,
                 outer_store: str | None, windows: JoinWindows,
                 joiner: Callable[[Any, Any], Any], outer_this: bool,
                 trackers: dict[str, _TimeTracker]) -> None:
        self._is_left = is_left
        self._names = (this_store, other_store, outer_store)
        # this side's record at t meets other records in [t - before, t + after]
        self._before = windows.before_ms if is_left else windows.after_ms
        self._after = windows.after_ms if is_left else windows.before_ms
        self._windows = windows
        self._joiner = joiner
        self._outer_this = outer_this
        self._trackers = trackers

    def init(self, context: Any) -> None:
        super().init(context)
        this, other, outer = self._names
        self._this = context.get_state_store(this)
        self._other = context.get_state_store(other)
        self._outer = context.get_state_store(outer) if outer else None
        self._tracker = self._trackers.setdefault(context.task_id, _TimeTracker())

    def _join(self, this: Any, other: Any) -> Any:
        return self._joiner(this, other) if self._is_left else self._joiner(other, this)

    def process(self, record: Record) -> None:
        ts = record.timestamp
        tracker = self._tracker
        tracker.stream_time = max(tracker.stream_time, ts)
        if record.key is None or record.value is None:
            return
        if self._outer is not None and ts == tracker.stream_time:
            self._emit_expired(record)
        self._this.put(record.key, record.value, ts, ts)
        matched = False
        for other_ts, other_value in self._other.fetch_range(
                record.key, max(0, ts - self._before), max(0, ts + self._after)):
            matched = True
            if self._outer is not None:
                self._outer.delete(self._outer_key(not self._is_left, record.key, other_ts))
            self.context.forward(Record(record.key, self._join(record.value, other_value),
                                        max(ts, other_ts), record.headers, record.topic,
                                        record.partition, record.offset))
        if not matched and self._outer_this:
            self._hold(record)

    def _hold(self, record: Record) -> None:
        """Keep an unmatched record until its window closes; one whose window has already
        passed stream time is answered at once (Kafka compares without the grace here)."""
        if record.timestamp + self._after < self._tracker.stream_time:
            self.context.forward(record.with_value(self._join(record.value, None)))
            return
        assert self._outer is not None
        self._tracker.min_time = min(self._tracker.min_time, record.timestamp)
        raw = self._this.value_serde.serialize(self._this.topic, record.value) or b""
        key = self._outer_key(self._is_left, record.key, record.timestamp)
        held = _decode_list(self._outer.get(key))
        held.append((b"\x01" if self._is_left else b"\x00") + raw)
        self._outer.put(key, _encode_list(held), record.timestamp)

    def _outer_key(self, is_left: bool, key: Any, timestamp: int) -> bytes:
        raw = self._this.key_serde.serialize(self._this.topic, key) or b""
        return timestamp.to_bytes(8, "big", signed=True) + (b"\x01" if is_left else b"\x00") + raw

    def _emit_expired(self, record: Record) -> None:
        """Held records whose window has closed, oldest first, with a None partner
        (Kafka's emitNonJoinedOuterRecords, scan for scan)."""
        assert self._outer is not None
        tracker, grace = self._tracker, self._windows.grace_ms
        if tracker.min_time + self._after + grace >= tracker.stream_time:
            return  # nothing held can have closed yet
        tracker.min_time = 2**63 - 1
        open_sides: set[bool] = set()
        for raw_key, data in self._outer.range():
            ts = int.from_bytes(raw_key[:8], "big", signed=True)
            tracker.min_time = ts
            if len(open_sides) == 2:
                break
            is_left = raw_key[8] == 1
            look_back = self._windows.after_ms if is_left else self._windows.before_ms
            if ts + look_back + grace >= tracker.stream_time:
                open_sides.add(is_left)
                continue
            for item in _decode_list(data):
                self._forward_unmatched(record, raw_key[9:], is_left, item[1:], ts)
            self._outer.delete(raw_key)

    def _forward_unmatched(self, record: Record, raw_key: bytes, is_left: bool,
                           raw_value: bytes, ts: int) -> None:
        store = self._this if is_left == self._is_left else self._other
        key = store.key_serde.deserialize(store.topic, raw_key)
        value = store.value_serde.deserialize(store.topic, raw_value)
        joined = self._joiner(value, None) if is_left else self._joiner(None, value)
        self.context.forward(Record(key, joined, ts, (), record.topic, record.partition,
                                    record.offset))


def _encode_list(items: list[bytes]) -> bytes:
    """Kafka's ListSerializer of byte arrays: the count, then each length and bytes (the
    outer store keeps every unmatched record of one key, side and time)."""
    parts = [len(items).to_bytes(4, "big")]
    for item in items:
        parts += [len(item).to_bytes(4, "big"), item]
    return b"".join(parts)


def _decode_list(data: bytes | None) -> list[bytes]:
    if not data:
        return []
    count, at, items = int.from_bytes(data[:4], "big"), 4, []
    for _ in range(count):
        size = int.from_bytes(data[at:at + 4], "big")
        items.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return items


class TableTableJoinProcessor(Processor):
    """One side of a table-table join (Kafka's KTableKTable{Inner,Left,Outer}Join)."""

    def __init__(self, *, is_left: bool, other_store: str, joiner: Callable[[Any, Any], Any],
                 keep_this: bool, keep_other: bool) -> None:
        self._is_left = is_left
        self._other_name = other_store
        self._joiner = joiner
        self._keep_this = keep_this  # a row of this side without a partner still joins
        self._keep_other = keep_other

    def init(self, context: Any) -> None:
        super().init(context)
        self._other = context.get_state_store(self._other_name)

    def _join(self, this: Any, other: Any) -> Any:
        if this is None and other is None:
            return None
        if this is None and not self._keep_other:
            return None
        if other is None and not self._keep_this:
            return None
        return self._joiner(this, other) if self._is_left else self._joiner(other, this)

    def process(self, record: Record) -> None:
        if record.key is None:
            return
        change = record.value
        found = self._other.get_with_timestamp(record.key)
        other, other_ts = (None, record.timestamp) if found is None else found
        new = self._join(change.new, other)
        old = self._join(change.old, other)
        if new is None and old is None:
            return
        self.context.forward(Record(record.key, Change(new, old), max(record.timestamp, other_ts),
                                    record.headers, record.topic, record.partition,
                                    record.offset))


class StreamGlobalTableJoinProcessor(StoreProcessor):
    """Each record meets the global table's value for `key_selector(key, value)`
    (Kafka's KStreamGlobalKTableJoin): a None lookup key or value drops the record."""

    def __init__(self, store: str, key_selector: Callable[[Any, Any], Any],
                 joiner: Callable[[Any, Any], Any], left: bool) -> None:
        super().__init__(store)
        self._selector = key_selector
        self._joiner = joiner
        self._left = left

    def process(self, record: Record) -> None:
        if record.value is None:
            return
        lookup = self._selector(record.key, record.value)
        other = None if lookup is None else self._store.get(lookup)
        if other is None and (not self._left or lookup is None):
            return
        self.context.forward(record.with_value(self._joiner(record.value, other)))

"""`Suppressed.until_window_closes()`: one final result per window, Kafka's emit-final.

The suppression processor keeps the latest `Change` of each windowed key and emits it
once the window has closed: `window end <= observed stream time - grace`, with grace
taken from the windows of the aggregation upstream. Buffered records leave in order of
window end, then serialized key (Kafka's time-ordered buffer), each with the timestamp
of the update that put it there; a final tombstone is not emitted.

The buffer is a logged store (`KTABLE-SUPPRESS-STATE-STORE-<n>`, changelog
`<application.id>-<store>-changelog`), so pending results survive a restart. Its changelog
is Kafka Streams 4.4's (InMemoryTimeOrderedKeyValueChangeBuffer, format 3), so a Java
instance can restore what Strom buffered and the other way round: key = the serialized
windowed key; header `v` = 3; value = BufferValue then the buffer time (window end):

    [record context: timestamp i64, offset i64, topic (i32 length + UTF-8), partition i32,
     header count i32, each header (i32 length + key, i32 length or -1 + value)]
    [prior value: i32 length or -1, bytes]
    [old value: i32 length, -1 (none) or -2 (same as the prior value), bytes]
    [new value: i32 length or -1, bytes]
    [buffer time: i64]

all big-endian; the prior value is the old value of the first update buffered for the key
(what the emitted change reports as old); an evicted key leaves a tombstone.
"""

from __future__ import annotations

import heapq
import struct
from dataclasses import dataclass
from typing import Any

from strom.streams.dsl.change import Change
from strom.streams.dsl.store_processor import StoreProcessor
from strom.streams.record import Headers, Record
from strom.streams.serdes import Serde
from strom.streams.windows import Windowed


@dataclass(frozen=True)
class Suppressed:
    """What to hold back. Only `until_window_closes` exists for now; `until_time_limit`
    (rate limiting) is planned."""

    kind: str = "until-window-closes"
    name: str | None = None

    @classmethod
    def until_window_closes(cls, name: str | None = None) -> Suppressed:
        return cls("until-window-closes", name)


CHANGELOG_HEADERS: Headers = (("v", b"\x03"),)  # Kafka's buffer changelog format 3
_SAME_AS_PRIOR = -2


@dataclass(frozen=True)
class BufferedRecord:
    """One entry of Kafka's suppression buffer changelog (see the module docstring)."""

    prior: bytes | None
    old: bytes | None
    new: bytes | None
    timestamp: int
    offset: int
    topic: str
    partition: int
    headers: Headers
    buffer_time: int


def _sized(data: bytes | None) -> bytes:
    return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data


def encode_buffered(entry: BufferedRecord) -> bytes:
    topic = entry.topic.encode()
    out = [struct.pack(">qqi", entry.timestamp, entry.offset, len(topic)), topic,
           struct.pack(">ii", entry.partition, len(entry.headers))]
    for name, value in entry.headers:
        out += [_sized(name.encode()), _sized(value)]
    out.append(_sized(entry.prior))
    if entry.old is not None and entry.old == entry.prior:
        out.append(struct.pack(">i", _SAME_AS_PRIOR))
    else:
        out.append(_sized(entry.old))
    out += [_sized(entry.new), struct.pack(">q", entry.buffer_time)]
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def fixed(self, fmt: str) -> Any:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def sized(self, length: int | None = None) -> bytes | None:
        size = self.fixed(">i") if length is None else length
        if size < 0:
            return None
        self.at += size
        return self.data[self.at - size:self.at]


def decode_buffered(data: bytes) -> BufferedRecord:
    read = _Reader(data)
    timestamp, offset, topic_size = read.fixed(">qqi")
    topic = (read.sized(topic_size) or b"").decode()
    partition, count = read.fixed(">ii")
    headers = [((read.sized() or b"").decode(), read.sized()) for _ in range(count)]
    prior = read.sized()
    old_size = read.fixed(">i")
    old = prior if old_size == _SAME_AS_PRIOR else read.sized(old_size)
    new = read.sized()
    return BufferedRecord(prior, old, new, timestamp, offset, topic, partition,
                          tuple(headers), read.fixed(">q"))


class SuppressProcessor(StoreProcessor):
    """Holds each windowed key's latest change until its window closes, in a logged
    key-value store whose changelog is Kafka's buffer changelog (module docstring)."""

    def __init__(self, grace_ms: int, store: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None) -> None:
        self._grace = grace_ms
        super().__init__(store)
        self._key_serde_arg = key_serde
        self._value_serde_arg = value_serde
        self._latest: dict[Windowed, Record] = {}
        self._prior: dict[Windowed, bytes | None] = {}
        self._order: list[tuple[int, bytes, Windowed]] = []
        self._observed = -1

    def init(self, context: Any) -> None:
        super().init(context)
        self._store.changelog_headers = CHANGELOG_HEADERS
        key_default, value_default = context.default_key_serde, context.default_value_serde
        self._key_serde = (self._key_serde_arg or key_default).resolved(key_default)
        self._value_serde: Serde[Any] = self._value_serde_arg or value_default
        for raw_key, data in self._store.all():
            key = self._key_serde.deserialize(self._store_name, raw_key)
            assert isinstance(key, Windowed)
            entry = decode_buffered(data)
            change = Change(self._value(entry.new), self._value(entry.old))
            record = Record(key, change, entry.timestamp, entry.headers, entry.topic or None,
                            entry.partition, entry.offset)
            heapq.heappush(self._order, (key.window.end, raw_key, key))
            self._latest[key], self._prior[key] = record, entry.prior
            self._observed = max(self._observed, entry.timestamp)

    def _value(self, raw: bytes | None) -> Any:
        return None if raw is None else self._value_serde.deserialize(self._store_name, raw)

    def _raw(self, value: Any) -> bytes | None:
        return None if value is None else self._value_serde.serialize(self._store_name, value)

    def process(self, record: Record) -> None:
        key: Windowed = record.key
        self._observed = max(self._observed, record.timestamp)
        raw_key = self._key_serde.serialize(self._store_name, key) or b""
        change: Change = record.value
        old_raw = self._raw(change.old)
        if key not in self._latest:
            heapq.heappush(self._order, (key.window.end, raw_key, key))
            self._prior[key] = old_raw
        self._latest[key] = record
        entry = BufferedRecord(self._prior[key], old_raw, self._raw(change.new),
                               record.timestamp, record.offset, record.topic or "",
                               record.partition, tuple(record.headers), key.window.end)
        self._store.put(raw_key, encode_buffered(entry), record.timestamp)
        self._evict()

    def _evict(self) -> None:
        expiry = self._observed - self._grace
        while self._order and self._order[0][0] <= expiry:
            _, raw_key, key = heapq.heappop(self._order)
            latest = self._latest.pop(key)
            prior = self._value(self._prior.pop(key))
            self._store.delete(raw_key)
            if latest.value.new is not None:
                self.context.forward(latest.with_value(Change(latest.value.new, prior)))

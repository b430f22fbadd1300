"""`Suppressed.until_window_closes()`: one final result per window, Kafka's emit-final.

The suppression processor keeps the latest `Change` of each windowed key and emits it
once the window has closed: `window end <= observed stream time - grace`, with grace
taken from the windows of the aggregation upstream. Buffered records leave in order of
window end, then serialized key (Kafka's time-ordered buffer), each with the timestamp
of the update that put it there; a final tombstone is not emitted.

The buffer is a logged store (`KTABLE-SUPPRESS-STATE-STORE-<n>`, changelog
`<application.id>-<store>-changelog`), so pending results survive a restart.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from strom.streams.dsl.change import Change, ChangeSerde
from strom.streams.processor import Processor
from strom.streams.record import Record
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


class SuppressProcessor(Processor):
    """Holds each windowed key's latest change until its window closes.

    The buffer is a logged key-value store (`<name>-changelog`): key = the serialized
    windowed key, value = `[timestamp: 8][serialized Change]`, so a restart rebuilds it.
    (Kafka's buffer changelog has its own versioned layout; matching it is left to do.)
    """

    def __init__(self, grace_ms: int, store: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None) -> None:
        self._grace = grace_ms
        self._store_name = store
        self._key_serde_arg = key_serde
        self._value_serde_arg = value_serde
        self._latest: dict[Windowed, Record] = {}
        self._raw: dict[Windowed, bytes] = {}
        self._order: list[tuple[int, bytes, Windowed]] = []
        self._observed = -1

    def init(self, context: Any) -> None:
        super().init(context)
        self._store = context.get_state_store(self._store_name)
        key_default, value_default = context.default_key_serde, context.default_value_serde
        self._key_serde = (self._key_serde_arg or key_default).resolved(key_default)
        self._change_serde = ChangeSerde(self._value_serde_arg or value_default)
        for raw_key, data in self._store.all():
            key = self._key_serde.deserialize(self._store_name, raw_key)
            assert isinstance(key, Windowed)
            timestamp = int.from_bytes(data[:8], "big", signed=True)
            change = self._change_serde.deserialize(self._store_name, data[8:])
            self._remember(key, raw_key, Record(key, change, timestamp))
            self._observed = max(self._observed, timestamp)

    def _remember(self, key: Windowed, raw_key: bytes, record: Record) -> None:
        if key not in self._latest:
            heapq.heappush(self._order, (key.window.end, raw_key, key))
        else:
            record = record.with_value(Change(record.value.new, self._latest[key].value.old))
        self._latest[key] = record
        self._raw[key] = raw_key

    def process(self, record: Record) -> None:
        key: Windowed = record.key
        self._observed = max(self._observed, record.timestamp)
        raw_key = self._key_serde.serialize(self._store_name, key) or b""
        self._remember(key, raw_key, record)
        kept = self._latest[key]
        data = self._change_serde.serialize(self._store_name, kept.value) if (
            kept.value.new is not None or kept.value.old is not None) else b""
        self._store.put(raw_key, kept.timestamp.to_bytes(8, "big", signed=True) + (data or b""))
        self._evict()

    def _evict(self) -> None:
        expiry = self._observed - self._grace
        while self._order and self._order[0][0] <= expiry:
            _, raw_key, key = heapq.heappop(self._order)
            latest = self._latest.pop(key)
            del self._raw[key]
            self._store.delete(raw_key)
            if latest.value.new is not None:
                self.context.forward(latest)

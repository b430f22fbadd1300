"""`Suppressed.until_window_closes()`: one final result per window, Kafka's emit-final.

The suppression processor keeps the latest `Change` of each windowed key and emits it
once the window has closed: `window end <= observed stream time - grace`, with grace
taken from the windows of the aggregation upstream. Buffered records leave in order of
window end, then serialized key (Kafka's time-ordered buffer), each with the timestamp
of the update that put it there; a final tombstone is not emitted.

Limitation (for a later session): the buffer lives in memory. Kafka logs it to a
`<name>-changelog` topic so a restart does not lose pending results; here a crash before
a window closes loses that window's final result until the records are reprocessed.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any

from strom.streams.dsl.change import Change
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
    def __init__(self, grace_ms: int, key_serde: Serde[Any] | None) -> None:
        self._grace = grace_ms
        self._key_serde = key_serde
        self._latest: dict[Windowed, Record] = {}
        self._first: dict[Windowed, Record] = {}
        self._order: list[tuple[int, bytes, int, Windowed]] = []
        self._seq = itertools.count()
        self._observed = -1

    def process(self, record: Record) -> None:
        key: Windowed = record.key
        self._observed = max(self._observed, record.timestamp)
        if key not in self._latest:
            self._first[key] = record
            heapq.heappush(self._order, (key.window.end, self._sort_key(key), next(self._seq), key))
        self._latest[key] = record
        self._evict()

    def _sort_key(self, key: Windowed) -> bytes:
        if self._key_serde is None:
            return b""
        inner = self._key_serde.serialize("", key.key) or b""
        return inner + key.window.start.to_bytes(8, "big", signed=True)

    def _evict(self) -> None:
        expiry = self._observed - self._grace
        while self._order and self._order[0][0] <= expiry:
            _, _, _, key = heapq.heappop(self._order)
            latest = self._latest.pop(key)
            first = self._first.pop(key)
            change: Change = latest.value
            if change.new is not None:
                self.context.forward(latest.with_value(Change(change.new, first.value.old)))

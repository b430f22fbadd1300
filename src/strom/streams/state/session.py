"""`SessionStore`: aggregates per (key, session), keyed as Kafka's SessionKeySchema.

`find_sessions(key, earliest_end, latest_start)` gives the sessions of a key that end at
or after `earliest_end` and start at or before `latest_start`: the ones a new record at
time t merges with are `find_sessions(key, t - gap, t + gap)`. Values are the plain
aggregate (session stores are not timestamped in Kafka), logged with the record's time.
"""

from __future__ import annotations

from typing import Any

from strom.streams.serdes import Serde
from strom.streams.state.base import LoggedStore
from strom.streams.state.key_schema import (
    SESSION_SUFFIX_SIZE,
    session_key,
    split_session_key,
    timestamp_bytes,
)
from strom.streams.windows import Window, Windowed


class SessionStore(LoggedStore):
    timestamped = False

    def __init__(self, name: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                 *, retention_ms: int, persistent: bool, logging: bool) -> None:
        super().__init__(name, key_serde, value_serde, persistent=persistent, logging=logging)
        self.retention_ms = retention_ms
        self._observed = -1  # the largest session end written

    @property
    def live_from(self) -> int:
        """Sessions ending before this are expired: invisible, as in Kafka's stores."""
        return self._observed - self.retention_ms + 1

    def restore(self, entries: Any) -> None:
        entries = list(entries)
        for store_key, _, _ in entries:
            self._observed = max(self._observed, split_session_key(store_key)[2])
        super().restore(entries)

    def put(self, session: Windowed, value: Any) -> None:
        """Write the session's aggregate; None removes the session. A session that
        ended before the retention is not written."""
        self._observed = max(self._observed, session.window.end)
        if session.window.end < self.live_from:
            return
        raw = None if value is None else self.value_serde.serialize(self.topic, value)
        store_key = session_key(self._key(session.key), session.window.start, session.window.end)
        self._write(store_key, raw, self.context.record_timestamp())

    def remove(self, session: Windowed) -> None:
        self.put(session, None)

    def fetch_session(self, key: Any, start: int, end: int) -> Any:
        if end < self.live_from:
            return None
        data = self.map.get(session_key(self._key(key), start, end))
        return None if data is None else self.value_serde.deserialize(self.topic, data)

    def find_sessions(self, key: Any, earliest_end: int, latest_start: int
                      ) -> list[tuple[Windowed, Any]]:
        raw_key = self._key(key)
        size = len(raw_key) + SESSION_SUFFIX_SIZE
        found = []
        earliest_end = max(earliest_end, self.live_from, 0)
        for store_key, data in list(self.map.scan(raw_key + timestamp_bytes(earliest_end))):
            if not store_key.startswith(raw_key):
                break
            if len(store_key) != size:
                continue
            _, start, end = split_session_key(store_key)
            if start <= latest_start:
                found.append((Windowed(key, Window(start, end)),
                              self.value_serde.deserialize(self.topic, data)))
        return found

    def fetch(self, key: Any) -> list[tuple[Windowed, Any]]:
        """Every session of `key`, by end time."""
        return self.find_sessions(key, 0, 2**63 - 1)

    def all(self) -> list[tuple[Windowed, Any]]:
        found = []
        for store_key, data in self.map.scan():
            raw_key, start, end = split_session_key(store_key)
            if end < self.live_from:
                continue
            found.append((Windowed(self.key_serde.deserialize(self.topic, raw_key),
                                   Window(start, end)),
                          self.value_serde.deserialize(self.topic, data)))
        return found

    def _key(self, key: Any) -> bytes:
        raw: bytes | None = self.key_serde.serialize(self.topic, key)
        if raw is None:
            raise ValueError(f"store {self.name!r}: a key may not be None")
        return raw

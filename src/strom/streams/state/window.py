"""`WindowStore`: values per (key, window start), keyed as Kafka's WindowKeySchema.

Windows older than the retention, measured against the largest window start written
(the store's observed stream time), are neither written nor read: as in Kafka's stores,
a window starting before `observed - retention + 1` is invisible to every fetch at once,
and its entries are deleted at the next flush. With `retain_duplicates` (stream-stream joins)
every put adds an entry with a new sequence number instead of replacing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strom.streams.serdes import Serde
from strom.streams.state.base import LoggedStore
from strom.streams.state.key_schema import (
    WINDOW_SUFFIX_SIZE,
    split_window_key,
    timestamp_bytes,
    unstamped,
    window_key,
)
from strom.streams.windows import Window, Windowed


class WindowStore(LoggedStore):
    def __init__(self, name: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                 *, retention_ms: int, window_size_ms: int, retain_duplicates: bool = False,
                 persistent: bool, logging: bool) -> None:
        super().__init__(name, key_serde, value_serde, persistent=persistent, logging=logging)
        self.retention_ms = retention_ms
        self.window_size_ms = window_size_ms
        self.retain_duplicates = retain_duplicates
        self._observed = -1
        self._seqnum = 0
        self._purged_at = -1

    def put(self, key: Any, value: Any, window_start: int, timestamp: int | None = None) -> None:
        """Write the window's value (None deletes); expired windows are ignored."""
        self._observed = max(self._observed, window_start)
        if window_start <= self._observed - self.retention_ms:
            return
        if self.retain_duplicates:
            if value is None:
                return
            self._seqnum = (self._seqnum + 1) & 0x7FFFFFFF
        raw = None if value is None else self.value_serde.serialize(self.topic, value)
        store_key = window_key(self._key(key), window_start,
                               self._seqnum if self.retain_duplicates else 0)
        self._write(store_key, raw, self._timestamp(timestamp))

    def fetch(self, key: Any, window_start: int) -> Any:
        found = self.fetch_with_timestamp(key, window_start)
        return None if found is None else found[0]

    @property
    def live_from(self) -> int:
        """The earliest window start still retained."""
        return self._observed - self.retention_ms + 1

    def restore(self, entries: Any) -> None:
        entries = list(entries)
        for store_key, _, _ in entries:
            self._observed = max(self._observed, split_window_key(store_key)[1])
        super().restore(entries)

    def fetch_with_timestamp(self, key: Any, window_start: int) -> tuple[Any, int] | None:
        if window_start < self.live_from:
            return None
        data = self.map.get(window_key(self._key(key), window_start))
        if data is None:
            return None
        value, timestamp = unstamped(data)
        return self.value_serde.deserialize(self.topic, value), timestamp

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        """(window start, value) of `key` with `time_from <= start <= time_to`, by time."""
        raw_key = self._key(key)
        found = []
        for store_key, data in self._scan_key(raw_key, max(time_from, self.live_from)):
            _, start, _ = split_window_key(store_key)
            if start > time_to:
                break
            found.append((start, self.value_serde.deserialize(self.topic, unstamped(data)[0])))
        return found

    def fetch_range_with_timestamps(self, key: Any, time_from: int, time_to: int
                                    ) -> list[tuple[int, tuple[Any, int]]]:
        """(window start, (value, timestamp)) of `key` in the range, by time."""
        raw_key = self._key(key)
        found = []
        for store_key, data in self._scan_key(raw_key, max(time_from, self.live_from)):
            _, start, _ = split_window_key(store_key)
            if start > time_to:
                break
            value, timestamp = unstamped(data)
            found.append((start, (self.value_serde.deserialize(self.topic, value), timestamp)))
        return found

    def fetch_all(self, time_from: int = 0, time_to: int | None = None
                  ) -> list[tuple[Windowed, Any]]:
        """Every window with a start in the range, by key then time."""
        found = []
        time_from = max(time_from, self.live_from)
        for store_key, data in self.map.scan():
            raw_key, start, _ = split_window_key(store_key)
            if start < time_from or (time_to is not None and start > time_to):
                continue
            found.append((self._windowed(raw_key, start),
                          self.value_serde.deserialize(self.topic, unstamped(data)[0])))
        return found

    def all(self) -> list[tuple[Windowed, Any]]:
        return self.fetch_all()

    def __iter__(self) -> Iterator[tuple[Windowed, Any]]:
        return iter(self.all())

    def flush(self) -> None:
        self._purge_expired()
        super().flush()

    def _purge_expired(self) -> None:
        """Delete windows past retention, at most once per half retention of progress."""
        if self._observed - self._purged_at < self.retention_ms // 2:
            return
        self._purged_at = self._observed
        limit = self._observed - self.retention_ms
        expired = [k for k, _ in self.map.scan() if split_window_key(k)[1] <= limit]
        for store_key in expired:
            self.map.delete(store_key)

    def _scan_key(self, raw_key: bytes, time_from: int) -> Iterator[tuple[bytes, bytes]]:
        """Entries of exactly `raw_key` from `time_from` on (other keys sharing the prefix
        are skipped by length)."""
        size = len(raw_key) + WINDOW_SUFFIX_SIZE
        for store_key, data in list(self._prefix(raw_key, timestamp_bytes(max(time_from, 0)))):
            if len(store_key) == size:
                yield store_key, data

    def _prefix(self, raw_key: bytes, suffix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for store_key, data in self.map.scan(raw_key + suffix):
            if not store_key.startswith(raw_key):
                break
            yield store_key, data

    def _windowed(self, raw_key: bytes, start: int) -> Windowed:
        key = self.key_serde.deserialize(self.topic, raw_key)
        return Windowed(key, Window(start, start + self.window_size_ms))

    def _key(self, key: Any) -> bytes:
        raw: bytes | None = self.key_serde.serialize(self.topic, key)
        if raw is None:
            raise ValueError(f"store {self.name!r}: a key may not be None")
        return raw

"""`VersionedKeyValueStore`: every value a key had, by timestamp (Kafka's KIP-889).

Reads can ask for the value as of a time: `get(key, as_of=t)` is the version with the
largest timestamp <= t, within the history retention (measured back from the largest
timestamp written, the store's observed stream time). A put older than that is refused,
as Kafka's store refuses it. A delete is a version too: "no value from t on".

Locally each version is an entry `[key][timestamp: 8 BE]` → `[1][value]` or `[0]` (a
tombstone), so a key's versions are one ordered scan. The changelog holds what Kafka
Streams logs for a versioned store: key, value (None for a tombstone), timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strom.streams.serdes import Serde
from strom.streams.state.api import ChangelogEntry
from strom.streams.state.base import LoggedStore
from strom.streams.state.key_schema import TIMESTAMP_SIZE, timestamp_bytes

NOT_PUT = -1  # Kafka's VersionedKeyValueStore.PUT_RETURN_CODE_NOT_PUT
LATEST = -2  # the put became the latest version (Kafka: PUT_RETURN_CODE_VALID_TO_UNDEFINED)


class VersionedKeyValueStore(LoggedStore):
    timestamped = False

    def __init__(self, name: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                 *, history_retention_ms: int, persistent: bool, logging: bool) -> None:
        super().__init__(name, key_serde, value_serde, persistent=persistent, logging=logging)
        self.history_retention_ms = history_retention_ms
        self._observed = -1

    def put(self, key: Any, value: Any, timestamp: int) -> int:
        """Add a version; LATEST if it is now the newest, the timestamp of the next newer
        version if it went into the history, NOT_PUT if it is older than the history."""
        raw_key = self._key(key)
        if timestamp < self._observed - self.history_retention_ms:
            return NOT_PUT
        self._observed = max(self._observed, timestamp)
        newer = self._next_after(raw_key, timestamp)
        raw = None if value is None else self.value_serde.serialize(self.topic, value)
        self._put_version(raw_key, raw, timestamp)
        if self.logging:
            self.context.log_change(self.name, raw_key, raw, timestamp)
        return LATEST if newer is None else newer

    def _put_version(self, raw_key: bytes, raw: bytes | None, timestamp: int) -> None:
        self.map.put(raw_key + timestamp_bytes(timestamp), b"\x00" if raw is None else b"\x01" + raw)

    def delete(self, key: Any, timestamp: int) -> Any:
        found = self.get(key, as_of=timestamp)
        self.put(key, None, timestamp)
        return found

    def get(self, key: Any, as_of: int | None = None) -> tuple[Any, int] | None:
        """(value, timestamp) of the version valid at `as_of` (default: the latest); None
        when there is none, it is a tombstone, or `as_of` is older than the history."""
        if as_of is not None and as_of < self._observed - self.history_retention_ms:
            return None
        best: tuple[bytes, int] | None = None
        for timestamp, data in self._versions(self._key(key)):
            if as_of is not None and timestamp > as_of:
                break
            best = (data, timestamp)
        if best is None or best[0] == b"\x00":
            return None
        return self.value_serde.deserialize(self.topic, best[0][1:]), best[1]

    def restore(self, entries: Iterable[ChangelogEntry]) -> None:
        for raw_key, raw, timestamp in entries:
            self._observed = max(self._observed, timestamp)
            self._put_version(raw_key, raw, timestamp)

    def _versions(self, raw_key: bytes) -> list[tuple[int, bytes]]:
        size = len(raw_key) + TIMESTAMP_SIZE
        found = []
        for store_key, data in self.map.scan(raw_key):
            if not store_key.startswith(raw_key):
                break
            if len(store_key) == size:
                found.append((int.from_bytes(store_key[-TIMESTAMP_SIZE:], "big", signed=True),
                              data))
        return found

    def _next_after(self, raw_key: bytes, timestamp: int) -> int | None:
        return next((ts for ts, _ in self._versions(raw_key) if ts > timestamp), None)

    def _key(self, key: Any) -> bytes:
        raw: bytes | None = self.key_serde.serialize(self.topic, key)
        if raw is None:
            raise ValueError(f"store {self.name!r}: a key may not be None")
        return raw

"""`LoggedStore`: the part every store shares — engine, serdes, changelog, restoration.

A store writes its engine and, when logging is on, the changelog in the same call, so the
changelog is never behind what a processor could read. Restoration writes the engine only.
The serdes default to the application's when the builder named none (Kafka's
`default.key.serde`), resolved at `init`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strom.streams.errors import StoreError
from strom.streams.record import Headers
from strom.streams.serdes import Serde
from strom.streams.state.api import ChangelogEntry, StoreContext
from strom.streams.state.bytes_store import BytesMap, MemoryBytesMap, RocksDBBytesMap
from strom.streams.state.key_schema import stamped


class LoggedStore:
    """Base of the typed stores. `timestamped`: values are kept as `[ts][value]` locally
    and logged as the plain value with the timestamp on the record (Kafka's format)."""

    timestamped = True
    # headers on each changelog record that holds a value (the suppression buffer's
    # format version, as Kafka marks it); tombstones carry none
    changelog_headers: Headers = ()

    def __init__(self, name: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
                 *, persistent: bool, logging: bool) -> None:
        self.name = name
        self.persistent = persistent
        self.logging = logging
        self._key_serde_arg = key_serde
        self._value_serde_arg = value_serde
        self._map: BytesMap | None = None
        self._context: StoreContext | None = None
        self.topic = name  # what serdes see as the topic until init names the changelog

    def init(self, context: StoreContext) -> None:
        self._context = context
        self.key_serde: Serde[Any] = self._key_serde_arg or context.default_key_serde
        self.value_serde: Serde[Any] = self._value_serde_arg or context.default_value_serde
        self.topic = f"{context.application_id}-{self.name}-changelog"
        if self._map is None:
            self._map = self._open(context)

    def _open(self, context: StoreContext) -> BytesMap:
        if not self.persistent:
            return MemoryBytesMap()
        base = context.state_dir
        return RocksDBBytesMap(None if base is None else base / "rocksdb" / self.name)

    @property
    def map(self) -> BytesMap:
        if self._map is None:
            raise StoreError(f"store {self.name!r} is not initialized or is closed")
        return self._map

    @property
    def context(self) -> StoreContext:
        if self._context is None:
            raise StoreError(f"store {self.name!r} is not initialized")
        return self._context

    # --- writes -----------------------------------------------------------------------

    def _write(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        """Engine and changelog; None deletes."""
        if value is None:
            self.map.delete(key)
        else:
            self.map.put(key, stamped(timestamp, value) if self.timestamped else value)
        if self.logging:
            self.context.log_change(self.name, key, value, timestamp,
                                    () if value is None else self.changelog_headers)

    def restore(self, entries: Iterable[ChangelogEntry]) -> None:
        data = self.map
        for key, value, timestamp in entries:
            if value is None:
                data.delete(key)
            else:
                data.put(key, stamped(timestamp, value) if self.timestamped else value)

    def flush(self) -> None:
        if self._map is not None:
            self._map.flush()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def _timestamp(self, timestamp: int | None) -> int:
        return self.context.record_timestamp() if timestamp is None else timestamp

"""`KeyValueStore`: typed key-value state; each write is logged as Kafka Streams logs it.

Values carry the timestamp of the record that wrote them (Kafka's timestamped key-value
store, which the DSL uses); `get` gives the value, `get_with_timestamp` both. Ranges are
in the order of the serialized keys, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strom.streams.state.base import LoggedStore
from strom.streams.state.key_schema import unstamped

_IMMUTABLE = (str, bytes, int, float)


class KeyValueStore(LoggedStore):
    def get(self, key: Any) -> Any:
        found = self.get_with_timestamp(key)
        return None if found is None else found[0]

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        data = self.map.get(self._key(key))
        if data is None:
            return None
        value, timestamp = unstamped(data)
        return self.value_serde.deserialize(self.topic, value), timestamp

    def put(self, key: Any, value: Any, timestamp: int | None = None) -> None:
        """Write `value` (None deletes) stamped with `timestamp` (default: the record's)."""
        raw = None if value is None else self.value_serde.serialize(self.topic, value)
        self._write(self._key(key), raw, self._timestamp(timestamp))

    def put_if_absent(self, key: Any, value: Any, timestamp: int | None = None) -> Any:
        old = self.get(key)
        if old is None:
            self.put(key, value, timestamp)
        return old

    def delete(self, key: Any) -> Any:
        old = self.get(key)
        if old is not None:
            self.put(key, None)
        return old

    def range(self, start: Any = None, end: Any = None) -> list[tuple[Any, Any]]:
        """Entries with `start <= key <= end` by serialized key; None leaves a side open."""
        low = b"" if start is None else self._key(start)
        high = None if end is None else self._key(end)
        found = []
        for raw_key, data in self.map.scan(low):
            if high is not None and raw_key > high:
                break
            found.append((self.key_serde.deserialize(self.topic, raw_key),
                          self.value_serde.deserialize(self.topic, unstamped(data)[0])))
        return found

    def all(self) -> list[tuple[Any, Any]]:
        return self.range()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.all())

    def approximate_num_entries(self) -> int:
        return self.map.count()

    _last_key: Any = None
    _last_raw = b""

    def _key(self, key: Any) -> bytes:
        """The serialized key; the last one is remembered, since a read-modify-write (every
        aggregation) serializes the same key object twice in a row (immutable keys only:
        a dict key could change in between)."""
        if key is self._last_key and type(key) in _IMMUTABLE:
            return self._last_raw
        raw: bytes | None = self.key_serde.serialize(self.topic, key)
        if raw is None:
            raise ValueError(f"store {self.name!r}: a key may not be None")
        self._last_key, self._last_raw = key, raw
        return raw

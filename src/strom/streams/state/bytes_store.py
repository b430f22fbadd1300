"""Ordered byte maps: the engines beneath every store, in memory or on RocksDB.

Stores keep Kafka Streams' binary keys (see `key_schema`), so every query a store needs is
a seek and a forward scan in key order: `scan(start)` yields entries from the first key
at or after `start`. The memory engine is a `SortedDict`; the RocksDB engine is rocksdict
in raw mode (bytes in, bytes out, no pickling), under the task's state directory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sortedcontainers import SortedDict


class BytesMap(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def scan(self, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...

    def count(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemoryBytesMap:
    """A sorted dict; lost on close, rebuilt from the changelog."""

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._data.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self._data[key] = value

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)

    def scan(self, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Lazily, in key order; callers collect before they change the map."""
        data = self._data
        for key in data.irange(minimum=start):
            yield key, data[key]

    def count(self) -> int:
        return len(self._data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._data.clear()


class RocksDBBytesMap:
    """rocksdict in raw mode at `path` (a fresh temporary directory when None)."""

    def __init__(self, path: Path | None) -> None:
        from rocksdict import Options, Rdict

        self._temporary = path is None
        self.path = Path(tempfile.mkdtemp("-rocksdb")) if path is None else path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self._db = Rdict(str(self.path), options)
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self._db[key] = value

    def delete(self, key: bytes) -> None:
        del self._db[key]

    def scan(self, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(start)
        while it.valid():
            yield it.key(), it.value()
            it.next()

    def count(self) -> int:
        return int(self._db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def flush(self) -> None:
        if not self._closed:
            self._db.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._db.close()
        if self._temporary:
            shutil.rmtree(self.path, ignore_errors=True)

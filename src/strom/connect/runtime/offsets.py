"""Source offsets in standalone mode: one local file, Kafka's keys in JSON.

Kafka's standalone worker keeps a map from key to value bytes, where the key is
`[connector, source partition]` and the value the source offset, both serialized by
a schemaless JsonConverter. We keep exactly those JSON texts, so a partition is named
the same way Kafka names it; the file is a JSON document written to a temporary file,
fsynced and renamed, so a crash leaves either the old or the new offsets.

`OffsetStore` is the seam distributed mode will implement over `offset.storage.topic`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from strom.connect.converters.json_converter import value_to_json
from strom.connect.converters.jsontext import dumps

FORMAT_VERSION = 1


def key_text(connector: str, partition: Mapping[str, Any]) -> str:
    """Kafka's offset key: the JSON array [connector, partition]."""
    return dumps([connector, value_to_json(None, dict(partition))])


def value_text(offset: Mapping[str, Any] | None) -> str | None:
    return None if offset is None else dumps(value_to_json(None, dict(offset)))


class OffsetStore(Protocol):
    """Where source offsets live (a file now; a compacted topic in distributed mode)."""

    def get(self, connector: str, partition: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def put(self, connector: str, offsets: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any] | None]]
            ) -> None: ...

    def entries(self, connector: str) -> list[tuple[dict[str, Any], dict[str, Any]]]: ...

    def remove_connector(self, connector: str) -> None: ...


class FileOffsetStore:
    """`offset.storage.file.filename`: every connector's source offsets, flushed as a whole."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, str] = {}
        if path is not None and path.exists() and path.stat().st_size:
            document = json.loads(path.read_text(encoding="utf-8"))
            self._data = {k: v for k, v in document.get("offsets", []) if v is not None}

    def get(self, connector: str, partition: Mapping[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            text = self._data.get(key_text(connector, partition))
        return None if text is None else dict(json.loads(text))

    def put(self, connector: str, offsets: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any] | None]]
            ) -> None:
        """Store offsets by key text (see `key_text`); a None offset removes the partition."""
        with self._lock:
            for key, (_partition, offset) in offsets.items():
                text = value_text(offset)
                if text is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = text
            self._flush()

    def entries(self, connector: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(partition, offset) of every partition `connector` has an offset for."""
        found = []
        with self._lock:
            items = list(self._data.items())
        for key, value in items:
            name, partition = json.loads(key)
            if name == connector:
                found.append((dict(partition), dict(json.loads(value))))
        return found

    def remove_connector(self, connector: str) -> None:
        with self._lock:
            self._data = {k: v for k, v in self._data.items() if json.loads(k)[0] != connector}
            self._flush()

    def _flush(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        document = {"version": FORMAT_VERSION, "offsets": sorted(self._data.items())}
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


class ConnectorOffsetReader:
    """A task's `OffsetStorageReader`: the store, seen through one connector's name."""

    def __init__(self, store: OffsetStore, connector: str) -> None:
        self.store, self.connector = store, connector

    def offset(self, partition: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.store.get(self.connector, partition)

    def offsets(self, partitions: Sequence[Mapping[str, Any]]) -> dict[Any, dict[str, Any] | None]:
        return {json.dumps(dict(p), sort_keys=True): self.offset(p) for p in partitions}

"""`TopicOffsetStore`: source offsets in `offset.storage.topic`, the `OffsetStore` of
distributed mode (and of a standalone worker that is told to share a topic).

Keys and values are the JSON texts of `runtime/offsets` (Kafka's format); the map is
rebuilt by reading the topic, and a None offset is written as a tombstone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from strom.client import KafkaClients
from strom.connect.runtime.distributed.kafka_log import KafkaBasedLog
from strom.connect.runtime.offsets import key_text, value_text

DEFAULT_PARTITIONS = 25  # offset.storage.partitions, Kafka's default


class TopicOffsetStore:
    def __init__(self, clients: KafkaClients, topic: str, partitions: int = DEFAULT_PARTITIONS,
                 replication_factor: int = -1) -> None:
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._data: dict[str, str] = {}
        self.log = KafkaBasedLog(clients, topic, self._on_record, partitions=partitions,
                                 replication_factor=replication_factor, client_id="connect-offsets")

    def start(self) -> None:
        self.log.start()

    def stop(self) -> None:
        self.log.stop()

    def _on_record(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        if key is None:
            return
        with self._lock:
            if value is None:
                self._data.pop(key.decode(), None)
            else:
                self._data[key.decode()] = value.decode()

    def refresh(self) -> None:
        """Catch up with offsets other workers wrote (one reader at a time: the log's
        consumer is not shared between threads)."""
        with self._reading:
            self.log.read_to_end()

    def get(self, connector: str, partition: Mapping[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            text = self._data.get(key_text(connector, partition))
        return None if text is None else dict(json.loads(text))

    def put(self, connector: str, offsets: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any] | None]]
            ) -> None:
        for key, (_partition, offset) in offsets.items():
            text = value_text(offset)
            self.log.send(key.encode(), None if text is None else text.encode())
        self.log.flush()
        with self._lock:
            for key, (_partition, offset) in offsets.items():
                text = value_text(offset)
                if text is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = text

    def remember(self, offsets: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any] | None]]) -> None:
        """Offsets another producer wrote (an exactly-once task's transaction), known at once
        to this worker without waiting to read them back."""
        with self._lock:
            for key, (_partition, offset) in offsets.items():
                text = value_text(offset)
                if text is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = text

    def entries(self, connector: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        with self._lock:
            items = list(self._data.items())
        found = []
        for key, value in items:
            name, partition = json.loads(key)
            if name == connector:
                found.append((dict(partition), dict(json.loads(value))))
        return found

    def remove_connector(self, connector: str) -> None:
        self.put(connector, {key_text(connector, p): (p, None) for p, _ in self.entries(connector)})

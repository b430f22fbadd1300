"""Global stores: a full copy of a topic's table in every instance (Kafka's GlobalKTable).

A global store reads every partition of its topic, needs no co-partitioning and is
read by any task (a stream-global-table join maps each record to the table's key). It
has no changelog: the topic is its changelog. `GlobalState` holds the instance's global
stores and applies the topic's records to them: the runtime feeds it from a consumer
that reads each topic to its end before any task starts, then keeps following it; the
test driver feeds it piped records directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strom.streams.record import ConsumedRecord, Headers
from strom.streams.serdes import Serde
from strom.streams.state.api import StateStore
from strom.streams.state.stores import StoreSpec

log = logging.getLogger(__name__)


@dataclass
class GlobalStoreDef:
    """A global store in the topology: the store, its topic and the topic's serdes."""

    spec: StoreSpec
    topic: str
    key_serde: Serde[Any] | None
    value_serde: Serde[Any] | None


class _GlobalStoreContext:
    """What a global store sees: no task, no partition, no changelog."""

    def __init__(self, application_id: str, state_dir: Path | None,
                 key_serde: Serde[Any], value_serde: Serde[Any]) -> None:
        self.application_id = application_id
        self.task_id = "global"
        self.partition = -1
        self.state_dir = state_dir
        self.default_key_serde = key_serde
        self.default_value_serde = value_serde
        self.timestamp = -1

    def record_timestamp(self) -> int:
        return self.timestamp

    def stream_time(self) -> int:
        return self.timestamp

    def log_change(self, store: str, key: bytes, value: bytes | None, timestamp: int,
                   headers: Headers = ()) -> None:
        """Global stores are not logged."""


class GlobalState:
    """The global stores of one instance, and their upkeep from their topics."""

    def __init__(self, definitions: dict[str, GlobalStoreDef], application_id: str,
                 state_dir: Path | None, default_key_serde: Serde[Any],
                 default_value_serde: Serde[Any]) -> None:
        self.stores: dict[str, StateStore] = {}
        self._by_topic: dict[str, tuple[Any, Serde[Any], Serde[Any]]] = {}
        self._context = _GlobalStoreContext(application_id, state_dir, default_key_serde,
                                            default_value_serde)
        for name, definition in definitions.items():
            store = definition.spec.with_logging_disabled().build()
            store.init(self._context)
            self.stores[name] = store
            self._by_topic[definition.topic] = (
                store, definition.key_serde or default_key_serde,
                definition.value_serde or default_value_serde)

    def topics(self) -> list[str]:
        return list(self._by_topic)

    def persistent_topics(self) -> set[str]:
        """Topics whose stores outlive the process (RocksDB): only they are checkpointed."""
        return {topic for topic, (store, _, _) in self._by_topic.items() if store.persistent}

    def apply(self, record: ConsumedRecord) -> None:
        """Put (or, for a tombstone, delete) the record's key in its topic's store."""
        store, key_serde, value_serde = self._by_topic[record.topic]
        key = key_serde.deserialize(record.topic, record.key)
        if key is None:
            return
        self._context.timestamp = record.timestamp
        store.put(key, value_serde.deserialize(record.topic, record.value), record.timestamp)

    def flush(self) -> None:
        for store in self.stores.values():
            store.flush()

    def close(self) -> None:
        for store in self.stores.values():
            store.close()

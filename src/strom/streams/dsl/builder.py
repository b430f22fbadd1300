"""`StreamsBuilder`: where a DSL topology starts, and what every DSL object shares.

The builder writes processor nodes into a `Topology` as the DSL is called (there is no
separate logical plan to optimize yet): each `Stream`/`Table` is a handle on one node
plus what is known about its records (serdes, whether the key changed since the last
partitioning). `build()` returns the topology.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strom.streams.dsl.change import TableFlags
from strom.streams.dsl.materialized import Materialized
from strom.streams.dsl.naming import Namer
from strom.streams.dsl.processors import DropNullKeys, TableSourceProcessor
from strom.streams.serdes import Serde
from strom.streams.state.stores import Stores, StoreSpec
from strom.streams.timestamps import TimestampExtractor
from strom.streams.topology import Topology

if TYPE_CHECKING:
    from strom.streams.dsl.stream import Stream
    from strom.streams.dsl.table import GlobalTable, Table


class StreamsBuilder:
    def __init__(self) -> None:
        self.topology = Topology()
        self.namer = Namer()

    def stream(self, *topics: str, key_serde: Serde[Any] | None = None,
               value_serde: Serde[Any] | None = None,
               timestamp_extractor: TimestampExtractor | None = None,
               offset_reset: str | None = None, name: str | None = None) -> Stream:
        """A stream of the records of `topics`."""
        from strom.streams.dsl.stream import Stream

        node = self.namer.name("KSTREAM-SOURCE-", name)
        self.topology.add_source(node, *topics, key_serde=key_serde, value_serde=value_serde,
                                 timestamp_extractor=timestamp_extractor,
                                 offset_reset=offset_reset)
        return Stream(self, node, key_serde, value_serde)

    def table(self, topic: str, key_serde: Serde[Any] | None = None,
              value_serde: Serde[Any] | None = None,
              materialized: Materialized | str | None = None,
              timestamp_extractor: TimestampExtractor | None = None) -> Table:
        """A table of the latest value per key of `topic` (tombstones delete), kept in a
        store named `materialized` (default `<topic>-STATE-STORE-<n>`)."""
        source = self.namer.name("KSTREAM-SOURCE-")
        self.topology.add_source(source, topic, key_serde=key_serde, value_serde=value_serde,
                                 timestamp_extractor=timestamp_extractor)
        spec = Materialized.of(materialized)
        store = self.store_spec(spec, f"{topic}-STATE-STORE-", key_serde, value_serde)
        node = self.namer.name("KTABLE-SOURCE-")
        self.topology.add_processor(node, lambda: TableSourceProcessor(store.name), source)
        self.topology.add_state_store(store, node)
        return self._table(node, spec.key_serde or key_serde, spec.value_serde or value_serde,
                           store.name)

    def global_table(self, topic: str, key_serde: Serde[Any] | None = None,
                     value_serde: Serde[Any] | None = None,
                     materialized: Materialized | str | None = None) -> GlobalTable:
        """Every partition of `topic` as a table in every instance: joins with it need no
        co-partitioning (Kafka's GlobalKTable)."""
        from strom.streams.dsl.table import GlobalTable

        spec_in = Materialized.of(materialized)
        spec = self.store_spec(spec_in, f"{topic}-STATE-STORE-", key_serde, value_serde)
        self.topology.add_global_store(spec, topic, key_serde, value_serde)
        return GlobalTable(spec.name, key_serde, value_serde)

    def add_state_store(self, spec: StoreSpec) -> StreamsBuilder:
        """Register a store for `Stream.process(..., stores=[name])`."""
        self.topology.store_builders[spec.name] = spec
        return self

    def build(self) -> Topology:
        return self.topology

    # --- for the DSL classes ----------------------------------------------------------

    def _table(self, node: str, key_serde: Serde[Any] | None, value_serde: Serde[Any] | None,
               store: str | None, **extra: Any) -> Table:
        from strom.streams.dsl.table import Table

        return Table(self, node, key_serde, value_serde, store, TableFlags(), **extra)

    def store_spec(self, materialized: Materialized, prefix: str, key_serde: Serde[Any] | None,
                   value_serde: Serde[Any] | None) -> StoreSpec:
        """A key-value store as `materialized` says, its name generated when unnamed."""
        name = materialized.name or self.namer.name(prefix)
        if materialized.versioned_history_ms is not None:
            return Stores.versioned(name, materialized.key_serde or key_serde,
                                    materialized.value_serde or value_serde,
                                    history_retention_ms=materialized.versioned_history_ms,
                                    persistent=materialized.persistent,
                                    logging=materialized.logging,
                                    changelog_config=materialized.changelog_config)
        return Stores.key_value(name, materialized.key_serde or key_serde,
                                materialized.value_serde or value_serde,
                                persistent=materialized.persistent,
                                logging=materialized.logging,
                                changelog_config=materialized.changelog_config)

    def repartition(self, parent: str, base: str, key_serde: Serde[Any] | None,
                    value_serde: Serde[Any] | None, partitions: int | None = None) -> str:
        """Write `parent`'s records to `<base>-repartition` and read them back: the records
        reach the task of their new key's partition. Returns the new source's name."""
        topic = f"{base}-repartition"
        self.topology.add_internal_topic(topic, partitions=partitions)
        self.topology.add_processor(f"{topic}-filter", DropNullKeys, parent)
        self.topology.add_sink(f"{topic}-sink", topic, f"{topic}-filter", key_serde=key_serde,
                               value_serde=value_serde)
        self.topology.add_source(f"{topic}-source", topic, key_serde=key_serde,
                                 value_serde=value_serde)
        return f"{topic}-source"

"""`Table`: the latest value per key, changing over time (Kafka's KTable).

Table nodes forward `Change(new, old)`; `to_stream()` turns changes back into records
(a deleted row becomes a tombstone). A table made by `StreamsBuilder.table`, `to_table` or
an aggregation is kept in a store; derived tables (`filter`, `map_values`) are computed on
the fly unless given a `materialized` name. Windowed tables (from windowed aggregations)
have `Windowed` keys and know their windows' grace, which `suppress` needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.streams.dsl import processors as p
from strom.streams.dsl.change import Change, TableFlags
from strom.streams.dsl.materialized import Materialized
from strom.streams.dsl.suppress import Suppressed, SuppressProcessor
from strom.streams.errors import TopologyError
from strom.streams.processor import Processor, ProcessorSupplier
from strom.streams.record import Record
from strom.streams.serdes import Serde

if TYPE_CHECKING:
    from strom.streams.dsl.builder import StreamsBuilder
    from strom.streams.dsl.stream import Stream

KeyValueFn = Callable[[Any, Any], Any]


class _Materialize(Processor):
    """Writes each change's new value into a store, then forwards it."""

    def __init__(self, store: str) -> None:
        self._store_name = store

    def init(self, context: Any) -> None:
        super().init(context)
        self._store = context.get_state_store(self._store_name)

    def process(self, record: Record) -> None:
        change: Change = record.value
        self._store.put(record.key, change.new, record.timestamp)
        self.context.forward(record)


class Table:
    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, store: str | None, flags: TableFlags, *,
                 window_grace_ms: int | None = None,
                 inner_key_serde: Serde[Any] | None = None) -> None:
        self.builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store = store
        self.flags = flags
        self.window_grace_ms = window_grace_ms
        self.inner_key_serde = inner_key_serde

    @property
    def windowed(self) -> bool:
        return self.window_grace_ms is not None

    def _derive(self, prefix: str, supplier: Callable[[str | None, TableFlags], ProcessorSupplier],
                name: str | None, materialized: Materialized | str | None,
                value_serde: Serde[Any] | None) -> Table:
        """A table node after this one; `supplier(store, flags)` gets the new table's
        store (if materialized) and flags (set later by its own downstream)."""
        flags = TableFlags()
        store_name = None
        spec = None
        if materialized is not None:
            if self.windowed:
                raise TopologyError("a windowed table cannot be materialized as key-value")
            spec = self.builder.store_spec(Materialized.of(materialized), prefix + "STATE-STORE-",
                                           self.key_serde, value_serde)
            store_name = spec.name
        node = self.builder.namer.name(prefix, name)
        topology = self.builder.topology
        topology.add_processor(node, supplier(store_name, flags), self.node)
        if spec is not None:
            topology.add_state_store(spec, node)
        return Table(self.builder, node, self.key_serde, value_serde, store_name, flags,
                     window_grace_ms=self.window_grace_ms, inner_key_serde=self.inner_key_serde)

    def filter(self, predicate: KeyValueFn, name: str | None = None,
               materialized: Materialized | str | None = None) -> Table:
        return self._derive(
            "KTABLE-FILTER-",
            lambda store, flags: lambda: p.TableFilterProcessor(predicate, False, flags, store),
            name, materialized, self.value_serde)

    def filter_not(self, predicate: KeyValueFn, name: str | None = None,
                   materialized: Materialized | str | None = None) -> Table:
        return self._derive(
            "KTABLE-FILTER-",
            lambda store, flags: lambda: p.TableFilterProcessor(predicate, True, flags, store),
            name, materialized, self.value_serde)

    def map_values(self, fn: Callable[[Any], Any], name: str | None = None,
                   materialized: Materialized | str | None = None,
                   value_serde: Serde[Any] | None = None) -> Table:
        return self._derive(
            "KTABLE-MAPVALUES-",
            lambda store, flags: lambda: p.TableMapValuesProcessor(fn, flags, store),
            name, materialized, value_serde)

    def to_stream(self, name: str | None = None) -> Stream:
        from strom.streams.dsl.stream import Stream

        node = self.builder.namer.name("KTABLE-TOSTREAM-", name)
        self.builder.topology.add_processor(node, p.TableToStream, self.node)
        return Stream(self.builder, node, self.key_serde, self.value_serde)

    def suppress(self, suppressed: Suppressed, name: str | None = None) -> Table:
        """Hold back updates; `Suppressed.until_window_closes()` emits each window's final
        result once stream time passes its end plus grace."""
        if self.window_grace_ms is None:
            raise TopologyError("until_window_closes needs a windowed table")
        grace, inner = self.window_grace_ms, self.inner_key_serde
        node = self.builder.namer.name("KTABLE-SUPPRESS-", name or suppressed.name)
        self.builder.topology.add_processor(node, lambda: SuppressProcessor(grace, inner),
                                            self.node)
        return Table(self.builder, node, self.key_serde, self.value_serde, None, TableFlags(),
                     window_grace_ms=grace, inner_key_serde=inner)

    def materialize(self) -> str:
        """The name of a store holding this table, adding one if it has none (joins and
        lookups need it)."""
        if self.store is not None:
            return self.store
        if self.windowed:
            raise TopologyError("a windowed table cannot be joined or looked up by key")
        spec = self.builder.store_spec(Materialized(), "KTABLE-MATERIALIZE-STATE-STORE-",
                                       self.key_serde, self.value_serde)
        node = self.builder.namer.name("KTABLE-MATERIALIZE-")
        name = spec.name
        self.builder.topology.add_processor(node, lambda: _Materialize(name), self.node)
        self.builder.topology.add_state_store(spec, node)
        self.node, self.store = node, name
        return name

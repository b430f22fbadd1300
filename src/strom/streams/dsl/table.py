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
from strom.streams.dsl.materialized import Grouped, Materialized
from strom.streams.dsl.store_processor import StoreProcessor
from strom.streams.dsl.suppress import Suppressed, SuppressProcessor
from strom.streams.errors import TopologyError
from strom.streams.processor import ProcessorSupplier
from strom.streams.record import Record
from strom.streams.serdes import BytesSerde, LongSerde, Serde
from strom.streams.state.stores import Stores

if TYPE_CHECKING:
    from strom.streams.dsl.builder import StreamsBuilder
    from strom.streams.dsl.stream import Stream

KeyValueFn = Callable[[Any, Any], Any]


class _Materialize(StoreProcessor):
    """Writes each change's new value into a store, then forwards it."""

    def process(self, record: Record) -> None:
        change: Change = record.value
        self._store.put(record.key, change.new, record.timestamp)
        self.context.forward(record)


class Table:
    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, store: str | None, flags: TableFlags, *,
                 window_grace_ms: int | None = None,
                 inner_key_serde: Serde[Any] | None = None, parent: Table | None = None) -> None:
        self.builder = builder
        self.parent = parent
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
                     window_grace_ms=self.window_grace_ms, inner_key_serde=self.inner_key_serde,
                     parent=self)

    def enable_send_old_values(self) -> None:
        """Downstream needs old values: ask this table's processors, and their parents."""
        table: Table | None = self
        while table is not None:
            table.flags.send_old_values = True
            table = table.parent

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
        store = self.builder.namer.name("KTABLE-SUPPRESS-STATE-STORE-",
                                        f"{suppressed.name}-store" if suppressed.name else None)
        key_serde, value_serde = self.key_serde, self.value_serde
        topology = self.builder.topology
        topology.add_processor(node, lambda: SuppressProcessor(grace, store, key_serde,
                                                               value_serde), self.node)
        topology.add_state_store(Stores.key_value(store, BytesSerde(), BytesSerde(),
                                                  persistent=False), node)
        return Table(self.builder, node, self.key_serde, self.value_serde, None, TableFlags(),
                     window_grace_ms=grace, inner_key_serde=inner, parent=self)

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

    # --- joins --------------------------------------------------------------------------

    def join(self, other: Table, joiner: Callable[[Any, Any], Any], name: str | None = None, *,
             foreign_key: Callable[[Any], Any] | None = None) -> Table:
        """Inner table-table join: a row for keys present in both tables; with
        `foreign_key`, each row meets the `other` row whose key `foreign_key(value)` names
        (a foreign-key join: no co-partitioning needed, the result keyed as this table)."""
        if foreign_key is not None:
            return self._fk_join(other, joiner, foreign_key, True, name)
        return self._join(other, joiner, False, False, name)

    def left_join(self, other: Table, joiner: Callable[[Any, Any], Any],
                  name: str | None = None, *,
                  foreign_key: Callable[[Any], Any] | None = None) -> Table:
        """Every row of this table, `joiner(value, None)` where `other` has none (also as
        a foreign-key join)."""
        if foreign_key is not None:
            return self._fk_join(other, joiner, foreign_key, False, name)
        return self._join(other, joiner, True, False, name)

    def _fk_join(self, other: Table, joiner: Callable[[Any, Any], Any],
                 foreign_key: Callable[[Any], Any], inner: bool, name: str | None) -> Table:
        from strom.streams.dsl.fk_join import build_fk_join

        if self.windowed or other.windowed:
            raise TopologyError("windowed tables cannot be joined")
        node = build_fk_join(self, other, joiner, foreign_key, inner, name)
        return Table(self.builder, node, self.key_serde, None, None, TableFlags())

    def outer_join(self, other: Table, joiner: Callable[[Any, Any], Any],
                   name: str | None = None) -> Table:
        """A row for keys present in either table; the missing side is None."""
        return self._join(other, joiner, True, True, name)

    def _join(self, other: Table, joiner: Callable[[Any, Any], Any], keep_left: bool,
              keep_right: bool, name: str | None) -> Table:
        from strom.streams.dsl.joins import TableTableJoinProcessor

        if self.windowed or other.windowed:
            raise TopologyError("windowed tables cannot be joined")
        left_store, right_store = self.materialize(), other.materialize()
        self.enable_send_old_values()
        other.enable_send_old_values()
        namer, topology = self.builder.namer, self.builder.topology
        this_node = namer.name("KTABLE-JOINTHIS-", f"{name}-join-this" if name else None)
        other_node = namer.name("KTABLE-JOINOTHER-", f"{name}-join-other" if name else None)
        topology.add_processor(this_node, lambda: TableTableJoinProcessor(
            is_left=True, other_store=right_store, joiner=joiner, keep_this=keep_left,
            keep_other=keep_right), self.node)
        topology.add_processor(other_node, lambda: TableTableJoinProcessor(
            is_left=False, other_store=left_store, joiner=joiner, keep_this=keep_right,
            keep_other=keep_left), other.node)
        topology.connect_processor_and_state_stores(this_node, stores=[right_store])
        topology.connect_processor_and_state_stores(other_node, stores=[left_store])
        merge = namer.name("KTABLE-MERGE-", f"{name}-merge" if name else None)
        topology.add_processor(merge, p.PassThrough, this_node, other_node)
        return Table(self.builder, merge, self.key_serde, None, None, TableFlags())

    # --- re-grouping --------------------------------------------------------------------

    def group_by(self, selector: Callable[[Any, Any], tuple[Any, Any]],
                 grouped: Grouped | None = None) -> GroupedTable:
        """Re-group rows by `selector(key, value) -> (new key, new value)`; aggregations
        then add each row's new value and subtract its old one. Always repartitions."""
        from strom.streams.dsl.change import ChangeSerde

        if self.windowed:
            raise TopologyError("a windowed table cannot be re-grouped")
        grouped = grouped or Grouped()
        self.enable_send_old_values()
        node = self.builder.namer.name("KTABLE-SELECT-")
        self.builder.topology.add_processor(node, lambda: p.TableRepartitionMap(selector),
                                            self.node)
        return GroupedTable(self.builder, node, grouped, ChangeSerde)


class GroupedTable:
    """A table re-grouped by a new key: count, reduce and aggregate with a subtractor."""

    def __init__(self, builder: StreamsBuilder, node: str, grouped: Grouped,
                 change_serde: Callable[[Serde[Any] | None], Serde[Any]]) -> None:
        self.builder = builder
        self.node = node
        self.grouped = grouped
        self._change_serde = change_serde

    def count(self, materialized: Materialized | str | None = None) -> Table:
        spec = Materialized.of(materialized)
        if spec.value_serde is None:
            spec = Materialized(spec.name, spec.key_serde, LongSerde(), spec.persistent,
                                spec.logging, spec.changelog_config)
        return self.aggregate(lambda: 0, lambda k, v, agg: agg + 1, lambda k, v, agg: agg - 1,
                              spec)

    def reduce(self, adder: Callable[[Any, Any], Any], subtractor: Callable[[Any, Any], Any],
               materialized: Materialized | str | None = None) -> Table:
        unset = object()
        spec = Materialized.of(materialized)
        if spec.value_serde is None:
            spec = Materialized(spec.name, spec.key_serde, self.grouped.value_serde,
                                spec.persistent, spec.logging, spec.changelog_config)
        return self.aggregate(lambda: unset,
                              lambda k, v, agg: v if agg is unset else adder(agg, v),
                              lambda k, v, agg: subtractor(agg, v), spec)

    def aggregate(self, initializer: Callable[[], Any], adder: Callable[[Any, Any, Any], Any],
                  subtractor: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | str | None = None) -> Table:
        spec_in = Materialized.of(materialized)
        key_serde = spec_in.key_serde or self.grouped.key_serde
        spec = self.builder.store_spec(spec_in, "KTABLE-AGGREGATE-STATE-STORE-", key_serde,
                                       spec_in.value_serde)
        value_serde = self.grouped.value_serde
        source = self.builder.repartition(
            self.node, self.grouped.name or spec.name, key_serde,
            self._change_serde(value_serde))
        node = self.builder.namer.name("KTABLE-AGGREGATE-")
        store = spec.name
        topology = self.builder.topology
        topology.add_processor(node, lambda: p.TableAggregateProcessor(
            store, initializer, adder, subtractor), source)
        topology.add_state_store(spec, node)
        return self.builder._table(node, key_serde, spec.value_serde, store)


class GlobalTable:
    """A table replicated whole to every instance; join a stream with it through a key
    selector (`Stream.join(global_table, joiner, key_selector=...)`)."""

    def __init__(self, store: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None) -> None:
        self.store = store
        self.key_serde = key_serde
        self.value_serde = value_serde

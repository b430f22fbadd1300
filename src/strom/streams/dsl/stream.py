"""`Stream`: an unbounded sequence of records (Kafka's KStream).

Stateless operations add one processor node each. Operations that may change the key
(`map`, `flat_map`, `select_key`) mark the stream as needing a repartition: the next
grouping, `to_table` or join first writes the records to an internal
`<name>-repartition` topic so that each key lands in one task. `map_values` and
`flat_map_values` keep the key and never cause one, so prefer them when the key stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from strom.streams.dsl import processors as p
from strom.streams.dsl.materialized import Grouped, Materialized
from strom.streams.errors import TopologyError
from strom.streams.processor import ProcessorSupplier
from strom.streams.serdes import Serde, Serdes
from strom.streams.topology import Partitioner, TopicNameExtractor
from strom.streams.windows import JoinWindows

if TYPE_CHECKING:
    from strom.streams.dsl.builder import StreamsBuilder
    from strom.streams.dsl.grouped import GroupedStream
    from strom.streams.dsl.table import GlobalTable, Table

KeyValueFn = Callable[[Any, Any], Any]


class Stream:
    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, repartition_required: bool = False) -> None:
        self.builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.repartition_required = repartition_required

    def _then(self, prefix: str, supplier: ProcessorSupplier, name: str | None = None, *,
              key_changes: bool = False, key_serde: Serde[Any] | None = None,
              value_serde: Serde[Any] | None = None, keep_value_serde: bool = True) -> Stream:
        node = self.builder.namer.name(prefix, name)
        self.builder.topology.add_processor(node, supplier, self.node)
        return Stream(self.builder, node,
                      key_serde if key_changes else self.key_serde,
                      self.value_serde if keep_value_serde else value_serde,
                      self.repartition_required or key_changes)

    # --- stateless --------------------------------------------------------------------

    def filter(self, predicate: KeyValueFn, name: str | None = None) -> Stream:
        return self._then("KSTREAM-FILTER-", lambda: p.FilterProcessor(predicate), name)

    def filter_not(self, predicate: KeyValueFn, name: str | None = None) -> Stream:
        return self._then("KSTREAM-FILTER-", lambda: p.FilterProcessor(predicate, True), name)

    def map(self, fn: Callable[[Any, Any], tuple[Any, Any]], name: str | None = None) -> Stream:
        return self._then("KSTREAM-MAP-", lambda: p.MapProcessor(fn), name, key_changes=True,
                          keep_value_serde=False)

    def map_values(self, fn: Callable[[Any], Any], name: str | None = None) -> Stream:
        return self._then("KSTREAM-MAPVALUES-", lambda: p.MapValuesProcessor(fn), name,
                          keep_value_serde=False)

    def select_key(self, fn: KeyValueFn, name: str | None = None) -> Stream:
        return self._then("KSTREAM-KEY-SELECT-", lambda: p.SelectKeyProcessor(fn), name,
                          key_changes=True)

    def flat_map(self, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
                 name: str | None = None) -> Stream:
        return self._then("KSTREAM-FLATMAP-", lambda: p.FlatMapProcessor(fn), name,
                          key_changes=True, keep_value_serde=False)

    def flat_map_values(self, fn: Callable[[Any], Iterable[Any]],
                        name: str | None = None) -> Stream:
        return self._then("KSTREAM-FLATMAPVALUES-", lambda: p.FlatMapValuesProcessor(fn), name,
                          keep_value_serde=False)

    def peek(self, fn: KeyValueFn, name: str | None = None) -> Stream:
        return self._then("KSTREAM-PEEK-", lambda: p.PeekProcessor(fn, True), name)

    def foreach(self, fn: KeyValueFn, name: str | None = None) -> None:
        self._then("KSTREAM-FOREACH-", lambda: p.PeekProcessor(fn, False), name)

    def branch(self, *predicates: KeyValueFn, name: str | None = None) -> list[Stream]:
        """One stream per predicate; a record goes to the first predicate it matches
        (none: dropped). Use `lambda k, v: True` last for "the rest"."""
        node = self.builder.namer.name("KSTREAM-BRANCH-", name)
        children = [self.builder.namer.name("KSTREAM-BRANCHCHILD-",
                                            f"{name}-{i}" if name else None)
                    for i in range(len(predicates))]
        preds = list(predicates)
        self.builder.topology.add_processor(node, lambda: p.BranchProcessor(preds, children),
                                            self.node)
        branches = []
        for child in children:
            self.builder.topology.add_processor(child, p.PassThrough, node)
            branches.append(Stream(self.builder, child, self.key_serde, self.value_serde,
                                   self.repartition_required))
        return branches

    def merge(self, other: Stream, name: str | None = None) -> Stream:
        node = self.builder.namer.name("KSTREAM-MERGE-", name)
        self.builder.topology.add_processor(node, p.PassThrough, self.node, other.node)
        same = self.key_serde is other.key_serde and self.value_serde is other.value_serde
        return Stream(self.builder, node, self.key_serde if same else None,
                      self.value_serde if same else None,
                      self.repartition_required or other.repartition_required)

    def process(self, supplier: ProcessorSupplier, *stores: str, name: str | None = None) -> Stream:
        """A Processor API node in the DSL, with access to `stores` (added with
        `StreamsBuilder.add_state_store`). Its output's serdes are unknown."""
        node = self.builder.namer.name("KSTREAM-PROCESSOR-", name)
        topology = self.builder.topology
        topology.add_processor(node, supplier, self.node)
        if stores:
            topology.connect_processor_and_state_stores(node, stores=list(stores))
        return Stream(self.builder, node, None, None, self.repartition_required)

    # --- topics -----------------------------------------------------------------------

    def to(self, topic: str | TopicNameExtractor, key_serde: Serde[Any] | None = None,
           value_serde: Serde[Any] | None = None, partitioner: Partitioner | None = None,
           name: str | None = None) -> None:
        """Write to `topic` (or the topic `topic(record)` names), with this stream's serdes
        unless others are given."""
        node = self.builder.namer.name("KSTREAM-SINK-", name)
        self.builder.topology.add_sink(node, topic, self.node,
                                       key_serde=key_serde or self.key_serde,
                                       value_serde=value_serde or self.value_serde,
                                       partitioner=partitioner)

    def repartition(self, name: str | None = None, key_serde: Serde[Any] | None = None,
                    value_serde: Serde[Any] | None = None,
                    partitions: int | None = None) -> Stream:
        """Through an internal `<name>-repartition` topic, now (Kafka's `repartition`)."""
        base = self.builder.namer.name("KSTREAM-REPARTITION-", name)
        ks, vs = key_serde or self.key_serde, value_serde or self.value_serde
        source = self.builder.repartition(self.node, base, ks, vs, partitions)
        return Stream(self.builder, source, ks, vs)

    # --- stateful ---------------------------------------------------------------------

    def group_by_key(self, grouped: Grouped | None = None) -> GroupedStream:
        from strom.streams.dsl.grouped import GroupedStream

        grouped = grouped or Grouped()
        return GroupedStream(self, grouped.key_serde or self.key_serde,
                             grouped.value_serde or self.value_serde, grouped.name,
                             self.repartition_required)

    def group_by(self, selector: KeyValueFn, grouped: Grouped | None = None) -> GroupedStream:
        """Group by a new key `selector(key, value)`: always repartitions."""
        keyed = self.select_key(selector)
        from strom.streams.dsl.grouped import GroupedStream

        grouped = grouped or Grouped()
        return GroupedStream(keyed, grouped.key_serde, grouped.value_serde or self.value_serde,
                             grouped.name, True)

    def to_table(self, materialized: Materialized | str | None = None,
                 name: str | None = None) -> Table:
        """The latest value per key as a table (repartitioned first if the key changed)."""
        spec = Materialized.of(materialized)
        ks, vs = spec.key_serde or self.key_serde, spec.value_serde or self.value_serde
        store = self.builder.store_spec(spec, "KSTREAM-TOTABLE-STATE-STORE-", ks, vs)
        parent = self.node
        if self.repartition_required:
            parent = self.builder.repartition(self.node, store.name, ks, vs)
        node = self.builder.namer.name("KSTREAM-TOTABLE-", name)
        topology = self.builder.topology
        topology.add_processor(node, lambda: p.TableSourceProcessor(store.name), parent)
        topology.add_state_store(store, node)
        return self.builder._table(node, ks, vs, store.name)

    def join(self, other: Table | Stream | GlobalTable, joiner: Callable[[Any, Any], Any],
             windows: JoinWindows | None = None, name: str | None = None, *,
             key_selector: KeyValueFn | None = None) -> Stream:
        """Inner join: with a `Table`, each record meets the table's current value for its
        key; with a `GlobalTable`, the value for `key_selector(key, value)` (default: the
        key); with a `Stream`, records whose timestamps are within `windows` of each other
        meet (`joiner(left value, right value)`)."""
        return self._join(other, joiner, windows, name, key_selector, False)

    def left_join(self, other: Table | Stream | GlobalTable, joiner: Callable[[Any, Any], Any],
                  windows: JoinWindows | None = None, name: str | None = None, *,
                  key_selector: KeyValueFn | None = None) -> Stream:
        """Left join: a left record without a partner gives `joiner(value, None)` (for
        streams, once its join window has closed)."""
        return self._join(other, joiner, windows, name, key_selector, True)

    def _join(self, other: Table | Stream | GlobalTable, joiner: Callable[[Any, Any], Any],
              windows: JoinWindows | None, name: str | None, key_selector: KeyValueFn | None,
              left: bool) -> Stream:
        from strom.streams.dsl.table import GlobalTable

        if isinstance(other, Stream):
            return self._stream_join(other, joiner, windows, left, False, name)
        if isinstance(other, GlobalTable):
            return self._global_join(other, joiner, key_selector, left, name)
        return self._table_join(other, joiner, left, name)

    def _global_join(self, table: GlobalTable, joiner: Callable[[Any, Any], Any],
                     key_selector: KeyValueFn | None, left: bool, name: str | None) -> Stream:
        from strom.streams.dsl.joins import StreamGlobalTableJoinProcessor

        node = self.builder.namer.name("KSTREAM-JOIN-", name)
        store = table.store
        selector = key_selector or (lambda key, value: key)
        self.builder.topology.add_processor(
            node, lambda: StreamGlobalTableJoinProcessor(store, selector, joiner, left),
            self.node)
        return Stream(self.builder, node, self.key_serde, None, self.repartition_required)

    def outer_join(self, other: Stream, joiner: Callable[[Any, Any], Any],
                   windows: JoinWindows, name: str | None = None) -> Stream:
        """Outer stream-stream join: records of either side without a partner are emitted
        with None for the other once their window has closed."""
        return self._stream_join(other, joiner, windows, True, True, name)

    def _join_input(self) -> str:
        if not self.repartition_required:
            return self.node
        return self.builder.repartition(
            self.node, self.builder.namer.name("KSTREAM-JOIN-REPARTITION-"), self.key_serde,
            self.value_serde)

    def _stream_join(self, other: Stream, joiner: Callable[[Any, Any], Any],
                     windows: JoinWindows | None, outer_left: bool, outer_right: bool,
                     name: str | None) -> Stream:
        from strom.streams.dsl.joins import StreamStreamJoinProcessor, _TimeTracker
        from strom.streams.state.stores import Stores

        if windows is None:
            raise TopologyError("a stream-stream join needs JoinWindows")
        namer, topology = self.builder.namer, self.builder.topology
        left_in, right_in = self._join_input(), other._join_input()
        this_node = namer.name("KSTREAM-JOINTHIS-", f"{name}-this-join" if name else None)
        other_node = namer.name("KSTREAM-JOINOTHER-", f"{name}-other-join" if name else None)
        this_store, other_store = f"{this_node}-store", f"{other_node}-store"
        outer = (namer.name("KSTREAM-OUTERSHARED-") + "-store"
                 if outer_left or outer_right else None)
        trackers: dict[str, _TimeTracker] = {}
        common: dict[str, Any] = {"outer_store": outer, "windows": windows, "joiner": joiner,
                  "trackers": trackers}
        topology.add_processor(this_node, lambda: StreamStreamJoinProcessor(
            is_left=True, this_store=this_store, other_store=other_store,
            outer_this=outer_left, **common), left_in)
        topology.add_processor(other_node, lambda: StreamStreamJoinProcessor(
            is_left=False, this_store=other_store, other_store=this_store,
            outer_this=outer_right, **common), right_in)
        for store, ks, vs in ((this_store, self.key_serde, self.value_serde),
                              (other_store, other.key_serde, other.value_serde)):
            spec = Stores.window(store, ks, vs, retention_ms=windows.retention_ms(),
                                 window_size_ms=windows.size_ms(), retain_duplicates=True)
            topology.add_state_store(spec, this_node, other_node)
        if outer is not None:
            topology.add_state_store(Stores.key_value(outer, Serdes.Bytes, Serdes.Bytes),
                                     this_node, other_node)
        merge = namer.name("KSTREAM-MERGE-", f"{name}-merge" if name else None)
        topology.add_processor(merge, p.PassThrough, this_node, other_node)
        return Stream(self.builder, merge, self.key_serde, None)

    def _table_join(self, table: Table, joiner: Callable[[Any, Any], Any], left: bool,
                    name: str | None) -> Stream:
        from strom.streams.dsl.joins import StreamTableJoinProcessor

        store = table.materialize()
        parent = self._join_input()
        node = self.builder.namer.name("KSTREAM-JOIN-", name)
        topology = self.builder.topology
        topology.add_processor(node, lambda: StreamTableJoinProcessor(store, joiner, left), parent)
        topology.connect_processor_and_state_stores(node, stores=[store])
        return Stream(self.builder, node, self.key_serde, None)

"""Grouped streams and their aggregations: count, reduce, aggregate; windowed by time or
session. Each aggregation materializes a store (named by `materialized`, or
`KSTREAM-AGGREGATE-STATE-STORE-<n>`), repartitions first if the key changed (the topic is
named after the grouping's name, else the store's: `<name>-repartition`, as in Kafka),
and returns a `Table`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.streams.dsl.aggregate import (
    Aggregator,
    Initializer,
    Merger,
    SessionAggregateProcessor,
    SlidingWindowAggregateProcessor,
    StreamAggregateProcessor,
    WindowAggregateProcessor,
    reducer_as_aggregator,
)
from strom.streams.dsl.materialized import Materialized
from strom.streams.errors import TopologyError
from strom.streams.processor import ProcessorSupplier
from strom.streams.serdes import LongSerde, Serde, SessionWindowedSerde, TimeWindowedSerde
from strom.streams.state.stores import Stores, StoreSpec
from strom.streams.windows import SessionWindows, SlidingWindows, TimeWindows

if TYPE_CHECKING:
    from strom.streams.dsl.stream import Stream
    from strom.streams.dsl.table import Table

Reducer = Callable[[Any, Any], Any]
_LONG = LongSerde()


def _count(key: Any, value: Any, agg: int) -> int:
    return agg + 1


class GroupedStream:
    def __init__(self, stream: Stream, key_serde: Serde[Any] | None,
                 value_serde: Serde[Any] | None, name: str | None,
                 repartition_required: bool) -> None:
        self.stream = stream
        self.builder = stream.builder
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.name = name
        self.repartition_required = repartition_required

    def _input(self, store_name: str) -> str:
        """The node the aggregation reads: the stream, or a repartition topic's source."""
        if not self.repartition_required:
            return self.stream.node
        return self.builder.repartition(self.stream.node, self.name or store_name,
                                        self.key_serde, self.value_serde)

    def _aggregate_node(self, spec: StoreSpec, supplier: ProcessorSupplier, prefix: str) -> str:
        parent = self._input(spec.name)
        node = self.builder.namer.name(prefix)
        topology = self.builder.topology
        topology.add_processor(node, supplier, parent)
        topology.add_state_store(spec, node)
        return node

    def count(self, materialized: Materialized | str | None = None) -> Table:
        spec = Materialized.of(materialized)
        return self.aggregate(lambda: 0, _count, Materialized(
            spec.name, spec.key_serde, spec.value_serde or _LONG, spec.persistent, spec.logging,
            spec.changelog_config))

    def reduce(self, reducer: Reducer, materialized: Materialized | str | None = None) -> Table:
        initializer, aggregator, _ = reducer_as_aggregator(reducer)
        spec = Materialized.of(materialized)
        if spec.value_serde is None:
            spec = Materialized(spec.name, spec.key_serde, self.value_serde, spec.persistent,
                                spec.logging, spec.changelog_config)
        return self.aggregate(initializer, aggregator, spec)

    def aggregate(self, initializer: Initializer, aggregator: Aggregator,
                  materialized: Materialized | str | None = None) -> Table:
        spec_in = Materialized.of(materialized)
        spec = self.builder.store_spec(spec_in, "KSTREAM-AGGREGATE-STATE-STORE-",
                                       self.key_serde, spec_in.value_serde)
        store = spec.name
        node = self._aggregate_node(
            spec, lambda: StreamAggregateProcessor(store, initializer, aggregator),
            "KSTREAM-AGGREGATE-")
        return self.builder._table(node, spec.key_serde, spec.value_serde, store)

    def windowed_by(self, windows: TimeWindows | SessionWindows | SlidingWindows
                    ) -> TimeWindowedStream | SessionWindowedStream:
        """Windows per key: tumbling/hopping (`TimeWindows`), sliding (`SlidingWindows`,
        windows of `time_difference_ms` keyed like time windows), or sessions."""
        if isinstance(windows, TimeWindows):
            return TimeWindowedStream(self, windows)
        if isinstance(windows, SessionWindows):
            return SessionWindowedStream(self, windows)
        if isinstance(windows, SlidingWindows):
            return TimeWindowedStream(self, windows)
        raise TopologyError(f"unknown windows: {windows!r}")


class _Windowed:
    """What time and session windowed streams share: stores with retention, serdes."""

    def __init__(self, grouped: GroupedStream) -> None:
        self.grouped = grouped
        self.builder = grouped.builder

    def _materialized(self, materialized: Materialized | str | None,
                      value_serde: Serde[Any] | None) -> Materialized:
        spec = Materialized.of(materialized)
        if spec.value_serde is None:
            spec = Materialized(spec.name, spec.key_serde, value_serde, spec.persistent,
                                spec.logging, spec.changelog_config, spec.retention_ms)
        return spec

    def _table(self, node: str, store: str, windowed_serde: Serde[Any] | None,
               value_serde: Serde[Any] | None, grace: int) -> Table:
        return self.builder._table(node, windowed_serde, value_serde, store,
                                   window_grace_ms=grace,
                                   inner_key_serde=self.grouped.key_serde)


class TimeWindowedStream(_Windowed):
    """Tumbling, hopping or sliding windows: keys are `Windowed` with a fixed size."""

    def __init__(self, grouped: GroupedStream, windows: TimeWindows | SlidingWindows) -> None:
        super().__init__(grouped)
        self.windows = windows

    def count(self, materialized: Materialized | str | None = None) -> Table:
        return self.aggregate(lambda: 0, _count, self._materialized(materialized, _LONG))

    def reduce(self, reducer: Reducer, materialized: Materialized | str | None = None) -> Table:
        initializer, aggregator, _ = reducer_as_aggregator(reducer)
        return self.aggregate(initializer, aggregator,
                              self._materialized(materialized, self.grouped.value_serde))

    def aggregate(self, initializer: Initializer, aggregator: Aggregator,
                  materialized: Materialized | str | None = None) -> Table:
        spec = Materialized.of(materialized)
        windows, key_serde = self.windows, spec.key_serde or self.grouped.key_serde
        name = spec.name or self.builder.namer.name("KSTREAM-AGGREGATE-STATE-STORE-")
        size = (windows.size_ms if isinstance(windows, TimeWindows)
                else windows.time_difference_ms)
        store = Stores.window(name, key_serde, spec.value_serde,
                              retention_ms=spec.retention_ms or windows.retention_ms(),
                              window_size_ms=size, persistent=spec.persistent,
                              logging=spec.logging, changelog_config=spec.changelog_config)
        node = self.grouped._aggregate_node(store, self._supplier(name, initializer, aggregator),
                                            "KSTREAM-AGGREGATE-")
        serde = TimeWindowedSerde(key_serde, size)
        return self._table(node, name, serde, spec.value_serde, windows.grace_ms)


    def _supplier(self, store: str, initializer: Initializer,
                  aggregator: Aggregator) -> ProcessorSupplier:
        windows = self.windows
        if isinstance(windows, TimeWindows):
            return lambda: WindowAggregateProcessor(store, windows, initializer, aggregator)
        return lambda: SlidingWindowAggregateProcessor(store, windows, initializer, aggregator)


class SessionWindowedStream(_Windowed):
    def __init__(self, grouped: GroupedStream, windows: SessionWindows) -> None:
        super().__init__(grouped)
        self.windows = windows

    def count(self, materialized: Materialized | str | None = None) -> Table:
        return self.aggregate(lambda: 0, _count, lambda k, a, b: a + b,
                              self._materialized(materialized, _LONG))

    def reduce(self, reducer: Reducer, materialized: Materialized | str | None = None) -> Table:
        initializer, aggregator, merger = reducer_as_aggregator(reducer)
        return self.aggregate(initializer, aggregator, merger,
                              self._materialized(materialized, self.grouped.value_serde))

    def aggregate(self, initializer: Initializer, aggregator: Aggregator, merger: Merger,
                  materialized: Materialized | str | None = None) -> Table:
        spec = Materialized.of(materialized)
        windows, key_serde = self.windows, spec.key_serde or self.grouped.key_serde
        name = spec.name or self.builder.namer.name("KSTREAM-AGGREGATE-STATE-STORE-")
        store = Stores.session(name, key_serde, spec.value_serde,
                               retention_ms=spec.retention_ms or windows.retention_ms(),
                               persistent=spec.persistent, logging=spec.logging,
                               changelog_config=spec.changelog_config)
        node = self.grouped._aggregate_node(
            store,
            lambda: SessionAggregateProcessor(name, windows, initializer, aggregator, merger),
            "KSTREAM-AGGREGATE-")
        serde = SessionWindowedSerde(key_serde)
        # a session can still grow for a gap after its end: suppression waits for both
        return self._table(node, name, serde, spec.value_serde, windows.grace_ms + windows.gap_ms)

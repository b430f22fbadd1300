"""The processors behind the stateless DSL operations and the table operations.

Each is a small `Processor` built by a supplier (a lambda closing over the user's
function), one instance per task. Stream operations get plain values; table operations
get `Change(new, old)` values (see `change`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from strom.streams.dsl.change import Change, TableFlags
from strom.streams.dsl.store_processor import StoreProcessor
from strom.streams.processor import Processor
from strom.streams.record import Record
from strom.streams.state.versioned import NOT_PUT, VersionedKeyValueStore

KeyValueFn = Callable[[Any, Any], Any]


class FilterProcessor(Processor):
    def __init__(self, predicate: KeyValueFn, negate: bool = False) -> None:
        self._predicate = predicate
        self._negate = negate

    def process(self, record: Record) -> None:
        if bool(self._predicate(record.key, record.value)) != self._negate:
            self.context.forward(record)


class MapProcessor(Processor):
    """`fn(key, value) -> (key, value)`."""

    def __init__(self, fn: KeyValueFn) -> None:
        self._fn = fn

    def process(self, record: Record) -> None:
        key, value = self._fn(record.key, record.value)
        self.context.forward(record.with_key_value(key, value))


class MapValuesProcessor(Processor):
    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self._fn = fn

    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(self._fn(record.value)))


class SelectKeyProcessor(Processor):
    def __init__(self, fn: KeyValueFn) -> None:
        self._fn = fn

    def process(self, record: Record) -> None:
        self.context.forward(record.with_key(self._fn(record.key, record.value)))


class FlatMapProcessor(Processor):
    """`fn(key, value) -> iterable of (key, value)`."""

    def __init__(self, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> None:
        self._fn = fn

    def process(self, record: Record) -> None:
        for key, value in self._fn(record.key, record.value):
            self.context.forward(record.with_key_value(key, value))


class FlatMapValuesProcessor(Processor):
    def __init__(self, fn: Callable[[Any], Iterable[Any]]) -> None:
        self._fn = fn

    def process(self, record: Record) -> None:
        for value in self._fn(record.value):
            self.context.forward(record.with_value(value))


class PeekProcessor(Processor):
    """Calls `fn(key, value)`; forwards the record unchanged (`peek`) or not (`foreach`)."""

    def __init__(self, fn: KeyValueFn, forward: bool) -> None:
        self._fn = fn
        self._forward = forward

    def process(self, record: Record) -> None:
        self._fn(record.key, record.value)
        if self._forward:
            self.context.forward(record)


class BranchProcessor(Processor):
    """Sends each record to the child of the first predicate it matches."""

    def __init__(self, predicates: list[KeyValueFn], children: list[str]) -> None:
        self._routes = list(zip(predicates, children, strict=True))

    def process(self, record: Record) -> None:
        for predicate, child in self._routes:
            if predicate(record.key, record.value):
                self.context.forward(record, to=child)
                return


class PassThrough(Processor):
    """Forwards everything: branch children and merge points."""

    def process(self, record: Record) -> None:
        self.context.forward(record)


class DropNullKeys(Processor):
    """Before a repartition: a record without a key cannot be partitioned (Kafka drops it)."""

    def process(self, record: Record) -> None:
        if record.key is not None:
            self.context.forward(record)


# --- tables -----------------------------------------------------------------------------

class TableSourceProcessor(StoreProcessor):
    """Materializes a changelog stream into a store and forwards `Change(new, old)`."""

    def init(self, context: Any) -> None:
        super().init(context)
        self._versioned = isinstance(self._store, VersionedKeyValueStore)

    def process(self, record: Record) -> None:
        if record.key is None:
            return
        if self._versioned:
            self._process_versioned(record)
            return
        old = self._store.get(record.key)
        self._store.put(record.key, record.value, record.timestamp)
        self.context.forward(record.with_value(Change(record.value, old)))

    def _process_versioned(self, record: Record) -> None:
        """A versioned table takes late updates into its history and forwards them (as
        Kafka's KTableSource does); one older than the history is dropped."""
        latest = self._store.get(record.key)
        if self._store.put(record.key, record.value, record.timestamp) == NOT_PUT:
            return
        old = None if latest is None else latest[0]
        self.context.forward(record.with_value(Change(record.value, old)))


class TableToStream(Processor):
    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(record.value.new))


class TableFilterProcessor(Processor):
    """Kafka's KTableFilter: a row that does not match becomes a tombstone downstream."""

    def __init__(self, predicate: KeyValueFn, negate: bool, flags: TableFlags,
                 store: str | None) -> None:
        self._predicate = predicate
        self._negate = negate
        self._flags = flags
        self._store_name = store

    def init(self, context: Any) -> None:
        super().init(context)
        self._send_old = self._flags.send_old_values
        self._store = context.get_state_store(self._store_name) if self._store_name else None

    def _apply(self, key: Any, value: Any) -> Any:
        if value is None or bool(self._predicate(key, value)) == self._negate:
            return None
        return value

    def process(self, record: Record) -> None:
        change: Change = record.value
        new = self._apply(record.key, change.new)
        old = self._apply(record.key, change.old) if self._send_old else None
        if self._send_old and new is None and old is None:
            return
        if self._store is not None:
            self._store.put(record.key, new, record.timestamp)
        self.context.forward(record.with_value(Change(new, old)))


class TableMapValuesProcessor(Processor):
    def __init__(self, fn: Callable[[Any], Any], flags: TableFlags, store: str | None) -> None:
        self._fn = fn
        self._flags = flags
        self._store_name = store

    def init(self, context: Any) -> None:
        super().init(context)
        self._send_old = self._flags.send_old_values
        self._store = context.get_state_store(self._store_name) if self._store_name else None

    def process(self, record: Record) -> None:
        change: Change = record.value
        new = None if change.new is None else self._fn(change.new)
        old = None if not self._send_old or change.old is None else self._fn(change.old)
        if self._store is not None:
            self._store.put(record.key, new, record.timestamp)
        self.context.forward(record.with_value(Change(new, old)))


class TableRepartitionMap(Processor):
    """Re-keys a table's changes for `Table.group_by` (Kafka's KTableRepartitionMap): the
    old row is retracted under its old group and the new one added under its new group,
    in one record when both groups are the same."""

    def __init__(self, selector: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        self._selector = selector

    def process(self, record: Record) -> None:
        change: Change = record.value
        new = None if change.new is None else self._selector(record.key, change.new)
        old = None if change.old is None else self._selector(record.key, change.old)
        if new is not None and old is not None and new[0] == old[0]:
            self.context.forward(record.with_key_value(new[0], Change(new[1], old[1])))
            return
        if old is not None:
            self.context.forward(record.with_key_value(old[0], Change(None, old[1])))
        if new is not None:
            self.context.forward(record.with_key_value(new[0], Change(new[1], None)))


class TableAggregateProcessor(StoreProcessor):
    """Aggregates re-grouped table rows with an adder and a subtractor (Kafka's
    KTableAggregate): an update subtracts the row's old value, then adds the new one."""

    def __init__(self, store: str, initializer: Callable[[], Any],
                 adder: Callable[[Any, Any, Any], Any],
                 subtractor: Callable[[Any, Any, Any], Any]) -> None:
        super().__init__(store)
        self._initializer = initializer
        self._adder = adder
        self._subtractor = subtractor

    def process(self, record: Record) -> None:
        if record.key is None:
            return
        change: Change = record.value
        found = self._store.get_with_timestamp(record.key)
        old_agg, timestamp = (None, record.timestamp) if found is None else (
            found[0], max(found[1], record.timestamp))
        agg = old_agg
        if change.old is not None and agg is not None:
            agg = self._subtractor(record.key, change.old, agg)
        if change.new is not None:
            agg = self._adder(record.key, change.new,
                              self._initializer() if agg is None else agg)
        self._store.put(record.key, agg, timestamp)
        self.context.forward(Record(record.key, Change(agg, old_agg), timestamp, record.headers,
                                    record.topic, record.partition, record.offset))

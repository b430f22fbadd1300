"""Joins. Built: stream-table (inner, left). Designed, for a later session:

- **Stream-stream windowed** (`Stream.join(other, joiner, JoinWindows)`, inner/left/
  outer): both sides co-partitioned (repartitioned if their keys changed); each side
  writes its records into a window store with `retain_duplicates` (`Stores.window`,
  sequence-numbered keys as Kafka's `KSTREAM-JOINTHIS-/JOINOTHER-` stores) and probes
  the other side's store for `[t - before, t + after]`. Left/outer results without a
  match are held in a shared "outer" store and emitted once the join window plus grace
  has passed in stream time (Kafka 3.1+ semantics, no eager null results).
- **Table-table** (inner/left/outer): both tables materialized in the same task
  (co-partitioned); a change on either side looks up the other's store and forwards
  `Change(joined new, joined old)`; needs `TableFlags.send_old_values` upstream.
- **Foreign-key table-table** (KIP-213): the left side sends subscription records
  (`<name>-subscription-registration-topic`, keyed by the foreign key, carrying a hash
  of the left value) to the right table's partition; the right side answers on
  `<name>-subscription-response-topic` keyed by the left key; the left drops answers
  whose hash no longer matches its current value. Stores: the subscription store on the
  right (`<name>-subscription-store`), keyed `[fk length: 4][fk][pk]` as Kafka does.
- **Global tables** (`StreamsBuilder.global_table`): every instance reads all
  partitions of the topic into a store of its own (no changelog: the topic is the
  changelog), restored before any task starts; a stream-global-table join maps each
  record to the table key with a `key_selector` and needs no co-partitioning.
- **Versioned tables** (KIP-889) for temporal stream-table joins: a versioned key-value
  store keeping each key's history for a retention, looked up `as of` the stream
  record's timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strom.streams.processor import Processor
from strom.streams.record import Record


class StreamTableJoinProcessor(Processor):
    """Each stream record meets the table's current value of its key (Kafka's
    KStreamKTableJoin): records with a None key are dropped; a None value too (inner)."""

    def __init__(self, store: str, joiner: Callable[[Any, Any], Any], left: bool) -> None:
        self._store_name = store
        self._joiner = joiner
        self._left = left

    def init(self, context: Any) -> None:
        super().init(context)
        self._store = context.get_state_store(self._store_name)

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            return
        other = self._store.get(record.key)
        if other is None and not self._left:
            return
        self.context.forward(record.with_value(self._joiner(record.value, other)))

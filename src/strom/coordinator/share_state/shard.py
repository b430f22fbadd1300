"""The share coordinator's shard: share-partition states folded from one partition of
`__share_group_state` (Kafka's ShareCoordinatorShard).

`replay` is the only code that turns records into state, at load and after a write:
a ShareSnapshot replaces a share-partition's state, a ShareUpdate is laid over it (its
batches win where they overlap, batches below a new start offset drop away), a
tombstone removes it. The operations are the inter-broker share-state APIs, as pure
functions of the state returning a `CoordinatorResult`:

- `initialize` (InitializeShareGroupState): a snapshot with the new state epoch and
  start offset, nothing in flight; an older state epoch is FENCED_STATE_EPOCH.
- `write` (WriteShareGroupState, the partition leader's acknowledgements): an update,
  or a fresh snapshot once `snapshot_every` updates follow the last one (Kafka's
  `share.coordinator.snapshot.update.records.per.snapshot`), so a load replays little;
  an older state epoch is FENCED_STATE_EPOCH, an older leader epoch
  FENCED_LEADER_EPOCH (a deposed leader cannot overwrite its successor's state).
- `read` (ReadShareGroupState, a new leader loading the share-partition) and `summary`
  (ReadShareGroupStateSummary, DescribeShareGroupOffsets); `read` with a newer leader
  epoch records it, fencing the previous leader's writes.
- `delete` (DeleteShareGroupState): a tombstone.

Housekeeping, as Kafka's shard: `snapshot_cold` writes a fresh snapshot of every
share-partition whose latest record is an update (an idle share-partition would
otherwise keep its old snapshot and updates needed forever), and `prunable_offset`
is the lowest offset still needed — the oldest of the share-partitions' latest
snapshots — below which the host deletes the partition's records. The fold learns a
record's offset from `cursor`, which the loader and the host's appends set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from kio.schema.errors import ErrorCode

from strom.coordinator.runtime import CoordinatorResult
from strom.coordinator.share_state.records import (
    NO_COUNT,
    SNAPSHOT,
    UPDATE,
    ShareKey,
    ShareRecord,
    ShareSnapshot,
    ShareUpdate,
    StateBatch,
)

Result = CoordinatorResult[Any, ShareRecord]


@dataclass(frozen=True, slots=True)
class ShareState:
    """What `read` answers: a share-partition's durable state."""

    state_epoch: int
    leader_epoch: int
    start_offset: int
    batches: tuple[StateBatch, ...]
    delivery_complete_count: int = NO_COUNT


def merge(old: Iterable[StateBatch], new: Iterable[StateBatch], start: int
          ) -> tuple[StateBatch, ...]:
    """Lay ``new`` over ``old`` (new wins per offset), drop what lies below ``start``,
    join neighbours with one state and count (Kafka's PersisterStateBatchCombiner)."""
    fresh = sorted(new, key=lambda b: b.first_offset)
    pieces: list[StateBatch] = list(fresh)
    for batch in old:
        pieces += _uncovered(batch, fresh)
    out: list[StateBatch] = []
    for batch in sorted(pieces, key=lambda b: b.first_offset):
        if batch.last_offset < start:
            continue
        if batch.first_offset < start:
            batch = replace(batch, first_offset=start)
        last = out[-1] if out else None
        if (last is not None and last.last_offset + 1 == batch.first_offset
                and (last.delivery_state, last.delivery_count)
                == (batch.delivery_state, batch.delivery_count)):
            out[-1] = replace(last, last_offset=batch.last_offset)
        else:
            out.append(batch)
    return tuple(out)


def _uncovered(batch: StateBatch, cover: list[StateBatch]) -> list[StateBatch]:
    """The parts of ``batch`` no batch of ``cover`` (sorted) overlaps."""
    parts: list[StateBatch] = []
    first = batch.first_offset
    for c in cover:
        if c.last_offset < first or c.first_offset > batch.last_offset:
            continue
        if c.first_offset > first:
            parts.append(replace(batch, first_offset=first, last_offset=c.first_offset - 1))
        first = max(first, c.last_offset + 1)
    if first <= batch.last_offset:
        parts.append(replace(batch, first_offset=first))
    return parts


@dataclass
class _Entry:
    snapshot: ShareSnapshot
    updates: int = 0  # ShareUpdate records since the snapshot
    offset: int = -1  # where the latest snapshot lies in the log (-1: unknown)


class ShareCoordinatorShard:
    """The share-partition states of one `__share_group_state` partition."""

    def __init__(self, clock: Callable[[], int], snapshot_every: int = 500) -> None:
        self.clock = clock
        self.snapshot_every = snapshot_every
        self.states: dict[ShareKey, _Entry] = {}
        # the offset the next replayed record has in the log (-1: unknown); set before
        # a load's record or an append's first record, moved on by each replay
        self.cursor = -1

    # --- the fold ---------------------------------------------------------------------

    def replay(self, record: ShareRecord) -> None:
        offset = self.cursor
        if self.cursor >= 0:
            self.cursor += 1
        if record.value is None:
            self.states.pop(record.key, None)
        elif isinstance(record.value, ShareSnapshot):
            self.states[record.key] = _Entry(record.value, offset=offset)
        else:
            entry = self.states.get(record.key)
            if entry is not None:  # an update without its snapshot (pruned): nothing to apply
                entry.snapshot = _applied(entry.snapshot, record.value)
                entry.updates += 1

    def on_unloaded(self) -> Result:
        return CoordinatorResult()  # no request ever waits in this shard

    def abandon(self, token: int) -> None:
        """No `Pending` answers here: nothing to abandon."""

    # --- operations -------------------------------------------------------------------

    def initialize(self, key: ShareKey, state_epoch: int, start_offset: int) -> Result:
        entry = self.states.get(key)
        if entry is not None and state_epoch < entry.snapshot.state_epoch:
            return CoordinatorResult(response=ErrorCode.fenced_state_epoch)
        now = self.clock()
        epoch = 0 if entry is None else entry.snapshot.snapshot_epoch + 1
        leader = -1 if entry is None else entry.snapshot.leader_epoch
        snapshot = ShareSnapshot(epoch, state_epoch, leader, start_offset, now, now, ())
        return CoordinatorResult((ShareRecord(SNAPSHOT, key, snapshot),), ErrorCode.none)

    def _fencing(self, entry: _Entry | None, state_epoch: int, leader_epoch: int
                 ) -> ErrorCode:
        if entry is None:
            return ErrorCode.none
        if state_epoch < entry.snapshot.state_epoch:
            return ErrorCode.fenced_state_epoch
        if leader_epoch != -1 and leader_epoch < entry.snapshot.leader_epoch:
            return ErrorCode.fenced_leader_epoch
        return ErrorCode.none

    def write(self, key: ShareKey, state_epoch: int, leader_epoch: int, start_offset: int,
              batches: tuple[StateBatch, ...], delivery_complete_count: int = NO_COUNT
              ) -> Result:
        entry = self.states.get(key)
        error = self._fencing(entry, state_epoch, leader_epoch)
        if error != ErrorCode.none:
            return CoordinatorResult(response=error)
        now = self.clock()
        if entry is None or entry.updates + 1 >= self.snapshot_every \
                or state_epoch > entry.snapshot.state_epoch:
            base = ShareSnapshot(-1, state_epoch, leader_epoch, start_offset, now, now, ()) \
                if entry is None else entry.snapshot
            update = ShareUpdate(base.snapshot_epoch, leader_epoch, start_offset, batches,
                                 delivery_complete_count)
            folded = _applied(base, update)
            snapshot = replace(folded, snapshot_epoch=base.snapshot_epoch + 1,
                               state_epoch=state_epoch, write_timestamp=now,
                               create_timestamp=base.create_timestamp)
            return CoordinatorResult((ShareRecord(SNAPSHOT, key, snapshot),), ErrorCode.none)
        update = ShareUpdate(entry.snapshot.snapshot_epoch, leader_epoch, start_offset,
                             batches, delivery_complete_count)
        return CoordinatorResult((ShareRecord(UPDATE, key, update),), ErrorCode.none)

    def read(self, key: ShareKey, leader_epoch: int) -> Result:
        """The state (None: never initialized); a newer leader epoch is recorded."""
        entry = self.states.get(key)
        if entry is None:
            return CoordinatorResult(response=(ErrorCode.none, None))
        snap = entry.snapshot
        if leader_epoch != -1 and leader_epoch < snap.leader_epoch:
            return CoordinatorResult(response=(ErrorCode.fenced_leader_epoch, None))
        state = ShareState(snap.state_epoch, max(leader_epoch, snap.leader_epoch),
                           snap.start_offset, snap.batches, snap.delivery_complete_count)
        if leader_epoch <= snap.leader_epoch:
            return CoordinatorResult(response=(ErrorCode.none, state))
        update = ShareUpdate(snap.snapshot_epoch, leader_epoch, -1, ())
        return CoordinatorResult((ShareRecord(UPDATE, key, update),), (ErrorCode.none, state))

    def summary(self, key: ShareKey) -> ShareState | None:
        entry = self.states.get(key)
        if entry is None:
            return None
        snap = entry.snapshot
        return ShareState(snap.state_epoch, snap.leader_epoch, snap.start_offset, (),
                          snap.delivery_complete_count)

    def snapshot_cold(self) -> Result:
        """A fresh snapshot of each share-partition whose latest record is an update
        (Kafka's cold-partition snapshots), so its older records stop being needed."""
        now = self.clock()
        records = tuple(
            ShareRecord(SNAPSHOT, key, replace(
                entry.snapshot, snapshot_epoch=entry.snapshot.snapshot_epoch + 1,
                write_timestamp=now))
            for key, entry in self.states.items() if entry.updates > 0)
        return CoordinatorResult(records, None)

    def prunable_offset(self, high_watermark: int) -> int | None:
        """The offset below which no record is needed, or None (nothing to prune).

        The oldest latest-snapshot offset; None when no share-partition is held, when
        one's snapshot offset is unknown, or when one's latest snapshot is not below
        the high watermark yet: if it were lost with its leader, the share-partition
        would again need its previous snapshot, which pruning would have removed.
        """
        if not self.states:
            return None
        offsets = [entry.offset for entry in self.states.values()]
        if min(offsets) < 0 or max(offsets) >= high_watermark:
            return None
        return min(offsets)

    def delete(self, key: ShareKey) -> Result:
        if key not in self.states:
            return CoordinatorResult(response=ErrorCode.none)
        return CoordinatorResult((ShareRecord(SNAPSHOT, key, None),), ErrorCode.none)


def _applied(snapshot: ShareSnapshot, update: ShareUpdate) -> ShareSnapshot:
    """A snapshot with an update laid over it."""
    start = snapshot.start_offset if update.start_offset == -1 else update.start_offset
    leader = snapshot.leader_epoch if update.leader_epoch == -1 else update.leader_epoch
    count = snapshot.delivery_complete_count if update.delivery_complete_count == NO_COUNT \
        else update.delivery_complete_count
    return replace(snapshot, start_offset=start, leader_epoch=leader,
                   batches=merge(snapshot.batches, update.batches, start),
                   delivery_complete_count=count)

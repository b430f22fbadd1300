"""One share-partition: a share group's view of one topic partition (KIP-932).

Kafka keeps this on the partition's leader (`SharePartition`). Records from the share
partition start offset (SPSO) up to the share partition end offset (SPEO, the first
offset never acquired) are in flight, each in one state:

    AVAILABLE    may be handed to a consumer (again)
    ACQUIRED     handed to one member, locked until its acquisition lock expires
    ACKNOWLEDGED accepted by the consumer: done
    ARCHIVED     rejected, a gap, or delivered `delivery_limit` times: done

A fetch acquires AVAILABLE records (oldest first) and then new ones past the SPEO, each
delivery counting one; an acknowledgement by the member holding the lock accepts,
releases or rejects them; a lock that expires releases them. A released record that has
been delivered `delivery_limit` times is archived instead, so no record is delivered
more often than that. The SPSO moves past every leading ACKNOWLEDGED/ARCHIVED record,
and the window SPSO..SPEO never exceeds `max_in_flight` records (Kafka's
`group.share.partition.max.record.locks`).

Plain data and a clock: no sockets, no futures, so the rules are tested directly.
State is kept per offset; Kafka keeps batches, an optimisation the rules do not need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

from kio.schema.errors import ErrorCode


class RecordState(IntEnum):
    """Kafka's RecordState ids, the ones ShareSnapshot/ShareUpdate records store."""

    AVAILABLE = 0
    ACQUIRED = 1
    ACKNOWLEDGED = 2
    ARCHIVED = 4


class AckType(IntEnum):
    """The acknowledge types of ShareFetch/ShareAcknowledge batches."""

    GAP = 0
    ACCEPT = 1
    RELEASE = 2
    REJECT = 3
    RENEW = 4


_FINAL = (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED)


@dataclass(slots=True)
class InFlight:
    """One in-flight record: its state, deliveries so far, and the lock if acquired."""

    state: RecordState
    delivery_count: int = 0
    member_id: str | None = None
    lock_deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class Acquired:
    """A run of acquired offsets with one delivery count (ShareFetch AcquiredRecords)."""

    first_offset: int
    last_offset: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class StateBatch:
    """Offsets with one state and delivery count: the durable form (ShareSnapshot)."""

    first_offset: int
    last_offset: int
    delivery_state: int
    delivery_count: int


class SharePartition:
    """The in-flight records of one share group on one topic partition."""

    def __init__(self, start_offset: int, clock: Callable[[], int], *, lock_ms: int = 30_000,
                 delivery_limit: int = 5, max_in_flight: int = 2000) -> None:
        self.start_offset = start_offset  # SPSO
        self.end_offset = start_offset  # SPEO: the next offset never acquired
        self.clock = clock
        self.lock_ms = lock_ms
        self.delivery_limit = delivery_limit
        self.max_in_flight = max_in_flight
        self.records: dict[int, InFlight] = {}
        self.state_epoch = 0
        self.renew_enabled = True  # the group's share.renew.acknowledge.enable
        self.leader_epoch = 0  # of the topic partition when this state was loaded

    # --- reads --------------------------------------------------------------------------

    def next_fetch_offset(self) -> int:
        """Where a fetch reads from: the first AVAILABLE record, else the SPEO."""
        self.expire_locks()
        for offset in range(self.start_offset, self.end_offset):
            entry = self.records.get(offset)
            if entry is not None and entry.state == RecordState.AVAILABLE:
                return offset
        return self.end_offset

    def counts(self) -> dict[RecordState, int]:
        """In-flight records by state (what `strom group describe` shows)."""
        out = {state: 0 for state in RecordState}
        for entry in self.records.values():
            out[entry.state] += 1
        return out

    def acquired_by(self, member_id: str) -> list[int]:
        return sorted(o for o, e in self.records.items()
                      if e.state == RecordState.ACQUIRED and e.member_id == member_id)

    # --- acquisition --------------------------------------------------------------------

    def acquire(self, member_id: str, upto: int, max_records: int) -> list[Acquired]:
        """Acquire up to ``max_records`` records below ``upto`` (the end of the batches
        read, at most the high watermark) for ``member_id``: AVAILABLE ones first, then
        new ones, within the in-flight window."""
        self.expire_locks()
        taken: list[tuple[int, int]] = []
        limit = self.start_offset + self.max_in_flight
        offset = self.start_offset
        while offset < min(upto, limit) and len(taken) < max_records:
            entry = self.records.get(offset)
            if entry is None:  # past the SPEO: a record never delivered
                entry = self.records[offset] = InFlight(RecordState.AVAILABLE)
                self.end_offset = max(self.end_offset, offset + 1)
            if entry is not None and entry.state == RecordState.AVAILABLE:
                self._lock(entry, member_id)
                taken.append((offset, entry.delivery_count))
            offset += 1
        return _runs(taken)

    def _lock(self, entry: InFlight, member_id: str) -> None:
        entry.state = RecordState.ACQUIRED
        entry.delivery_count += 1
        entry.member_id = member_id
        entry.lock_deadline_ms = self.clock() + self.lock_ms

    def archive(self, offsets: Iterable[int], upto: int) -> None:
        """Archive offsets below ``upto`` no consumer may see (read_committed: aborted
        transactions and markers) unless they are already in flight."""
        for offset in sorted(o for o in offsets if self.start_offset <= o < upto):
            for gap in range(self.end_offset, offset):  # never delivered, still to come
                self.records[gap] = InFlight(RecordState.AVAILABLE)
            entry = self.records.get(offset)
            if entry is None or (entry.state == RecordState.AVAILABLE
                                 and entry.delivery_count == 0):
                self.records[offset] = InFlight(RecordState.ARCHIVED)
            self.end_offset = max(self.end_offset, offset + 1)
        self._advance_start()

    # --- acknowledgement ----------------------------------------------------------------

    def acknowledge(self, member_id: str, batches: Iterable[tuple[int, int, tuple[int, ...]]]
                    ) -> ErrorCode:
        """Apply (first, last, types) batches of one member; all or nothing.

        INVALID_RECORD_STATE if any offset is not acquired by ``member_id`` (a lock that
        expired, another member's record) or a RENEW comes while the group's
        `share.renew.acknowledge.enable` is false; INVALID_REQUEST for malformed batches."""
        self.expire_locks()
        plan: list[tuple[int, AckType]] = []
        for first, last, types in batches:
            if last < first or not types or (len(types) != 1 and len(types) != last - first + 1):
                return ErrorCode.invalid_request
            for i, offset in enumerate(range(first, last + 1)):
                kind = types[0] if len(types) == 1 else types[i]
                if kind not in AckType._value2member_map_:
                    return ErrorCode.invalid_request
                plan.append((offset, AckType(kind)))
        if not self.renew_enabled and any(kind == AckType.RENEW for _, kind in plan):
            return ErrorCode.invalid_record_state  # as Kafka 4.4 refuses a disabled renew
        for offset, _ in plan:
            entry = self.records.get(offset)
            if entry is None or entry.state != RecordState.ACQUIRED or entry.member_id != member_id:
                return ErrorCode.invalid_record_state
        for offset, kind in plan:
            self._apply(self.records[offset], kind)
        self._advance_start()
        return ErrorCode.none

    def _apply(self, entry: InFlight, kind: AckType) -> None:
        if kind == AckType.RENEW:
            entry.lock_deadline_ms = self.clock() + self.lock_ms
        elif kind == AckType.ACCEPT:
            self._settle(entry, RecordState.ACKNOWLEDGED)
        elif kind == AckType.RELEASE:
            self._release(entry)
        else:  # REJECT, GAP
            self._settle(entry, RecordState.ARCHIVED)

    def _settle(self, entry: InFlight, state: RecordState) -> None:
        entry.state = state
        entry.member_id = None
        entry.lock_deadline_ms = 0

    def _release(self, entry: InFlight) -> None:
        """Back to AVAILABLE, or ARCHIVED once delivered `delivery_limit` times."""
        exhausted = entry.delivery_count >= self.delivery_limit
        self._settle(entry, RecordState.ARCHIVED if exhausted else RecordState.AVAILABLE)

    # --- locks, members -----------------------------------------------------------------

    def expire_locks(self) -> int:
        """Release every record whose acquisition lock has expired; how many."""
        now = self.clock()
        expired = [e for e in self.records.values()
                   if e.state == RecordState.ACQUIRED and e.lock_deadline_ms <= now]
        for entry in expired:
            self._release(entry)
        if expired:
            self._advance_start()
        return len(expired)

    def next_lock_deadline(self) -> int | None:
        deadlines = [e.lock_deadline_ms for e in self.records.values()
                     if e.state == RecordState.ACQUIRED]
        return min(deadlines, default=None)

    def release_member(self, member_id: str) -> int:
        """A member's share session closed: its acquired records are released now."""
        mine = [self.records[o] for o in self.acquired_by(member_id)]
        for entry in mine:
            self._release(entry)
        self._advance_start()
        return len(mine)

    def _advance_start(self) -> None:
        while self.start_offset < self.end_offset:
            entry = self.records.get(self.start_offset)
            if entry is not None and entry.state not in _FINAL:
                return
            self.records.pop(self.start_offset, None)
            self.start_offset += 1

    def move_start(self, offset: int) -> None:
        """The log start moved past the SPSO (retention, DeleteRecords) or an admin
        reset: records before ``offset`` leave the window."""
        for old in [o for o in self.records if o < offset]:
            del self.records[old]
        self.start_offset = offset
        self.end_offset = max(self.end_offset, offset)

    # --- durable form -------------------------------------------------------------------

    def state_batches(self) -> list[StateBatch]:
        """The window as Kafka's ShareSnapshot stores it: runs of one state and delivery
        count; an ACQUIRED record is stored AVAILABLE (its lock does not survive)."""
        rows: list[StateBatch] = []
        for offset in sorted(self.records):
            entry = self.records[offset]
            state = (RecordState.AVAILABLE if entry.state == RecordState.ACQUIRED
                     else entry.state)
            last = rows[-1] if rows else None
            if (last is not None and last.last_offset == offset - 1
                    and last.delivery_state == state and last.delivery_count == entry.delivery_count):
                rows[-1] = StateBatch(last.first_offset, offset, state, entry.delivery_count)
            else:
                rows.append(StateBatch(offset, offset, state, entry.delivery_count))
        return rows

    def restore(self, start_offset: int, batches: Iterable[StateBatch]) -> None:
        """Rebuild from a durable snapshot (after a restart or a leader change)."""
        self.records.clear()
        self.start_offset = self.end_offset = start_offset
        for batch in batches:
            for offset in range(max(batch.first_offset, start_offset), batch.last_offset + 1):
                state = RecordState(batch.delivery_state)
                if state == RecordState.ACQUIRED:
                    state = RecordState.AVAILABLE
                self.records[offset] = InFlight(state, batch.delivery_count)
                self.end_offset = max(self.end_offset, offset + 1)
        for offset in range(start_offset, self.end_offset):  # between batches: never delivered
            self.records.setdefault(offset, InFlight(RecordState.AVAILABLE))
        self._advance_start()


def _runs(taken: list[tuple[int, int]]) -> list[Acquired]:
    """Contiguous offsets with one delivery count, as AcquiredRecords entries."""
    runs: list[Acquired] = []
    for offset, count in taken:
        last = runs[-1] if runs else None
        if last is not None and last.last_offset == offset - 1 and last.delivery_count == count:
            runs[-1] = Acquired(last.first_offset, offset, count)
        else:
            runs.append(Acquired(offset, offset, count))
    return runs

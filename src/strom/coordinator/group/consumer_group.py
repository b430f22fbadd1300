"""Consumer groups of the new rebalance protocol (KIP-848): state, fold and heartbeat.

The group has an *epoch* that moves whenever its membership, subscriptions or the
subscribed topics change; the *target assignment* is computed by a server-side assignor
for an epoch (the assignment epoch); each member converges to its target one heartbeat
at a time, with its own *member epoch*. Reconciliation is incremental: a member first
gives up (revokes) what it should no longer own, keeping its epoch, and only when it has
confirmed that (its heartbeat's owned partitions no longer hold them) does it move to
the target epoch; a partition is handed to its new owner only once no other member holds
it (assigned or pending revocation), so no partition is consumed twice.

State changes only through `replay` of `records_848` records. An operation emits each
record through `_emit`, which collects it for the runtime to append and replays it at
once, so later steps of the same heartbeat see the new state; the runtime replays it
again after the append, which changes nothing because every record carries the whole
state of what it describes. Timers (session and rebalance timeouts) are the only live
state outside the fold.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from kio.schema.errors import ErrorCode

from strom.coordinator.group import assignors
from strom.coordinator.group import records_848 as r848
from strom.coordinator.group.consumer_protocol import (
    encode_assignment,
    read_assignment,
    read_subscription,
)
from strom.coordinator.group.model import Group, GroupState, JoinResult, SyncResult
from strom.coordinator.runtime import CoordinatorResult, Timer

log = logging.getLogger(__name__)
Assignment = dict[uuid.UUID, frozenset[int]]
TopicsView = Callable[[], Mapping[str, tuple[uuid.UUID, int]]]  # name -> (id, partitions)
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2


class MemberState(IntEnum):
    """Kafka's MemberState values, as CurrentMemberAssignment stores them."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127  # a state a newer Kafka wrote: reconciled afresh on the next heartbeat

    @classmethod
    def of(cls, value: int) -> MemberState:
        return cls(value) if value in cls._value2member_map_ else cls.UNKNOWN


@dataclass(frozen=True)
class ConsumerConfig:
    session_timeout_ms: int = 45_000  # group.consumer.session.timeout.ms
    heartbeat_interval_ms: int = 5_000  # group.consumer.heartbeat.interval.ms
    max_size: int = 2**31 - 1  # group.consumer.max.size
    assignors: tuple[str, ...] = ("uniform", "range")  # group.consumer.assignors
    migration_policy: str = "bidirectional"  # group.consumer.migration.policy
    per_group: Callable[[str], tuple[int, int]] | None = field(default=None, compare=False)
    """A group's own session timeout and heartbeat interval (its group configs,
    `strom.config.group`), read on every use so a change applies to a live group."""

    def timeouts(self, group_id: str) -> tuple[int, int]:
        """(session timeout, heartbeat interval) in ms for this group."""
        if self.per_group is None:
            return self.session_timeout_ms, self.heartbeat_interval_ms
        return self.per_group(group_id)


@dataclass
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topics: tuple[str, ...] = ()
    subscribed_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    classic: r848.ClassicMetadata | None = None  # a classic-protocol member (mixed group)

    def metadata_value(self) -> r848.MemberMetadataValue:
        return r848.MemberMetadataValue(
            self.instance_id, self.rack_id, self.client_id, self.client_host,
            self.subscribed_topics, self.subscribed_regex, self.rebalance_timeout_ms,
            self.server_assignor, self.classic)


@dataclass
class ConsumerGroup:
    group_id: str
    epoch: int = 0
    metadata_hash: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    regexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each subscribed regex and the topics it matched when last resolved (records 16)."""

    @property
    def state(self) -> str:
        """As Kafka's ConsumerGroupState names it (DescribeGroups, ListGroups)."""
        if not self.members:
            return "Empty"
        if self.assignment_epoch < self.epoch:
            return "Assigning"
        if any(m.member_epoch != self.assignment_epoch or m.state != MemberState.STABLE
               for m in self.members.values()):
            return "Reconciling"
        return "Stable"

    def assignor(self, default: str) -> str:
        """The assignor most members asked for (Kafka's rule), else the default."""
        asked = [m.server_assignor for m in self.members.values() if m.server_assignor]
        return max(sorted(set(asked)), key=asked.count) if asked else default

    def owners(self) -> dict[tuple[uuid.UUID, int], str]:
        """Who holds each partition now (assigned or not yet revoked)."""
        held: dict[tuple[uuid.UUID, int], str] = {}
        for member in self.members.values():
            for assignment in (member.assigned, member.pending_revocation):
                for topic_id, parts in assignment.items():
                    for p in parts:
                        held[(topic_id, p)] = member.member_id
        return held


@dataclass
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topics: tuple[str, ...] | None = None
    subscribed_regex: str | None = None
    server_assignor: str | None = None
    owned: Assignment | None = None  # None: unchanged since the last heartbeat
    client_id: str = ""
    client_host: str = ""
    classic: r848.ClassicMetadata | None = None  # a classic member's JoinGroup


@dataclass
class HeartbeatResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None  # None: unchanged


Result = CoordinatorResult[HeartbeatResult, r848.ConsumerRecord]
Downgrade = Callable[[str, int, list["ConsumerMember"]], list[Any]]
"""Makes a classic group of these members at this epoch (the shard's): its records."""


def _subtract(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
              ) -> Assignment:
    out = {t: parts - b.get(t, frozenset()) for t, parts in a.items()}
    return {t: parts for t, parts in out.items() if parts}


def _intersect(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
               ) -> Assignment:
    out = {t: parts & b.get(t, frozenset()) for t, parts in a.items()}
    return {t: parts for t, parts in out.items() if parts}


def _union(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
           ) -> Assignment:
    out = dict(a)
    for t, parts in b.items():
        out[t] = out.get(t, frozenset()) | parts
    return {t: parts for t, parts in out.items() if parts}


def _covers(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]) -> bool:
    """Every partition of ``b`` is in ``a``."""
    return not _subtract(b, a)


class ConsumerGroups:
    """The consumer groups of one `__consumer_offsets` partition."""

    def __init__(self, config: ConsumerConfig, timer: Timer, topics: TopicsView,
                 mint_member_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.config = config
        self.timer = timer
        self.topics = topics
        self.mint_member_id = mint_member_id
        self.groups: dict[str, ConsumerGroup] = {}
        self._out: list[r848.ConsumerRecord] = []
        self.heartbeats = 0  # ConsumerGroupHeartbeats handled (metrics: their rate)
        self.downgrade: Downgrade | None = None  # set by the shard: mixed groups go back
        self.rebalances = 0  # group epoch bumps made here (metrics; not counted on replay)

    # --- the fold ---------------------------------------------------------------------

    def replay(self, record: r848.ConsumerRecord) -> None:
        group = self.groups.get(record.group)
        if group is None:
            if record.value is None:
                return
            group = self.groups[record.group] = ConsumerGroup(record.group)
        value = record.value
        if record.type == r848.GROUP_METADATA:
            if value is None:
                del self.groups[record.group]
                return
            assert isinstance(value, r848.GroupMetadataValue)
            group.epoch, group.metadata_hash = value.epoch, value.metadata_hash
        elif record.type == r848.TARGET_METADATA:
            assert isinstance(value, r848.TargetMetadataValue | None)
            group.assignment_epoch = 0 if value is None else value.assignment_epoch
        elif record.type == r848.TARGET_MEMBER:
            self._replay_target(group, record)
        elif record.type in (r848.MEMBER_METADATA, r848.CURRENT_ASSIGNMENT):
            self._replay_member(group, record)
        elif record.type == r848.REGEX:
            if value is None:
                group.regexes.pop(record.member or "", None)
            else:
                assert isinstance(value, r848.RegexValue)
                group.regexes[record.member or ""] = value.topics

    def _replay_target(self, group: ConsumerGroup, record: r848.ConsumerRecord) -> None:
        member_id = record.member or ""
        if record.value is None:
            group.target.pop(member_id, None)
        else:
            assert isinstance(record.value, r848.TargetMemberValue)
            group.target[member_id] = dict(record.value.partitions)

    def _replay_member(self, group: ConsumerGroup, record: r848.ConsumerRecord) -> None:
        member_id = record.member or ""
        value = record.value
        if value is None:
            if record.type == r848.MEMBER_METADATA:
                group.members.pop(member_id, None)
            elif member_id in group.members:  # assignment gone: back to epoch 0
                group.members[member_id].assigned = {}
                group.members[member_id].pending_revocation = {}
            return
        member = group.members.setdefault(member_id, ConsumerMember(member_id))
        if isinstance(value, r848.MemberMetadataValue):
            member.instance_id, member.rack_id = value.instance_id, value.rack_id
            member.client_id, member.client_host = value.client_id, value.client_host
            member.subscribed_topics = value.subscribed_topics
            member.subscribed_regex = value.subscribed_regex
            member.rebalance_timeout_ms = value.rebalance_timeout_ms
            member.server_assignor = value.server_assignor
            member.classic = value.classic
        elif isinstance(value, r848.CurrentAssignmentValue):
            member.member_epoch = value.member_epoch
            member.previous_member_epoch = value.previous_member_epoch
            member.state = MemberState.of(value.state)
            member.assigned = dict(value.assigned)
            member.pending_revocation = dict(value.pending_revocation)

    def on_loaded(self) -> None:
        for group in self.groups.values():
            for member in group.members.values():
                self._schedule_session(group.group_id, member.member_id)

    # --- operations -------------------------------------------------------------------

    def _emit(self, record: r848.ConsumerRecord) -> None:
        self._out.append(record)
        self.replay(record)

    def _result(self, response: HeartbeatResult) -> Result:
        out, self._out = tuple(self._out), []
        return CoordinatorResult(out, response)

    def heartbeat(self, req: HeartbeatRequest) -> Result:
        """ConsumerGroupHeartbeat: join (epoch 0), leave (-1, static -2) or heartbeat."""
        self._out = []  # nothing left over from an operation that raised
        self.heartbeats += 1
        error = self._validate(req)
        if error is not None:
            return self._result(error)
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_epoch != 0:  # Kafka 4.4's answers, leaving or not
                kind = "Group" if req.member_epoch < 0 else "Consumer group"
                return self._result(HeartbeatResult(
                    ErrorCode.group_id_not_found, f"{kind} {req.group_id} not found."))
            group = self.groups[req.group_id] = ConsumerGroup(req.group_id)
        if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self._leave(group, req)
        member = self._member_for(group, req)
        if isinstance(member, HeartbeatResult):
            if not group.members and group.epoch == 0:
                del self.groups[req.group_id]  # nothing was written for it
            return self._result(member)
        sent_epoch = member.member_epoch
        sent = dict(member.assigned)
        self._update_member(group, member, req)
        self._refresh_target(group)
        member = group.members[member.member_id]
        self._reconcile(group, member, req.owned)
        self._schedule_session(group.group_id, member.member_id)
        full = req.member_epoch == 0 or req.owned is not None
        changed = member.member_epoch != sent_epoch or member.assigned != sent
        return self._result(HeartbeatResult(
            member_id=member.member_id, member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.config.timeouts(group.group_id)[1],
            assignment=dict(member.assigned) if full or changed else None))

    def _validate(self, req: HeartbeatRequest) -> HeartbeatResult | None:
        if req.member_epoch == 0 and not req.subscribed_topics and not req.subscribed_regex:
            return HeartbeatResult(ErrorCode.invalid_request,
                                   "SubscribedTopicNames or SubscribedTopicRegex must be set "
                                   "in the first request.")
        if req.member_epoch == 0 and req.rebalance_timeout_ms <= 0:
            return HeartbeatResult(ErrorCode.invalid_request,
                                   "RebalanceTimeoutMs must be provided in first request.")
        if req.member_epoch != 0 and not req.member_id:
            return HeartbeatResult(ErrorCode.invalid_request, "MemberId can't be empty.")
        if req.subscribed_regex is not None and compile_regex(req.subscribed_regex) is None:
            return HeartbeatResult(ErrorCode.invalid_regular_expression,
                                   f"SubscribedTopicRegex {req.subscribed_regex} is invalid.")
        if req.server_assignor and req.server_assignor not in self.config.assignors:
            return HeartbeatResult(ErrorCode.unsupported_assignor,
                                   f"ServerAssignor {req.server_assignor} is not supported.")
        if req.member_epoch == STATIC_LEAVE_EPOCH and req.instance_id is None:
            return HeartbeatResult(ErrorCode.invalid_request,
                                   "InstanceId can't be null when MemberEpoch is -2.")
        return None

    def _member_for(self, group: ConsumerGroup, req: HeartbeatRequest
                    ) -> ConsumerMember | HeartbeatResult:
        """The member the request speaks for: new at epoch 0, else known and fenced by
        epoch (the previous epoch is accepted if its owned partitions still fit, as a
        lost response makes a member retry with it)."""
        if req.member_epoch == 0:
            return self._join(group, req)
        member = group.members.get(req.member_id)
        if member is None:
            return HeartbeatResult(ErrorCode.unknown_member_id,
                                   f"Member {req.member_id} is not a member of group "
                                   f"{req.group_id}.")
        if req.member_epoch == member.member_epoch:
            return member
        if (req.member_epoch == member.previous_member_epoch and req.owned is not None
                and _covers(member.assigned, req.owned)):
            return member
        return HeartbeatResult(ErrorCode.fenced_member_epoch,
                               f"The member epoch {req.member_epoch} of {req.member_id} does "
                               f"not match the expected {member.member_epoch}.")

    def _join(self, group: ConsumerGroup, req: HeartbeatRequest) -> ConsumerMember | HeartbeatResult:
        member_id = req.member_id or self.mint_member_id()
        existing = group.members.get(member_id)
        if existing is not None and existing.member_epoch != 0:
            # A member that rejoins (epoch 0) with its id starts over: its partitions go.
            self._remove(group, member_id)
            existing = None
        if req.instance_id is not None:
            taken = next((m for m in group.members.values()
                          if m.instance_id == req.instance_id and m.member_id != member_id), None)
            if taken is not None and taken.member_epoch != STATIC_LEAVE_EPOCH:
                return HeartbeatResult(ErrorCode.unreleased_instance_id,
                                       f"Static member {req.instance_id} is still in use.")
            if taken is not None:
                return self._replace_static(group, taken, member_id)
        if existing is None and len(group.members) >= self.config.max_size:
            return HeartbeatResult(ErrorCode.group_max_size_reached,
                                   f"The group {group.group_id} has reached its maximum size.")
        return existing or ConsumerMember(member_id)

    def _replace_static(self, group: ConsumerGroup, old: ConsumerMember, member_id: str
                        ) -> ConsumerMember:
        """A static member back within its session: the new id takes the old one's
        assignment and target, and the group epoch does not move."""
        self.timer.cancel(_session_key(group.group_id, old.member_id))
        target = group.target.get(old.member_id, {})
        new = _copy(old, member_id=member_id)  # before the tombstones empty ``old``
        self._drop_records(group.group_id, old.member_id)
        self._emit(r848.ConsumerRecord(r848.MEMBER_METADATA, group.group_id, member_id,
                                       new.metadata_value()))
        self._emit(r848.ConsumerRecord(r848.TARGET_MEMBER, group.group_id, member_id,
                                       r848.TargetMemberValue(target)))
        self._emit(_assignment_record(group.group_id, ConsumerMember(
            member_id, member_epoch=group.assignment_epoch, previous_member_epoch=0,
            assigned=new.assigned, pending_revocation=new.pending_revocation)))
        return group.members[member_id]

    def _update_member(self, group: ConsumerGroup, member: ConsumerMember,
                       req: HeartbeatRequest) -> None:
        """Record what the request changed about the member; a changed subscription
        (or a new member) moves the group epoch, so a new target is computed."""
        updated = ConsumerMember(
            member.member_id,
            instance_id=req.instance_id if req.instance_id is not None else member.instance_id,
            rack_id=req.rack_id if req.rack_id is not None else member.rack_id,
            client_id=req.client_id or member.client_id,
            client_host=req.client_host or member.client_host,
            subscribed_topics=(tuple(sorted(req.subscribed_topics))
                               if req.subscribed_topics is not None else member.subscribed_topics),
            subscribed_regex=(req.subscribed_regex if req.subscribed_regex is not None
                              else member.subscribed_regex),
            rebalance_timeout_ms=(req.rebalance_timeout_ms if req.rebalance_timeout_ms > 0
                                  else member.rebalance_timeout_ms),
            server_assignor=(req.server_assignor if req.server_assignor is not None
                             else member.server_assignor),
            classic=req.classic if req.classic is not None else member.classic)
        known = group.members.get(member.member_id)
        if known is None or updated.metadata_value() != known.metadata_value():
            self._emit(r848.ConsumerRecord(r848.MEMBER_METADATA, group.group_id,
                                           member.member_id, updated.metadata_value()))
            if known is None or (updated.subscribed_topics, updated.subscribed_regex) != (
                    known.subscribed_topics, known.subscribed_regex):
                self._bump(group)

    def _bump(self, group: ConsumerGroup) -> None:
        self._resolve_regexes(group)  # the new epoch's subscriptions, regexes resolved
        self.rebalances += 1
        self._emit(r848.ConsumerRecord(r848.GROUP_METADATA, group.group_id, None,
                                       r848.GroupMetadataValue(group.epoch + 1,
                                                               self._hash(group))))

    def _subscribed(self, group: ConsumerGroup) -> dict[str, tuple[uuid.UUID, int]]:
        topics = self.topics()
        names = {t for m in group.members.values() for t in subscribed_topics(group, m, topics)}
        return {n: topics[n] for n in sorted(names)}

    def _resolve_regexes(self, group: ConsumerGroup) -> None:
        """Record what each subscribed regex matches now (a record 16 when that changed)
        and drop the regexes no member subscribes to any more (a tombstone)."""
        wanted = {m.subscribed_regex for m in group.members.values() if m.subscribed_regex}
        topics = self.topics()
        for regex in sorted(wanted):
            matched = tuple(regex_topics(regex, topics))
            if group.regexes.get(regex) != matched:
                self._emit(r848.ConsumerRecord(r848.REGEX, group.group_id, regex,
                                               r848.RegexValue(matched, 0,
                                                               int(time.time() * 1000))))
        for regex in sorted(set(group.regexes) - wanted):
            self._emit(r848.ConsumerRecord(r848.REGEX, group.group_id, regex, None))

    def _hash(self, group: ConsumerGroup) -> int:
        """Changes when a subscribed topic appears, goes or changes its partition count."""
        text = ";".join(f"{n}:{i}:{c}" for n, (i, c) in self._subscribed(group).items())
        return zlib.crc32(text.encode()) if text else 0

    def _refresh_target(self, group: ConsumerGroup) -> None:
        """New target assignment when the group epoch passed the assignment epoch."""
        self._resolve_regexes(group)
        if self._hash(group) != group.metadata_hash:
            self._bump(group)
        if group.assignment_epoch >= group.epoch:
            return
        subscribed = self._subscribed(group)
        subscriptions = {m.member_id: frozenset(subscribed[t][0] for t in
                                                subscribed_topics(group, m, subscribed))
                         for m in group.members.values()}
        counts = {topic_id: n for topic_id, n in subscribed.values()}
        assign = assignors.ASSIGNORS.get(group.assignor(assignors.DEFAULT), assignors.uniform)
        target = assign(subscriptions, counts, group.target)
        for member_id, partitions in target.items():
            if group.target.get(member_id) != partitions:
                self._emit(r848.ConsumerRecord(r848.TARGET_MEMBER, group.group_id, member_id,
                                               r848.TargetMemberValue(partitions)))
        self._emit(r848.ConsumerRecord(r848.TARGET_METADATA, group.group_id, None,
                                       r848.TargetMetadataValue(group.epoch)))

    def _reconcile(self, group: ConsumerGroup, member: ConsumerMember,
                   owned: Assignment | None) -> None:
        """One step of the member towards its target (Kafka's CurrentAssignmentBuilder)."""
        target = group.target.get(member.member_id, {})
        if member.state == MemberState.UNREVOKED_PARTITIONS:
            if owned is None or not _covers(member.assigned, owned) or _intersect(
                    owned, member.pending_revocation):
                return  # still holds what it must give up
            member = _copy(member, pending_revocation={})
        elif member.member_epoch == group.assignment_epoch and member.state == MemberState.STABLE:
            return
        keep = _intersect(member.assigned, target)
        revoke = _subtract(member.assigned, target)
        if revoke:
            step = _copy(member, assigned=keep, pending_revocation=revoke,
                         state=MemberState.UNREVOKED_PARTITIONS)
        else:
            held = group.owners()
            wanted = _subtract(target, keep)
            free = {t: frozenset(p for p in ps if held.get((t, p), member.member_id)
                                 == member.member_id) for t, ps in wanted.items()}
            assigned = _union(keep, free)
            state = (MemberState.STABLE if assigned == _union(target, {})
                     else MemberState.UNRELEASED_PARTITIONS)
            epoch = group.assignment_epoch
            step = _copy(member, assigned=assigned, pending_revocation={}, state=state,
                         member_epoch=epoch,
                         previous_member_epoch=(member.member_epoch
                                                if epoch != member.member_epoch
                                                else member.previous_member_epoch))
        if (step.member_epoch, step.previous_member_epoch, step.state, step.assigned,
                step.pending_revocation) != (
                group.members[member.member_id].member_epoch,
                group.members[member.member_id].previous_member_epoch,
                group.members[member.member_id].state,
                group.members[member.member_id].assigned,
                group.members[member.member_id].pending_revocation):
            self._emit(_assignment_record(group.group_id, step))
            if step.state == MemberState.UNREVOKED_PARTITIONS:
                self._schedule_rebalance(group.group_id, step)

    # --- leaving ----------------------------------------------------------------------

    def _leave(self, group: ConsumerGroup, req: HeartbeatRequest) -> Result:
        member = group.members.get(req.member_id)
        if member is None:
            return self._result(HeartbeatResult(
                ErrorCode.unknown_member_id,
                f"Member {req.member_id} is not a member of group {req.group_id}."))
        if req.member_epoch == STATIC_LEAVE_EPOCH:
            # A static member leaving for a while keeps its partitions for its return.
            self._emit(_assignment_record(group.group_id, _copy(
                member, member_epoch=STATIC_LEAVE_EPOCH)))
        else:
            epoch = group.epoch
            self._remove(group, member.member_id)
            self._refresh_target(group)
            self._maybe_downgrade(group, epoch)
        log.info("member %s left consumer group %s", req.member_id, req.group_id)
        return self._result(HeartbeatResult(member_id=req.member_id,
                                            member_epoch=req.member_epoch))

    def _remove(self, group: ConsumerGroup, member_id: str) -> None:
        self.timer.cancel(_session_key(group.group_id, member_id))
        self.timer.cancel(_rebalance_key(group.group_id, member_id))
        self._drop_records(group.group_id, member_id)
        self._bump(group)

    def _drop_records(self, group_id: str, member_id: str) -> None:
        for kind in (r848.CURRENT_ASSIGNMENT, r848.TARGET_MEMBER, r848.MEMBER_METADATA):
            self._emit(r848.ConsumerRecord(kind, group_id, member_id, None))

    def _fence(self, group_id: str, member_id: str, why: str) -> Result:
        self._out = []
        group = self.groups.get(group_id)
        if group is not None and member_id in group.members:
            log.info("consumer group %s: member %s removed (%s)", group_id, member_id, why)
            classic, epoch = group.members[member_id].classic is not None, group.epoch
            self._remove(group, member_id)
            self._refresh_target(group)
            if not classic:
                self._maybe_downgrade(group, epoch)
        return self._result(HeartbeatResult())

    def _schedule_session(self, group_id: str, member_id: str) -> None:
        member = self.groups.get(group_id, ConsumerGroup(group_id)).members.get(member_id)
        classic = member.classic if member is not None else None
        timeout_ms = (classic.session_timeout_ms if classic is not None
                      else self.config.timeouts(group_id)[0])
        self.timer.schedule(_session_key(group_id, member_id), timeout_ms / 1000,
                            lambda: self._fence(group_id, member_id, "session timeout"))

    def _schedule_rebalance(self, group_id: str, member: ConsumerMember) -> None:
        """A member that does not revoke within its rebalance timeout is removed."""
        epoch = member.member_epoch

        def expire() -> Result:
            current = self.groups.get(group_id, ConsumerGroup(group_id)).members.get(
                member.member_id)
            if (current is None or current.state != MemberState.UNREVOKED_PARTITIONS
                    or current.member_epoch != epoch):
                return self._result(HeartbeatResult())
            return self._fence(group_id, member.member_id, "rebalance timeout")

        self.timer.schedule(_rebalance_key(group_id, member.member_id),
                            max(member.rebalance_timeout_ms, 0) / 1000, expire)

    # --- mixed groups: classic members inside a consumer group ------------------------

    def upgrade(self, classic: Group) -> list[r848.ConsumerRecord] | None:
        """A classic group with members becomes a consumer group (a consumer-protocol
        member is joining it, as Kafka's online upgrade): each member keeps its
        generation as its epoch and its assignment as its target. None when the group
        is not one of consumers at rest (the joiner is refused)."""
        self._out = []
        protocol = classic.protocol_name
        if (self.config.migration_policy not in ("upgrade", "bidirectional")
                or classic.protocol_type != "consumer" or not protocol or not classic.members
                or not classic.is_(GroupState.STABLE)
                or len(classic.members) >= self.config.max_size):
            return None
        topics = self.topics()
        seeds = []
        for m in classic.members.values():
            sub = read_subscription(m.metadata_for(protocol))
            assigned = read_assignment(m.assignment)
            if sub is None or assigned is None:
                return None
            seeds.append(ConsumerMember(
                m.member_id, instance_id=m.group_instance_id, rack_id=sub.rack,
                client_id=m.client_id, client_host=m.client_host,
                subscribed_topics=tuple(sorted(sub.topics)),
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                member_epoch=classic.generation_id,
                previous_member_epoch=classic.generation_id - 1,
                assigned={topics[t][0]: ps for t, ps in assigned.items() if t in topics and ps},
                classic=r848.ClassicMetadata(m.session_timeout_ms, tuple(m.protocols))))
        self._seed(classic.group_id, classic.generation_id, seeds)
        log.info("classic group %s upgraded to a consumer group at epoch %d",
                 classic.group_id, classic.generation_id)
        out, self._out = list(self._out), []
        return out

    def _seed(self, group_id: str, epoch: int, members: list[ConsumerMember]) -> None:
        for member in members:
            self._emit(r848.ConsumerRecord(r848.MEMBER_METADATA, group_id, member.member_id,
                                           member.metadata_value()))
        group = self.groups[group_id]
        self._emit(r848.ConsumerRecord(r848.GROUP_METADATA, group_id, None,
                                       r848.GroupMetadataValue(epoch, self._hash(group))))
        for member in members:
            self._emit(r848.ConsumerRecord(r848.TARGET_MEMBER, group_id, member.member_id,
                                           r848.TargetMemberValue(member.assigned)))
        self._emit(r848.ConsumerRecord(r848.TARGET_METADATA, group_id, None,
                                       r848.TargetMetadataValue(epoch)))
        for member in members:
            self._emit(_assignment_record(group_id, member))
            self._schedule_session(group_id, member.member_id)

    def classic_join(self, req: Any) -> CoordinatorResult[JoinResult, Any]:
        """JoinGroup from a classic member of a consumer group (a `JoinRequest`): answered
        at once from the group, with the member's epoch as its generation; it reconciles
        like any member, the partitions its subscription says it owns standing for
        owned partitions (none said: it gave everything up before joining)."""
        self._out = []
        chosen = _first_readable(req.protocols) if req.protocol_type == "consumer" else None
        if chosen is None:
            return self._classic(JoinResult(ErrorCode.inconsistent_group_protocol,
                                            member_id=req.member_id))
        group = self.groups[req.group_id]
        member_id = req.member_id or f"{req.client_id}-{self.mint_member_id()}"
        if not req.member_id and req.require_known_member_id:
            return self._classic(JoinResult(ErrorCode.member_id_required, member_id=member_id))
        existing = group.members.get(member_id)
        if existing is not None and existing.classic is None:
            return self._classic(JoinResult(ErrorCode.unknown_member_id, member_id=member_id))
        if existing is None and len(group.members) >= self.config.max_size:
            return self._classic(JoinResult(ErrorCode.group_max_size_reached))
        name, sub = chosen
        topics = self.topics()
        owned = {topics[t][0]: ps for t, ps in (sub.owned or {}).items() if t in topics and ps}
        self._update_member(group, existing or ConsumerMember(member_id), HeartbeatRequest(
            req.group_id, member_id, existing.member_epoch if existing else 0,
            instance_id=req.group_instance_id, rack_id=sub.rack,
            rebalance_timeout_ms=req.rebalance_timeout_ms, subscribed_topics=sub.topics,
            client_id=req.client_id, client_host=req.client_host,
            classic=r848.ClassicMetadata(req.session_timeout_ms, tuple(req.protocols))))
        self._refresh_target(group)
        self._reconcile(group, group.members[member_id], owned)
        self._schedule_session(req.group_id, member_id)
        return self._classic(JoinResult(
            generation_id=group.members[member_id].member_epoch, protocol_type="consumer",
            protocol_name=name, leader="", member_id=member_id))

    def _classic(self, response: Any) -> CoordinatorResult[Any, Any]:
        out, self._out = tuple(self._out), []
        return CoordinatorResult(out, response)

    def _classic_member(self, group_id: str, generation: int, member_id: str
                        ) -> ConsumerMember | ErrorCode:
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is None or member.classic is None:
            return ErrorCode.unknown_member_id
        if generation != member.member_epoch:
            return ErrorCode.illegal_generation
        return member

    def classic_sync(self, group_id: str, generation: int, member_id: str
                     ) -> CoordinatorResult[SyncResult, Any]:
        """SyncGroup from a classic member: its current assignment, in Kafka's version 1
        of the consumer protocol's assignment."""
        self._out = []
        member = self._classic_member(group_id, generation, member_id)
        if isinstance(member, ErrorCode):
            return self._classic(SyncResult(member))
        self._schedule_session(group_id, member_id)
        names = {topic_id: name for name, (topic_id, _) in self.topics().items()}
        assigned = {names[t]: ps for t, ps in member.assigned.items() if t in names}
        chosen = _first_readable(list(member.classic.protocols if member.classic else ()))
        return self._classic(SyncResult(protocol_type="consumer",
                                        protocol_name=chosen[0] if chosen else None,
                                        assignment=encode_assignment(assigned)))

    def classic_heartbeat(self, group_id: str, generation: int, member_id: str
                          ) -> CoordinatorResult[ErrorCode, Any]:
        """Heartbeat from a classic member: REBALANCE_IN_PROGRESS while it has something
        to give up or to take (it rejoins to do so), as Kafka tells it."""
        self._out = []
        member = self._classic_member(group_id, generation, member_id)
        if isinstance(member, ErrorCode):
            return self._classic(member)
        self._schedule_session(group_id, member_id)
        group = self.groups[group_id]
        self._refresh_target(group)
        member = group.members[member_id]
        settled = (member.state == MemberState.STABLE
                   and member.member_epoch == group.assignment_epoch)
        return self._classic(ErrorCode.none if settled else ErrorCode.rebalance_in_progress)

    def classic_leave(self, group_id: str, member_ids: list[str]
                      ) -> CoordinatorResult[tuple[ErrorCode, list[ErrorCode]], Any]:
        """LeaveGroup of classic members of a consumer group."""
        self._out = []
        group = self.groups[group_id]
        results = []
        for member_id in member_ids:
            member = group.members.get(member_id)
            if member is None or member.classic is None:
                results.append(ErrorCode.unknown_member_id)
                continue
            self._remove(group, member_id)
            results.append(ErrorCode.none)
        self._refresh_target(group)
        return self._classic((ErrorCode.none, results))

    def _maybe_downgrade(self, group: ConsumerGroup, epoch: int) -> None:
        """The last consumer-protocol member gone and classic ones left: the group goes
        back to the classic protocol (Kafka's bidirectional migration) at the epoch it
        had before that member left, whose rebalance the classic members join."""
        members = list(group.members.values())
        if (not members or self.downgrade is None
                or self.config.migration_policy not in ("downgrade", "bidirectional")
                or any(m.classic is None for m in members)
                or not set.intersection(*({n for n, _ in m.classic.protocols}
                                          for m in members if m.classic is not None))):
            return
        for member in members:
            self.timer.cancel(_session_key(group.group_id, member.member_id))
            self.timer.cancel(_rebalance_key(group.group_id, member.member_id))
            self._drop_records(group.group_id, member.member_id)
        for record in self.tombstones(group.group_id) or []:
            self._emit(record)
        self._out.extend(self.downgrade(group.group_id, epoch, members))
        log.info("consumer group %s downgraded to a classic group", group.group_id)

    def tombstones(self, group_id: str) -> list[r848.ConsumerRecord] | None:
        """What deletes the group: [] if there is none, None if it still has members."""
        group = self.groups.get(group_id)
        if group is None:
            return []
        if group.members:
            return None
        return [*(r848.ConsumerRecord(r848.REGEX, group_id, regex, None)
                  for regex in sorted(group.regexes)),
                r848.ConsumerRecord(r848.TARGET_METADATA, group_id, None, None),
                r848.ConsumerRecord(r848.GROUP_METADATA, group_id, None, None)]

    def listed(self, wanted: set[str]) -> list[ConsumerGroup]:
        """ListGroups: groups in one of the ``wanted`` states (lower case; empty: all)."""
        return [g for g in self.groups.values() if not wanted or g.state.lower() in wanted]

    # --- offsets ----------------------------------------------------------------------

    def fetch_error(self, group_id: str, member_id: str, member_epoch: int) -> ErrorCode:
        """OffsetFetch v9+ from a member of a consumer group: it must be one, at its
        current epoch (STALE_MEMBER_EPOCH otherwise, as Kafka); anyone else may fetch."""
        group = self.groups.get(group_id)
        if group is None or (member_epoch < 0 and not member_id):
            return ErrorCode.none
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        return ErrorCode.none if member_epoch == member.member_epoch else ErrorCode.stale_member_epoch

    def commit_error(self, group_id: str, member_id: str, member_epoch: int) -> ErrorCode | None:
        """OffsetCommit of a consumer group: None if this is not one; else the error
        (none when the member and its epoch are current). A commit without a member
        (an admin tool, epoch -1) is allowed as Kafka allows it on any group."""
        group = self.groups.get(group_id)
        if group is None:
            return None
        if member_epoch < 0 and not member_id:
            return ErrorCode.none
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if member_epoch != member.member_epoch:
            return (ErrorCode.stale_member_epoch if member_epoch < member.member_epoch
                    else ErrorCode.fenced_member_epoch)
        return ErrorCode.none


def _first_readable(protocols: list[tuple[str, bytes]]) -> tuple[str, Any] | None:
    """The first offered protocol whose metadata is a consumer subscription, and it."""
    for name, metadata in protocols:
        sub = read_subscription(metadata)
        if sub is not None:
            return name, sub
    return None


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str) -> re.Pattern[str] | None:
    """A subscription regex (Kafka uses RE2/J; its common syntax is Python's too)."""
    try:
        return re.compile(pattern)
    except re.error:
        return None


def regex_topics(pattern: str, topics: Mapping[str, object]) -> list[str]:
    """The topics a subscription regex matches in full, in name order (internal topics
    such as __consumer_offsets are left out)."""
    regex = compile_regex(pattern)
    if regex is None:
        return []
    return sorted(t for t in topics if not t.startswith("__") and regex.fullmatch(t))


def subscribed_topics(group: ConsumerGroup, member: ConsumerMember,
                      topics: Mapping[str, object]) -> list[str]:
    """Existing topics the member subscribes to: by name, or among what its regex
    matched when the group last resolved it (`ConsumerGroup.regexes`)."""
    names = [t for t in member.subscribed_topics if t in topics]
    if member.subscribed_regex:
        names += [t for t in group.regexes.get(member.subscribed_regex, ())
                  if t in topics and t not in names]
    return names


def _copy(member: ConsumerMember, **changes: Any) -> ConsumerMember:
    return replace(member, **changes)


def _assignment_record(group_id: str, member: ConsumerMember) -> r848.ConsumerRecord:
    return r848.ConsumerRecord(r848.CURRENT_ASSIGNMENT, group_id, member.member_id,
                               r848.CurrentAssignmentValue(
                                   member.member_epoch, member.previous_member_epoch,
                                   int(member.state), dict(member.assigned),
                                   dict(member.pending_revocation)))


def _session_key(group_id: str, member_id: str) -> str:
    return f"consumer-session/{group_id}/{member_id}"


def _rebalance_key(group_id: str, member_id: str) -> str:
    return f"consumer-rebalance/{group_id}/{member_id}"

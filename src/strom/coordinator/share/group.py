"""Share group membership (KIP-932): ShareGroupHeartbeat on the group's coordinator shard.

A share group has members and a target assignment but no revocation: many members may
consume one partition at once (the share-partition on its leader hands each record to
one of them), so a member simply takes whatever the assignor gives it in the current
group epoch. The rules follow Kafka 4.4's GroupMetadataManager for share groups:

- epoch 0 joins (subscribed topic names required), -1 leaves; any other epoch must be
  the member's current one (else FENCED_MEMBER_EPOCH) of a known member (else
  UNKNOWN_MEMBER_ID);
- a join, a leave, a subscription change or a change in the subscribed topics'
  partition counts bumps the group epoch and recomputes the target assignment with the
  `simple` assignor; a member's epoch becomes the group epoch and its new assignment is
  sent once;
- a member that does not heartbeat within `group.share.session.timeout.ms` is removed;
- a group is Empty without members, else Stable.

Every change is written as Kafka's share group records (`share.records`: member
metadata, group epoch, target assignment, current member assignment) and `replay`
folds them back, so a coordinator that loads the partition (after a restart or a move)
has the same groups, members and epochs; its members' session timers start at load.
An operation changes the live state and writes records describing the result, so
replaying what it just wrote changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from strom.coordinator.runtime import CoordinatorResult, Timer
from strom.coordinator.share import records as rec
from strom.coordinator.share.records import ShareRecord

log = logging.getLogger(__name__)
Assignment = dict[uuid.UUID, frozenset[int]]
TopicsView = Callable[[], Mapping[str, tuple[uuid.UUID, int]]]  # name -> (id, partitions)
JOIN_EPOCH = 0
LEAVE_EPOCH = -1


@dataclass(frozen=True, slots=True)
class ShareSettings:
    """The broker's `group.share.*` membership settings (Kafka 4.4 defaults)."""

    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    max_size: int = 200


@dataclass(frozen=True, slots=True)
class ShareHeartbeat:
    group_id: str
    member_id: str
    member_epoch: int
    rack_id: str | None = None
    subscribed_topics: tuple[str, ...] | None = None  # None: unchanged
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True, slots=True)
class ShareHeartbeatResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None  # None: unchanged


@dataclass
class ShareMember:
    member_id: str
    member_epoch: int = 0
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topics: tuple[str, ...] = ()
    assigned: Assignment = field(default_factory=dict)


@dataclass
class ShareGroup:
    group_id: str
    epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    topic_view: dict[str, tuple[uuid.UUID, int]] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "Stable" if self.members else "Empty"

    def subscribed(self) -> set[str]:
        return {t for m in self.members.values() for t in m.subscribed_topics}


def simple_assign(members: list[str], partitions: list[tuple[uuid.UUID, int]]
                  ) -> dict[str, Assignment]:
    """Kafka's `simple` share assignor, homogeneous case: with no more members than
    partitions each partition has one member (round robin); with more, every member
    gets one partition and partitions are shared."""
    out: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in members}
    if not members or not partitions:
        return {m: {} for m in members}
    if len(members) <= len(partitions):
        pairs = [(members[i % len(members)], tp) for i, tp in enumerate(partitions)]
    else:
        pairs = [(m, partitions[i % len(partitions)]) for i, m in enumerate(members)]
    for member, (topic_id, index) in pairs:
        out[member].setdefault(topic_id, set()).add(index)
    return {m: {t: frozenset(ps) for t, ps in a.items()} for m, a in out.items()}


Result = CoordinatorResult[ShareHeartbeatResult, ShareRecord]


class ShareGroups:
    """The share groups of one coordinator shard."""

    def __init__(self, timer: Timer, topics: TopicsView,
                 settings: ShareSettings | None = None) -> None:
        self.timer = timer
        self.topics = topics
        self.settings = settings or ShareSettings()
        self.groups: dict[str, ShareGroup] = {}
        self._out: list[ShareRecord] = []  # what the running operation writes
        # Told when a member leaves or times out, so the share-partitions led by this
        # broker release what it holds at once rather than when its locks expire.
        self.on_removed: Callable[[str, str], object] = lambda _group, _member: None

    def heartbeat(self, req: ShareHeartbeat) -> Result:
        self._out = []
        error = _validate(req)
        if error is not None:
            return Result(response=error)
        group = self.groups.get(req.group_id)
        if req.member_epoch == LEAVE_EPOCH:
            return self._result(self._leave(group, req.member_id))
        if req.member_epoch == JOIN_EPOCH:
            if group is None:
                group = self.groups[req.group_id] = ShareGroup(req.group_id)
            refused = self._join(group, req)
            if refused is not None:
                return Result(response=refused)
        else:
            refused = _check_member(group, req)
            if refused is not None:
                return Result(response=refused)
        assert group is not None
        return self._result(self._answer(group, req))

    def _result(self, response: ShareHeartbeatResult) -> Result:
        out, self._out = tuple(self._out), []
        return Result(out, response)

    def _join(self, group: ShareGroup, req: ShareHeartbeat) -> ShareHeartbeatResult | None:
        member = group.members.get(req.member_id)
        if member is None:
            if len(group.members) >= self.settings.max_size:
                return ShareHeartbeatResult(
                    ErrorCode.group_max_size_reached,
                    f"The share group has reached its maximum capacity of "
                    f"{self.settings.max_size} members.", member_epoch=-1)
            member = group.members[req.member_id] = ShareMember(req.member_id)
            log.info("share group %s: member %s joined", group.group_id, req.member_id)
        member.member_epoch = 0  # a rejoin is sent its assignment again
        return None

    def _answer(self, group: ShareGroup, req: ShareHeartbeat) -> ShareHeartbeatResult:
        member = group.members[req.member_id]
        before = _metadata(member)
        member.rack_id = req.rack_id
        member.client_id, member.client_host = req.client_id, req.client_host
        if req.subscribed_topics is not None:
            member.subscribed_topics = tuple(sorted(set(req.subscribed_topics)))
        if _metadata(member) != before or req.member_epoch == JOIN_EPOCH:
            self._out.append(rec.ShareRecord(rec.MEMBER_METADATA, group.group_id,
                                             member.member_id, _metadata(member)))
        self._refresh(group)
        self._schedule_session(group.group_id, member.member_id)
        assignment = None
        if member.member_epoch != group.epoch:
            previous, member.member_epoch = member.member_epoch, group.epoch
            assignment = dict(member.assigned)
            self._out.append(rec.ShareRecord(
                rec.CURRENT_ASSIGNMENT, group.group_id, member.member_id,
                rec.CurrentAssignmentValue(member.member_epoch, previous, assignment)))
        return ShareHeartbeatResult(member_id=member.member_id,
                                    member_epoch=member.member_epoch,
                                    heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
                                    assignment=assignment)

    def _refresh(self, group: ShareGroup) -> None:
        """Bump the epoch and reassign when members, subscriptions or topics changed."""
        view = self.topics()
        topic_view = {t: view[t] for t in group.subscribed() if t in view}
        members = sorted(group.members)
        target = {m: dict(group.members[m].assigned) for m in members}
        partitions = sorted((topic_view[t][0], p) for t in topic_view
                            for p in range(topic_view[t][1]))
        fresh = simple_assign(members, partitions)
        fresh = {m: _subscribed(a, group.members[m], topic_view) for m, a in fresh.items()}
        group.topic_view = topic_view
        if fresh == target and group.epoch > 0:
            return
        self._bump(group)
        group.assignment_epoch = group.epoch
        self._out.append(rec.ShareRecord(rec.TARGET_METADATA, group.group_id, None,
                                         rec.TargetMetadataValue(group.epoch)))
        for m, assignment in fresh.items():
            if assignment != target[m] or not assignment:
                self._out.append(rec.ShareRecord(rec.TARGET_MEMBER, group.group_id, m,
                                                 rec.TargetMemberValue(assignment)))
            group.members[m].assigned = assignment

    def _bump(self, group: ShareGroup) -> None:
        group.epoch += 1
        self._out.append(rec.ShareRecord(rec.GROUP_METADATA, group.group_id, None,
                                         rec.GroupMetadataValue(group.epoch)))

    def _leave(self, group: ShareGroup | None, member_id: str) -> ShareHeartbeatResult:
        if group is None or member_id not in group.members:
            return ShareHeartbeatResult(ErrorCode.unknown_member_id,
                                        f"Member {member_id} is not a member of the group.",
                                        member_epoch=-1)
        self._remove(group, member_id, "left")
        return ShareHeartbeatResult(member_id=member_id, member_epoch=LEAVE_EPOCH)

    def _remove(self, group: ShareGroup, member_id: str, why: str) -> None:
        log.info("share group %s: member %s removed (%s)", group.group_id, member_id, why)
        del group.members[member_id]
        self.on_removed(group.group_id, member_id)
        self.timer.cancel(_session_key(group.group_id, member_id))
        self._out += [rec.ShareRecord(kind, group.group_id, member_id, None) for kind in
                      (rec.CURRENT_ASSIGNMENT, rec.TARGET_MEMBER, rec.MEMBER_METADATA)]
        self._bump(group)
        self._refresh(group)

    def _schedule_session(self, group_id: str, member_id: str) -> None:
        def expire() -> CoordinatorResult[None, ShareRecord]:
            self._out = []
            group = self.groups.get(group_id)
            if group is not None and member_id in group.members:
                self._remove(group, member_id, "session timeout")
            out, self._out = tuple(self._out), []
            return CoordinatorResult(out, None)

        self.timer.schedule(_session_key(group_id, member_id),
                            self.settings.session_timeout_ms / 1000, expire)

    def delete(self, group_id: str) -> CoordinatorResult[ErrorCode, ShareRecord]:
        """DeleteGroups: only an empty share group goes (its target assignment and group
        metadata tombstoned, as Kafka)."""
        group = self.groups.get(group_id)
        if group is None:
            return CoordinatorResult(response=ErrorCode.group_id_not_found)
        if group.members:
            return CoordinatorResult(response=ErrorCode.non_empty_group)
        del self.groups[group_id]
        return CoordinatorResult((rec.ShareRecord(rec.TARGET_METADATA, group_id, None, None),
                                  rec.ShareRecord(rec.GROUP_METADATA, group_id, None, None)),
                                 ErrorCode.none)

    # --- the fold ---------------------------------------------------------------------------

    def replay(self, record: ShareRecord) -> None:
        """Apply one share group record (written just now or read at load)."""
        if record.type == rec.GROUP_METADATA and record.value is None:
            self.groups.pop(record.group, None)
            return
        group = self.groups.get(record.group)
        if group is None:
            if record.value is None or record.type == rec.STATE_PARTITION_METADATA:
                return
            group = self.groups[record.group] = ShareGroup(record.group)
        _apply(group, record)

    def on_loaded(self) -> None:
        """After a load: every member must heartbeat within its session timeout."""
        for group in self.groups.values():
            for member_id in group.members:
                self._schedule_session(group.group_id, member_id)

    def listed(self, states: set[str]) -> list[ShareGroup]:
        return [g for g in self.groups.values() if not states or g.state.lower() in states]


def _metadata(member: ShareMember) -> rec.MemberMetadataValue:
    return rec.MemberMetadataValue(member.rack_id, member.client_id, member.client_host,
                                   member.subscribed_topics)


def _apply(group: ShareGroup, record: ShareRecord) -> None:
    value = record.value
    if isinstance(value, rec.GroupMetadataValue):
        group.epoch = value.epoch
    elif isinstance(value, rec.TargetMetadataValue):
        group.assignment_epoch = value.assignment_epoch
    elif record.member is not None:
        _apply_member(group, record.member, value)


def _apply_member(group: ShareGroup, member_id: str, value: rec.Value | None) -> None:
    if value is None:  # a member's records are tombstoned together: it left
        group.members.pop(member_id, None)
        return
    member = group.members.setdefault(member_id, ShareMember(member_id))
    if isinstance(value, rec.MemberMetadataValue):
        member.rack_id, member.client_id = value.rack_id, value.client_id
        member.client_host = value.client_host
        member.subscribed_topics = value.subscribed_topics
    elif isinstance(value, rec.TargetMemberValue):
        member.assigned = dict(value.partitions)
    elif isinstance(value, rec.CurrentAssignmentValue):
        member.member_epoch = value.member_epoch
        member.assigned = dict(value.assigned)


def _subscribed(assignment: Assignment, member: ShareMember,
                view: Mapping[str, tuple[uuid.UUID, int]]) -> Assignment:
    """Only partitions of topics this member subscribes to (heterogeneous groups)."""
    mine = {view[t][0] for t in member.subscribed_topics if t in view}
    return {t: ps for t, ps in assignment.items() if t in mine}


def _validate(req: ShareHeartbeat) -> ShareHeartbeatResult | None:
    def invalid(message: str) -> ShareHeartbeatResult:
        return ShareHeartbeatResult(ErrorCode.invalid_request, message, member_epoch=-1)

    if not req.group_id:
        return invalid("GroupId can't be empty.")
    if not req.member_id:
        return invalid("MemberId can't be empty.")
    if req.member_epoch < LEAVE_EPOCH:
        return invalid("MemberEpoch is invalid.")
    if req.member_epoch == JOIN_EPOCH and not req.subscribed_topics:
        return invalid("SubscribedTopicNames must be set in first request.")
    return None


def _check_member(group: ShareGroup | None, req: ShareHeartbeat) -> ShareHeartbeatResult | None:
    member = None if group is None else group.members.get(req.member_id)
    if member is None:
        return ShareHeartbeatResult(ErrorCode.unknown_member_id,
                                    f"Member {req.member_id} is not a member of the group.",
                                    member_epoch=-1)
    if member.member_epoch != req.member_epoch:
        return ShareHeartbeatResult(
            ErrorCode.fenced_member_epoch,
            f"The share group member has a smaller member epoch ({req.member_epoch}) "
            f"than the one known by the group coordinator ({member.member_epoch}). "
            "The member must abandon all its partitions and rejoin.", member_epoch=-1)
    return None


def _session_key(group_id: str, member_id: str) -> str:
    return f"share-session-{group_id}-{member_id}"

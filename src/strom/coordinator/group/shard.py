"""One `__consumer_offsets` partition's groups and offsets (Kafka's GroupCoordinatorShard).

The shard's state is a fold of its partition: `replay(record)` is the one function that
applies a record, used by the loader for every record in the log and by the runtime for
every record an operation has just appended. Operations (`join`, `commit`, ...) are
synchronous and return a `CoordinatorResult`; they never wait and hold no futures.

Offsets change only through replay. A classic group's membership changes live, as the
protocol runs, and the group's metadata record is written from that live state; its
replay therefore merges: it sets what the record holds (generation, protocol, leader,
members and their assignments) and keeps what only a live group has (waiting requests,
every protocol a member offered, a rebalance in progress). Replaying a record the shard
just wrote changes nothing; replaying the log rebuilds each group as of its last
record, Stable if it has members and Empty otherwise, as Kafka loads classic groups.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from kio.schema.errors import ErrorCode

from strom.coordinator.group import codec, records, records_848
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.consumer_group import (
    ConsumerGroups,
    ConsumerMember,
    HeartbeatRequest,
    HeartbeatResult,
    TopicsView,
)
from strom.coordinator.group.consumer_protocol import encode_assignment
from strom.coordinator.group.membership import JoinRequest, Membership, new_member_id
from strom.coordinator.group.model import (
    CommittedOffset,
    Group,
    GroupState,
    JoinResult,
    Member,
    SyncResult,
)
from strom.coordinator.group.offsets import CommitResponse, OffsetCommit, Offsets
from strom.coordinator.runtime import CoordinatorResult, Effects, Timer
from strom.coordinator.share.group import ShareGroups
from strom.coordinator.share.records import ShareRecord

log = logging.getLogger(__name__)
S = GroupState
TopicPartition = tuple[str, int]
Result = CoordinatorResult


class GroupCoordinatorShard:
    """Groups and offsets of one partition: replay, operations and reads."""

    def __init__(self, partition: int, config: GroupConfig, timer: Timer, clock: Callable[[], int],
                 partition_exists: Callable[[str, int], bool], tokens: Iterator[int],
                 mint_member_id: Callable[[str], str] = new_member_id,
                 topics: TopicsView = dict) -> None:
        self.partition = partition
        self.config = config
        self.clock = clock
        self.groups: dict[str, Group] = {}
        self.membership = Membership(config, timer, clock, self.groups, tokens, mint_member_id)
        self.offsets = Offsets(config, clock, partition_exists, self.groups, self.membership)
        self.consumer = ConsumerGroups(config.consumer, timer, topics)  # KIP-848 groups
        self.consumer.downgrade = self._downgrade  # mixed groups back to classic
        self.share = ShareGroups(timer, topics)  # KIP-932 share groups

    # --- the fold ---------------------------------------------------------------------

    def replay(self, record: records.Record) -> None:
        if isinstance(record, records_848.ConsumerRecord):
            self.consumer.replay(record)
        elif isinstance(record, ShareRecord):
            self.share.replay(record)
        elif isinstance(record, records.OffsetRecord):
            if record.producer_id >= 0:
                self._replay_pending(record)
            else:
                self._replay_offset(record.key, record.value)
        elif isinstance(record, records.TxnMarker):
            self._replay_marker(record)
        else:
            self._replay_group(record.key.group, record.value)

    def _replay_pending(self, record: records.OffsetRecord) -> None:
        """A transactional offset: held for its producer until the marker."""
        held = self.offsets.pending.setdefault(record.producer_id, {})
        key = record.key
        held[(key.group, (key.topic, key.partition))] = record.value

    def _replay_marker(self, marker: records.TxnMarker) -> None:
        """COMMIT: the producer's held offsets become committed offsets; ABORT: dropped."""
        held = self.offsets.pending.pop(marker.producer_id, {})
        if not marker.committed:
            return
        for (group_id, (topic, partition)), value in held.items():
            self._replay_offset(codec.OffsetKey(group_id, topic, partition), value)

    def _replay_offset(self, key: codec.OffsetKey, value: codec.OffsetValue | None) -> None:
        tp = (key.topic, key.partition)
        group = self.groups.get(key.group)
        if value is None:
            if group is not None:
                group.offsets.pop(tp, None)
            return
        if group is None:  # a "simple" group: offsets without membership, as Kafka
            group = self.groups[key.group] = Group(key.group, state_timestamp=self.clock())
        group.offsets[tp] = CommittedOffset(value.offset, value.leader_epoch, value.metadata,
                                            value.commit_timestamp)

    def _replay_group(self, group_id: str, value: codec.GroupValue | None) -> None:
        group = self.groups.get(group_id)
        if value is None:
            if group is None:
                return
            group.transition(S.DEAD, self.clock())
            del self.groups[group_id]
            if group.offsets:  # offsets outlive their group's metadata, as in Kafka
                self.groups[group_id] = Group(group_id, offsets=group.offsets,
                                              state_timestamp=self.clock())
            return
        if group is None:
            group = self.groups[group_id] = Group(group_id, state_timestamp=self.clock())
        _apply_metadata(group, value)

    def on_loaded(self) -> None:
        """After the load: drop groups nothing was ever written for, and start every
        member's session timer (a member that does not heartbeat leaves)."""
        for group_id in [g for g, group in self.groups.items() if group.is_vacant()]:
            del self.groups[group_id]
        for group in self.groups.values():
            for member in group.members.values():
                self.membership.schedule_expiry(group, member)
        self.consumer.on_loaded()
        self.share.on_loaded()

    def on_unloaded(self) -> Result[None, records.Record]:
        out: Effects[records.Record] = Effects()
        self.membership.fail_waiters(ErrorCode.not_coordinator, out)
        return out.result(None)

    def abandon(self, token: int) -> None:
        self.membership.abandon(token)

    # --- membership -------------------------------------------------------------------

    def join(self, req: JoinRequest) -> Result[JoinResult, records.Record]:
        if not (self.config.min_session_timeout_ms <= req.session_timeout_ms
                <= self.config.max_session_timeout_ms):
            return Result(response=JoinResult(ErrorCode.invalid_session_timeout, member_id=req.member_id))
        if req.group_id in self.share.groups:  # a share group is no classic group
            return Result(response=JoinResult(ErrorCode.group_id_not_found,
                                              member_id=req.member_id))
        # An empty consumer group becomes a classic one (as Kafka converts it); one with
        # members refuses classic joiners.
        consumer = self.consumer.tombstones(req.group_id)
        if consumer is None:  # a consumer group with members: it answers classic members
            return self.consumer.classic_join(req)
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_id:
                return Result(response=JoinResult(ErrorCode.unknown_member_id, member_id=req.member_id))
            group = self.groups[req.group_id] = Group(req.group_id, state_timestamp=self.clock())
        for record in consumer:
            self.replay(record)
        done = self.membership.join(group, req)
        return replace(done, records=(*consumer, *done.records)) if consumer else done

    def sync(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
             protocol_type: str | None, protocol_name: str | None, assignments: dict[str, bytes]
             ) -> Result[SyncResult, records.Record]:
        if self._mixed(group_id):
            return self.consumer.classic_sync(group_id, generation_id, member_id)
        group = self.groups.get(group_id)
        if group is None:
            return Result(response=SyncResult(ErrorCode.unknown_member_id))
        return self.membership.sync(group, generation_id, member_id, instance_id, protocol_type,
                                    protocol_name, assignments)

    def heartbeat(self, group_id: str, generation_id: int, member_id: str,
                  instance_id: str | None) -> Result[ErrorCode, records.Record]:
        if self._mixed(group_id):
            return self.consumer.classic_heartbeat(group_id, generation_id, member_id)
        group = self.groups.get(group_id)
        if group is None:
            return Result(response=ErrorCode.unknown_member_id)
        return self.membership.heartbeat(group, generation_id, member_id, instance_id)

    def leave(self, group_id: str, members: list[tuple[str, str | None]]
              ) -> Result[tuple[ErrorCode, list[ErrorCode]], records.Record]:
        if self._mixed(group_id):
            return self.consumer.classic_leave(group_id, [m for m, _ in members])
        group = self.groups.get(group_id)
        if group is None:
            unknown = ErrorCode.unknown_member_id
            return Result(response=(unknown, [unknown] * len(members)))
        out: Effects[records.Record] = Effects()
        results = [self.membership.leave(group, mid, iid, out) for mid, iid in members]
        return out.result((ErrorCode.none, results))

    def consumer_heartbeat(self, req: HeartbeatRequest) -> Result[HeartbeatResult, records.Record]:
        """ConsumerGroupHeartbeat; a classic group of that id is not a consumer group."""
        classic = self.groups.get(req.group_id)
        if classic is not None and classic.members and req.group_id not in self.share.groups:
            return self._upgrade(classic, req)
        if (classic is not None and classic.members) or req.group_id in self.share.groups:
            return Result(response=HeartbeatResult(
                ErrorCode.group_id_not_found, f"Group {req.group_id} is not a consumer group."))
        done = self.consumer.heartbeat(req)
        joined = (isinstance(done.response, HeartbeatResult)
                  and done.response.error == ErrorCode.none)
        if classic is None or classic.protocol_type is None or not joined:
            return Result(done.records, done.response)
        # An empty classic group became this consumer group: its metadata goes, its
        # offsets stay (as Kafka converts it).
        tombstone = records.group_tombstone(req.group_id)
        self.replay(tombstone)
        return Result((*done.records, tombstone), done.response)

    # --- mixed groups (KIP-848 migration, group.consumer.migration.policy bidirectional) ---

    def _mixed(self, group_id: str) -> bool:
        """A consumer group with members: classic requests for it are its to answer."""
        group = self.consumer.groups.get(group_id)
        return group is not None and bool(group.members)

    def _upgrade(self, classic: Group, req: HeartbeatRequest
                 ) -> Result[HeartbeatResult, records.Record]:
        """A consumer-protocol member joins a classic group with members: the group
        becomes a consumer group keeping its members, then the member joins it."""
        upgraded = self.consumer.upgrade(classic) if req.member_epoch == 0 else None
        if upgraded is None:
            return Result(response=HeartbeatResult(
                ErrorCode.group_id_not_found, f"Group {req.group_id} is not a consumer group."))
        tombstone = records.group_tombstone(req.group_id)
        self.replay(tombstone)
        done = self.consumer.heartbeat(req)
        return Result((tombstone, *upgraded, *done.records), done.response)

    def _downgrade(self, group_id: str, epoch: int, members: list[ConsumerMember]
                   ) -> list[records.Record]:
        """The consumer group's classic members as a classic group at its epoch, which
        then rebalances (its members are told to rejoin, as Kafka does)."""
        names = {topic_id: name for name, (topic_id, _) in self.consumer.topics().items()}
        offered = [dict(m.classic.protocols) if m.classic else {} for m in members]
        protocol = next(n for n in offered[0] if all(n in o for o in offered))
        value = codec.GroupValue("consumer", epoch, protocol, members[0].member_id, self.clock(),
                                 tuple(codec.MemberValue(
                                     m.member_id, m.instance_id, m.client_id, m.client_host,
                                     m.rebalance_timeout_ms,
                                     m.classic.session_timeout_ms if m.classic else 0,
                                     o[protocol], encode_assignment(
                                         {names[t]: ps for t, ps in m.assigned.items()
                                          if t in names}))
                                     for m, o in zip(members, offered, strict=True)))
        record = records.GroupRecord(codec.GroupKey(group_id), value)
        self.replay(record)
        group = self.groups[group_id]
        out: Effects[records.Record] = Effects()
        for member, protocols in zip(members, offered, strict=True):
            live = group.members[member.member_id]
            live.protocols = list(protocols.items())
            self.membership.schedule_expiry(group, live)
        self.membership.prepare_rebalance(group, "its last consumer-protocol member left", out)
        return [record, *out.records]

    # --- offsets ----------------------------------------------------------------------

    def commit(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
               commits: list[OffsetCommit]) -> Result[CommitResponse, records.Record]:
        error = self.consumer.commit_error(group_id, member_id, generation_id)
        if error is None:
            return self.offsets.commit(group_id, generation_id, member_id, instance_id, commits)
        if error != ErrorCode.none:
            return Result(response=(error, {(c.topic, c.partition): error for c in commits}))
        # A consumer group's member and epoch are checked: the offsets are a simple group's.
        return self.offsets.commit(group_id, -1, "", None, commits)

    def txn_commit(self, group_id: str, producer: tuple[int, int], generation_id: int,
                   member_id: str, commits: list[OffsetCommit]
                   ) -> Result[CommitResponse, records.Record]:
        return self.offsets.txn_commit(group_id, producer, generation_id, member_id, commits)


    def delete_offsets(self, group_id: str, partitions: list[TopicPartition]
                       ) -> Result[CommitResponse, records.Record]:
        return self.offsets.delete(group_id, partitions)

    def expire_offsets(self) -> Result[int, records.Record]:
        """Kafka's expiry, except that a consumer group with members keeps its offsets
        (they live in a simple group, which is always empty to the classic rules)."""
        done = self.offsets.expire()
        active = {g for g, group in self.consumer.groups.items() if group.members}
        if not active:
            return done
        kept = tuple(r for r in done.records
                     if not (isinstance(r, records.OffsetRecord | records.GroupRecord)
                             and r.key.group in active))
        return Result(kept, sum(isinstance(r, records.OffsetRecord) for r in kept))

    def drop_topics(self, topics: set[str]) -> Result[int, records.Record]:
        return self.offsets.drop_topics(topics)

    def fetch(self, group_id: str, topics: list[tuple[str, list[int]]] | None
              ) -> dict[TopicPartition, CommittedOffset | None]:
        return self.offsets.fetch(group_id, topics)

    # --- administration ---------------------------------------------------------------

    def describe(self, group_id: str) -> Group | None:
        """DescribeGroups: classic groups only; a consumer group is not found here, as
        Kafka answers (ConsumerGroupDescribe describes it)."""
        group = self.groups.get(group_id)
        if group is None or group.is_(S.DEAD) or self._holds_offsets_only(group):
            return None
        return group

    def _holds_offsets_only(self, group: Group) -> bool:
        """The classic entry of a consumer group: only the holder of its offsets."""
        return (group.group_id in self.consumer.groups and group.protocol_type is None
                and not group.members)

    def list_groups(self, wanted: set[str]) -> Iterable[Group]:
        return [g for g in self.groups.values()
                if not g.is_(S.DEAD) and (not wanted or g.state.value.lower() in wanted)
                and not self._holds_offsets_only(g)]

    def delete_group(self, group_id: str) -> Result[ErrorCode, records.Record]:
        """DeleteGroups: an empty group's offsets and metadata, tombstoned together (a
        consumer group's: its target assignment and group metadata records)."""
        if group_id in self.share.groups:
            done = self.share.delete(group_id)
            return Result(done.records, done.response)
        consumer = self.consumer.tombstones(group_id)
        if consumer is None:
            return Result(response=ErrorCode.non_empty_group)
        group = self.groups.get(group_id)
        if (group is None or group.is_(S.DEAD)) and not consumer:
            return Result(response=ErrorCode.group_id_not_found)
        if group is not None and not group.is_(S.EMPTY, S.DEAD):
            return Result(response=ErrorCode.non_empty_group)
        tombstones: list[records.Record] = list(consumer)
        if group is not None and not group.is_(S.DEAD):
            tombstones += [*self.offsets.tombstones(group), records.group_tombstone(group_id)]

        def written(error: ErrorCode) -> Result[ErrorCode, records.Record]:
            if error == ErrorCode.none:
                log.info("deleted group %s", group_id)
            return Result(response=error)

        return Result(tuple(tombstones), ErrorCode.none, then=written)


def _apply_metadata(group: Group, value: codec.GroupValue) -> None:
    """Make the group what its metadata record says (see the module docstring)."""
    group.generation_id = value.generation
    group.protocol_type = value.protocol_type or None
    group.protocol_name = value.protocol
    protocol = value.protocol or ""
    members: dict[str, Member] = {}
    for m in value.members:
        member = group.members.get(m.member_id)
        if member is None:
            member = Member(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                            m.session_timeout, m.rebalance_timeout, value.protocol_type,
                            [(protocol, m.subscription)])
        elif (protocol, m.subscription) not in member.protocols:
            member.protocols = [(protocol, m.subscription)]
        member.group_instance_id = m.group_instance_id
        member.client_id, member.client_host = m.client_id, m.client_host
        member.session_timeout_ms = m.session_timeout
        # A v0 value has no rebalance timeout (-1); Kafka then uses the session timeout.
        member.rebalance_timeout_ms = (m.session_timeout if m.rebalance_timeout == -1
                                       else m.rebalance_timeout)
        member.assignment = m.assignment
        members[m.member_id] = member
    group.members = members
    group.static_members = {m.group_instance_id: m.member_id for m in members.values()
                            if m.group_instance_id is not None}
    group.leader_id = value.leader
    if group.is_(S.EMPTY, S.STABLE):  # at rest; a live rebalance keeps its own state
        group.state = S.STABLE if members else S.EMPTY
        group.state_timestamp = value.current_state_timestamp

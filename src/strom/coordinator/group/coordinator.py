"""The group coordinator: groups and committed offsets, as a fold over `__consumer_offsets`.

Each group belongs to one partition of `__consumer_offsets` (`partition_for`), and the
broker leading that partition is the group's coordinator. On becoming leader it
`load`s the partition: replaying its records rebuilds every group and offset. On losing
leadership it `unload`s them. Every change (a commit, a completed rebalance, a deletion)
is appended to the partition before it is acknowledged, so a new coordinator elsewhere
replays exactly what clients were told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from strom.coordinator.group import codec
from strom.coordinator.group.config import GroupConfig, OffsetsLog, Scheduler, partition_for
from strom.coordinator.group.loader import PartitionLoad
from strom.coordinator.group.membership import JoinRequest, Membership
from strom.coordinator.group.model import (
    CommittedOffset,
    Group,
    GroupState,
    JoinResult,
    Member,
    SyncResult,
)

log = logging.getLogger(__name__)
S = GroupState
TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


class GroupCoordinator:
    def __init__(
        self,
        offsets_log: OffsetsLog,
        config: GroupConfig,
        scheduler: Scheduler,
        clock: Callable[[], int],
        partition_exists: Callable[[str, int], bool],
    ) -> None:
        self.log = offsets_log
        self.config = config
        self.clock = clock
        self.partition_exists = partition_exists
        self.groups: dict[str, Group] = {}
        self.owned: set[int] = set()
        self.failed: dict[int, str] = {}  # partition -> why its load failed
        self.loading: set[int] = set()  # led here, not loaded yet (the host sets it)
        # (partition, reason) -> records skipped by loads: strom_coordinator_skipped_records
        self.skipped_records: dict[tuple[int, str], int] = {}
        self.membership = Membership(config, scheduler, clock, self._persist_group,
                                     self._durable)

    # --- ownership --------------------------------------------------------------------

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config.num_partitions)

    def ownership_error(self, group_id: str) -> str:
        """As Kafka's coordinator runtime: a partition led here but not loaded yet is
        COORDINATOR_LOAD_IN_PROGRESS (clients retry it); one not led here, or whose load
        failed, is NOT_COORDINATOR (clients look the coordinator up again)."""
        if not group_id:
            return "invalid_group_id"
        partition = self.partition_for(group_id)
        if partition in self.owned:
            return "none"
        if partition in self.loading:
            return "coordinator_load_in_progress"
        return "not_coordinator"

    def load(self, partition: int) -> bool:
        """Become coordinator for one partition: rebuild its groups from the log.

        Never raises. Records that cannot be decoded are skipped and counted (see
        `loader`); if the load fails anyway, the partition stays unowned and recorded in
        `failed`, so its groups answer NOT_COORDINATOR (Kafka's failed coordinator shard)
        while the rest of the broker serves. It is tried again when leadership moves.
        """
        self.failed.pop(partition, None)
        try:
            self._load(partition)
        except Exception as exc:
            log.exception("cannot load __consumer_offsets-%d: its groups answer NOT_COORDINATOR",
                          partition)
            self._drop_groups(partition, "not_coordinator")
            self.failed[partition] = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def _load(self, partition: int) -> None:
        state = PartitionLoad(partition)
        try:
            for entry in self.log.replay(partition):
                state.feed(entry)
        finally:
            state.finish()
            for reason, count in state.skipped.items():
                key = (partition, reason)
                self.skipped_records[key] = self.skipped_records.get(key, 0) + count
        built: dict[str, Group] = {}
        for group_id in set(state.offsets) | set(state.metadata):
            group = self._rebuild(group_id, state.metadata.get(group_id),
                                  state.offsets.get(group_id, {}))
            if group is not None:
                built[group_id] = group
        self.groups.update(built)
        for group in built.values():
            for member in group.members.values():
                self.membership.schedule_expiry(group, member)
        self.owned.add(partition)
        if state.records:
            log.info("loaded __consumer_offsets-%d: %d record(s), %d group(s)", partition,
                     state.records, len(built))

    def _rebuild(self, group_id: str, meta: codec.GroupValue | None,
                 offsets: dict[TopicPartition, CommittedOffset]) -> Group | None:
        if meta is None and not offsets:
            return None
        group = Group(group_id, offsets=offsets, state_timestamp=self.clock())
        if meta is None:
            return group
        group.generation_id = meta.generation
        group.protocol_type = meta.protocol_type or None
        group.protocol_name = meta.protocol
        group.leader_id = meta.leader
        group.state_timestamp = meta.current_state_timestamp
        for m in meta.members:
            member = Member(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                            m.session_timeout, m.rebalance_timeout, meta.protocol_type,
                            [(meta.protocol or "", m.subscription)], assignment=m.assignment)
            group.members[m.member_id] = member
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id
        if group.members:
            group.state = S.STABLE
        return group

    def _drop_groups(self, partition: int, reason: str) -> None:
        for group_id in [g for g in self.groups if self.partition_for(g) == partition]:
            self.membership.shutdown(self.groups.pop(group_id), reason)

    def unload(self, partition: int) -> None:
        self.owned.discard(partition)
        self.failed.pop(partition, None)
        self._drop_groups(partition, "not_coordinator")

    # --- membership -------------------------------------------------------------------

    def _session_timeout_error(self, session_timeout_ms: int) -> str | None:
        if not (self.config.min_session_timeout_ms <= session_timeout_ms
                <= self.config.max_session_timeout_ms):
            return "invalid_session_timeout"
        return None

    async def join(self, req: JoinRequest) -> JoinResult:
        error = self.ownership_error(req.group_id)
        if error == "none":
            error = self._session_timeout_error(req.session_timeout_ms) or "none"
        if error != "none":
            return JoinResult(error, member_id=req.member_id)
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_id:
                return JoinResult("unknown_member_id", member_id=req.member_id)
            group = Group(req.group_id, state_timestamp=self.clock())
            self.groups[req.group_id] = group
        return await self.membership.join(group, req)

    async def sync(self, group_id: str, generation_id: int, member_id: str,
                   instance_id: str | None, protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> SyncResult:
        error = self.ownership_error(group_id)
        if error != "none":
            return SyncResult(error)
        group = self.groups.get(group_id)
        if group is None:
            return SyncResult("unknown_member_id")
        return await self.membership.sync(group, generation_id, member_id, instance_id,
                                          protocol_type, protocol_name, assignments)

    def heartbeat(self, group_id: str, generation_id: int, member_id: str,
                  instance_id: str | None) -> str:
        error = self.ownership_error(group_id)
        if error != "none":
            return error
        group = self.groups.get(group_id)
        if group is None:
            return "unknown_member_id"
        return self.membership.heartbeat(group, generation_id, member_id, instance_id)

    def leave(self, group_id: str, members: list[tuple[str, str | None]]) -> tuple[str, list[str]]:
        error = self.ownership_error(group_id)
        if error != "none":
            return error, []
        group = self.groups.get(group_id)
        if group is None:
            return "unknown_member_id", ["unknown_member_id"] * len(members)
        return "none", [self.membership.leave(group, mid, iid) for mid, iid in members]

    # --- offsets ----------------------------------------------------------------------

    async def _durable(self, group: Group) -> str:
        return await self.log.wait_durable(self.partition_for(group.group_id))

    async def commit(self, group_id: str, generation_id: int, member_id: str,
                     instance_id: str | None, commits: list[OffsetCommit]
                     ) -> tuple[str, dict[TopicPartition, str]]:
        """Returns (group-level error, per-partition errors)."""
        error = self.ownership_error(group_id) or "none"
        group = self.groups.get(group_id)
        if error == "none":
            error = self._commit_permission(group, generation_id, member_id, instance_id)
        if error != "none":
            return error, {(c.topic, c.partition): error for c in commits}
        if group is None:
            group = Group(group_id, state_timestamp=self.clock())
            self.groups[group_id] = group
        elif member_id in group.members:
            self.membership.schedule_expiry(group, group.members[member_id])
        results: dict[TopicPartition, str] = {}
        records: list[tuple[bytes, bytes | None]] = []
        accepted: list[tuple[TopicPartition, CommittedOffset]] = []
        now = self.clock()
        for c in commits:
            tp = (c.topic, c.partition)
            metadata = c.metadata or ""
            # Kafka bounds String.length(): UTF-16 code units, not UTF-8 bytes.
            if len(metadata.encode("utf-16-le")) // 2 > self.config.offset_metadata_max_bytes:
                results[tp] = "offset_metadata_too_large"
            elif not self.partition_exists(c.topic, c.partition):
                results[tp] = "unknown_topic_or_partition"
            else:
                value = CommittedOffset(c.offset, c.leader_epoch, metadata, now)
                accepted.append((tp, value))
                records.append(_offset_record(group_id, tp, value))
        if records:
            partition = self.partition_for(group_id)
            append_error = self.log.append(partition, records)
            if append_error == "none":
                append_error = await self.log.wait_durable(partition)
            for tp, value in accepted:
                results[tp] = append_error
                if append_error == "none":
                    group.offsets[tp] = value
        return "none", results

    def _commit_permission(self, group: Group | None, generation_id: int, member_id: str,
                           instance_id: str | None) -> str:
        simple = generation_id < 0 and not member_id
        if group is None:
            return "none" if generation_id < 0 else "illegal_generation"
        if simple:
            return "none" if group.is_(S.EMPTY) else "unknown_member_id"
        if instance_id is not None and group.static_members.get(instance_id) not in (None, member_id):
            return "fenced_instance_id"
        if member_id not in group.members:
            return "unknown_member_id"
        if generation_id != group.generation_id:
            return "illegal_generation"
        if group.is_(S.COMPLETING_REBALANCE):
            return "rebalance_in_progress"
        return "none"

    def fetch(self, group_id: str, topics: list[tuple[str, list[int]]] | None
              ) -> tuple[str, dict[TopicPartition, CommittedOffset | None]]:
        error = self.ownership_error(group_id)
        if error != "none":
            return error, {}
        group = self.groups.get(group_id)
        committed = group.offsets if group else {}
        if topics is None:
            return "none", dict(committed)
        return "none", {(t, p): committed.get((t, p)) for t, ps in topics for p in ps}

    def delete_offsets(self, group_id: str, partitions: list[TopicPartition]
                       ) -> tuple[str, dict[TopicPartition, str]]:
        error = self.ownership_error(group_id)
        if error != "none":
            return error, {}
        group = self.groups.get(group_id)
        if group is None or group.is_(S.DEAD):
            return "group_id_not_found", {}
        if not group.is_(S.EMPTY) and group.protocol_type != "consumer":
            return "non_empty_group", {}
        subscribed = set() if group.is_(S.EMPTY) else group.subscribed_topics()
        results: dict[TopicPartition, str] = {}
        tombstones: list[tuple[bytes, bytes | None]] = []
        for tp in partitions:
            # Unreadable subscriptions: assume every topic is subscribed, as Kafka does.
            if subscribed is None or tp[0] in subscribed:
                results[tp] = "group_subscribed_to_topic"
            else:
                results[tp] = "none"
                if tp in group.offsets:
                    tombstones.append((codec.encode_offset_key(codec.OffsetKey(group_id, *tp)), None))
        if tombstones:
            append_error = self.log.append(self.partition_for(group_id), tombstones)
            if append_error != "none":
                return append_error, {}
        for tp, result in results.items():
            if result == "none":
                group.offsets.pop(tp, None)
        return "none", results

    # --- administration ---------------------------------------------------------------

    def describe(self, group_id: str) -> tuple[str, Group | None]:
        error = self.ownership_error(group_id)
        if error != "none":
            return error, None
        group = self.groups.get(group_id)
        if group is None or group.is_(S.DEAD):
            return "group_id_not_found", None
        return "none", group

    def list_groups(self, states: Iterable[str] = ()) -> list[Group]:
        wanted = {s.lower() for s in states}
        return [g for g in self.groups.values()
                if not g.is_(S.DEAD) and (not wanted or g.state.value.lower() in wanted)]

    def delete_group(self, group_id: str) -> str:
        error = self.ownership_error(group_id)
        if error != "none":
            return error
        group = self.groups.get(group_id)
        if group is None or group.is_(S.DEAD):
            return "group_id_not_found"
        if not group.is_(S.EMPTY):
            return "non_empty_group"
        tombstones: list[tuple[bytes, bytes | None]] = [
            (codec.encode_offset_key(codec.OffsetKey(group_id, *tp)), None) for tp in group.offsets
        ]
        tombstones.append((codec.encode_group_key(codec.GroupKey(group_id)), None))
        append_error = self.log.append(self.partition_for(group_id), tombstones)
        if append_error != "none":
            return append_error
        group.transition(S.DEAD, self.clock())
        del self.groups[group_id]
        log.info("deleted group %s", group_id)
        return "none"

    def expire_offsets(self) -> int:
        """Drop offsets of empty groups older than offsets.retention (Kafka 2.1+ rules)."""
        now = self.clock()
        retention = self.config.offsets_retention_ms
        expired = 0
        for group in list(self.groups.values()):
            if not group.is_(S.EMPTY):
                continue
            stale = [
                tp for tp, o in group.offsets.items()
                if max(o.commit_timestamp, group.state_timestamp if group.protocol_type else -1)
                + retention <= now
            ]
            if not stale:
                continue
            records: list[tuple[bytes, bytes | None]] = [
                (codec.encode_offset_key(codec.OffsetKey(group.group_id, *tp)), None) for tp in stale
            ]
            if len(stale) == len(group.offsets):
                records.append((codec.encode_group_key(codec.GroupKey(group.group_id)), None))
            if self.log.append(self.partition_for(group.group_id), records) != "none":
                continue
            for tp in stale:
                del group.offsets[tp]
            expired += len(stale)
            if not group.offsets:
                group.transition(S.DEAD, now)
                del self.groups[group.group_id]
        if expired:
            log.info("expired %d committed offset(s)", expired)
        return expired

    # --- persistence ------------------------------------------------------------------

    def _persist_group(self, group: Group) -> str:
        value = codec.GroupValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=group.protocol_name,
            leader=group.leader_id,
            current_state_timestamp=self.clock(),
            members=tuple(
                codec.MemberValue(
                    m.member_id, m.group_instance_id, m.client_id, m.client_host,
                    m.rebalance_timeout_ms, m.session_timeout_ms,
                    m.metadata_for(group.protocol_name or ""), m.assignment,
                )
                for m in group.members.values()
            ),
        )
        key = codec.encode_group_key(codec.GroupKey(group.group_id))
        return self.log.append(self.partition_for(group.group_id),
                               [(key, codec.encode_group_value(value))])


def _offset_record(group_id: str, tp: TopicPartition, value: CommittedOffset
                   ) -> tuple[bytes, bytes | None]:
    key = codec.encode_offset_key(codec.OffsetKey(group_id, tp[0], tp[1]))
    return key, codec.encode_offset_value(
        codec.OffsetValue(value.offset, value.leader_epoch, value.metadata, value.commit_timestamp)
    )

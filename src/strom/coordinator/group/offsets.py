"""Committed offsets of one shard's groups: commit, fetch, delete, expire.

Pure, as Kafka's OffsetMetadataManager: an operation checks the request against the
group, and returns the records to write (commits, tombstones) with the response. It
never changes `Group.offsets` itself: the records do, when the runtime replays them
(`GroupCoordinatorShard.replay`), exactly as they do at load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from strom.coordinator.group import codec, records
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.membership import Membership
from strom.coordinator.group.model import CommittedOffset, Group, GroupState
from strom.coordinator.runtime import CoordinatorResult, Effects

log = logging.getLogger(__name__)
S = GroupState
TopicPartition = tuple[str, int]
CommitResponse = tuple[ErrorCode, dict[TopicPartition, ErrorCode]]  # group error, per-partition errors


@dataclass(frozen=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


class Offsets:
    """The offset operations of one shard (its ``groups`` are the shard's)."""

    def __init__(self, config: GroupConfig, clock: Callable[[], int],
                 partition_exists: Callable[[str, int], bool], groups: dict[str, Group],
                 membership: Membership) -> None:
        self.config = config
        self.clock = clock
        self.partition_exists = partition_exists
        self.groups = groups
        self.membership = membership
        # TxnOffsetCommit: producer id -> (group, partition) -> offset, until the
        # transaction's marker reaches this partition (COMMIT writes them, ABORT drops them)
        self.pending: dict[int, dict[tuple[str, TopicPartition], codec.OffsetValue | None]] = {}

    def commit(self, group_id: str, generation_id: int, member_id: str,
               instance_id: str | None, commits: list[OffsetCommit]
               ) -> CoordinatorResult[CommitResponse, records.Record]:
        out: Effects[records.Record] = Effects()
        group = self.groups.get(group_id)
        error = _commit_permission(group, generation_id, member_id, instance_id)
        if error != ErrorCode.none:
            return out.result((error, {(c.topic, c.partition): error for c in commits}))
        if group is not None and member_id in group.members:
            self.membership.schedule_expiry(group, group.members[member_id])  # a commit is alive
        results: dict[TopicPartition, ErrorCode] = {}
        now = self.clock()
        for c in commits:
            tp = (c.topic, c.partition)
            results[tp] = self._refusal(c) or ErrorCode.none
            if results[tp] == ErrorCode.none:
                value = CommittedOffset(c.offset, c.leader_epoch, c.metadata or "", now)
                out.records.append(records.offset_commit(group_id, tp, value))
        if out.records:
            accepted = [tp for tp, result in results.items() if result == ErrorCode.none]
            out.then = lambda write_error: CoordinatorResult(
                response=(ErrorCode.none, {**results, **dict.fromkeys(accepted, write_error)}))
        return out.result((ErrorCode.none, results))

    def txn_commit(self, group_id: str, producer: tuple[int, int], generation_id: int,
                   member_id: str, commits: list[OffsetCommit]
                   ) -> CoordinatorResult[CommitResponse, records.Record]:
        """TxnOffsetCommit: the offsets are written in a transactional batch of the
        producer and held (`pending`, by replay) until its marker reaches this partition,
        invisible to OffsetFetch until a COMMIT (as Kafka writes and loads them)."""
        error = _txn_commit_permission(self.groups.get(group_id), generation_id, member_id)
        if error != ErrorCode.none:
            return CoordinatorResult(response=(error, {(c.topic, c.partition): error
                                                       for c in commits}))
        results: dict[TopicPartition, ErrorCode] = {}
        out: list[records.Record] = []
        now = self.clock()
        for c in commits:
            tp = (c.topic, c.partition)
            results[tp] = self._refusal(c) or ErrorCode.none
            if results[tp] == ErrorCode.none:
                value = CommittedOffset(c.offset, c.leader_epoch, c.metadata or "", now)
                out.append(records.offset_commit(group_id, tp, value, producer[0]))
        if not out:
            return CoordinatorResult(response=(ErrorCode.none, results))
        accepted = [tp for tp, result in results.items() if result == ErrorCode.none]

        def written(write_error: ErrorCode) -> CoordinatorResult[CommitResponse, records.Record]:
            return CoordinatorResult(
                response=(ErrorCode.none, {**results, **dict.fromkeys(accepted, write_error)}))
        return CoordinatorResult(tuple(out), (ErrorCode.none, results), then=written,
                                 producer=producer)

    def unstable(self, group_id: str) -> set[TopicPartition]:
        """Partitions of the group with transactional offsets not yet decided."""
        return {tp for held in self.pending.values() for (g, tp) in held if g == group_id}

    def _refusal(self, c: OffsetCommit) -> ErrorCode | None:
        # Kafka bounds String.length(): UTF-16 code units, not UTF-8 bytes.
        metadata = c.metadata or ""
        if len(metadata.encode("utf-16-le")) // 2 > self.config.offset_metadata_max_bytes:
            return ErrorCode.offset_metadata_too_large
        if not self.partition_exists(c.topic, c.partition):
            return ErrorCode.unknown_topic_or_partition
        return None

    def fetch(self, group_id: str, topics: list[tuple[str, list[int]]] | None
              ) -> dict[TopicPartition, CommittedOffset | None]:
        group = self.groups.get(group_id)
        committed = group.offsets if group else {}
        if topics is None:
            return dict(committed)
        return {(t, p): committed.get((t, p)) for t, ps in topics for p in ps}

    def delete(self, group_id: str, partitions: list[TopicPartition]
               ) -> CoordinatorResult[CommitResponse, records.Record]:
        """OffsetDelete: only partitions of topics the group does not consume."""
        out: Effects[records.Record] = Effects()
        group = self.groups.get(group_id)
        if group is None or group.is_(S.DEAD):
            return out.result((ErrorCode.group_id_not_found, {}))
        if not group.is_(S.EMPTY) and group.protocol_type != "consumer":
            return out.result((ErrorCode.non_empty_group, {}))
        subscribed = set() if group.is_(S.EMPTY) else group.subscribed_topics()
        results: dict[TopicPartition, ErrorCode] = {}
        for tp in partitions:
            # Unreadable subscriptions: assume every topic is subscribed, as Kafka does.
            if subscribed is None or tp[0] in subscribed:
                results[tp] = ErrorCode.group_subscribed_to_topic
                continue
            results[tp] = ErrorCode.none
            if tp in group.offsets:
                out.records.append(records.offset_tombstone(group_id, tp))
        if out.records:
            out.then = lambda error: CoordinatorResult(
                response=(error, {}) if error != ErrorCode.none else (ErrorCode.none, results))
        return out.result((ErrorCode.none, results))

    def drop_topics(self, topics: set[str]) -> CoordinatorResult[int, records.Record]:
        """Topics were deleted: their committed offsets go from every group (Kafka's
        onPartitionsDeleted), and an empty group left without offsets goes with them;
        responds how many offsets were dropped."""
        out: Effects[records.Record] = Effects()
        dropped = 0
        for group in self.groups.values():
            gone = [tp for tp in group.offsets if tp[0] in topics]
            if not gone:
                continue
            out.records.extend(records.offset_tombstone(group.group_id, tp) for tp in gone)
            if len(gone) == len(group.offsets) and group.is_(S.EMPTY):
                out.records.append(records.group_tombstone(group.group_id))
            dropped += len(gone)
        return out.result(dropped)

    def tombstones(self, group: Group) -> list[records.Record]:
        return [records.offset_tombstone(group.group_id, tp) for tp in group.offsets]

    def expire(self) -> CoordinatorResult[int, records.Record]:
        """Tombstones for offsets of empty groups older than offsets.retention (Kafka 2.1+
        rules), and for a group whose every offset expired; responds how many expired."""
        out: Effects[records.Record] = Effects()
        now = self.clock()
        retention = self.config.offsets_retention_ms
        expired = 0
        for group in self.groups.values():
            if not group.is_(S.EMPTY):
                continue
            since = group.state_timestamp if group.protocol_type else -1
            stale = [tp for tp, o in group.offsets.items()
                     if max(o.commit_timestamp, since) + retention <= now]
            if not stale:
                continue
            out.records.extend(records.offset_tombstone(group.group_id, tp) for tp in stale)
            if len(stale) == len(group.offsets):
                out.records.append(records.group_tombstone(group.group_id))
            expired += len(stale)
        return out.result(expired)


def _commit_permission(group: Group | None, generation_id: int, member_id: str,
                       instance_id: str | None) -> ErrorCode:
    simple = generation_id < 0 and not member_id
    if group is None:
        return ErrorCode.none if generation_id < 0 else ErrorCode.illegal_generation
    if simple:
        return ErrorCode.none if group.is_(S.EMPTY) else ErrorCode.unknown_member_id
    if instance_id is not None and group.static_members.get(instance_id) not in (None, member_id):
        return ErrorCode.fenced_instance_id
    if member_id not in group.members:
        return ErrorCode.unknown_member_id
    if generation_id != group.generation_id:
        return ErrorCode.illegal_generation
    if group.is_(S.COMPLETING_REBALANCE):
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def _txn_commit_permission(group: Group | None, generation_id: int, member_id: str
                           ) -> ErrorCode:
    """Kafka's checks of a TxnOffsetCommit (v3+ carries the consumer's group metadata)."""
    if group is None:
        return ErrorCode.none if generation_id < 0 else ErrorCode.illegal_generation
    if member_id and member_id not in group.members:
        return ErrorCode.unknown_member_id
    if generation_id >= 0 and generation_id != group.generation_id:
        return ErrorCode.illegal_generation
    return ErrorCode.none

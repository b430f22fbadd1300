"""The group coordinator: groups and committed offsets, as a fold over `__consumer_offsets`.

Each group belongs to one partition of `__consumer_offsets` (`partition_for`), and the
broker leading that partition is the group's coordinator. On becoming leader it
`load`s the partition into a `GroupCoordinatorShard`: the loader replays its records.
On losing leadership it `unload`s the shard. Every change (a commit, a completed
rebalance, a deletion) is appended to the partition and replayed, and answered once it
is replicated, so a new coordinator elsewhere replays exactly what clients were told.

This class is the face the broker's handlers see: it checks that a group is coordinated
here and hands the operation to the `CoordinatorRuntime`, which runs it on the group's
shard and does all the waiting.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from kio.schema.errors import ErrorCode

from strom.coordinator.group import records
from strom.coordinator.group.config import GroupConfig, OffsetsLog, partition_for
from strom.coordinator.group.consumer_group import (
    ConsumerGroup,
    HeartbeatRequest,
    HeartbeatResult,
    TopicsView,
)
from strom.coordinator.group.loader import PartitionLoad
from strom.coordinator.group.membership import JoinRequest, new_member_id
from strom.coordinator.group.model import CommittedOffset, Group, JoinResult, SyncResult
from strom.coordinator.group.offsets import CommitResponse, OffsetCommit
from strom.coordinator.group.shard import GroupCoordinatorShard
from strom.coordinator.runtime import CoordinatorResult, CoordinatorRuntime, Scheduler, Timer

log = logging.getLogger(__name__)
R = TypeVar("R")
TopicPartition = tuple[str, int]
OFFSETS_TOPIC = "__consumer_offsets"
Operation = Callable[[GroupCoordinatorShard], CoordinatorResult[R, records.Record]]

__all__ = ["GroupCoordinator", "OffsetCommit"]


class GroupCoordinator:
    def __init__(
        self,
        offsets_log: OffsetsLog,
        config: GroupConfig,
        scheduler: Scheduler,
        clock: Callable[[], int],
        partition_exists: Callable[[str, int], bool],
        mint_member_id: Callable[[str], str] = new_member_id,
        topics: TopicsView = dict,
    ) -> None:
        self.log = offsets_log
        self.config = config
        self.clock = clock
        self.partition_exists = partition_exists
        self.mint_member_id = mint_member_id
        self.topics = topics  # name -> (id, partitions), for KIP-848 consumer groups
        self.runtime: CoordinatorRuntime[GroupCoordinatorShard, records.Record] = (
            CoordinatorRuntime(offsets_log, scheduler, records.serialize, OFFSETS_TOPIC))
        # (partition, reason) -> records skipped by loads: strom_coordinator_skipped_records
        self.skipped_records: dict[tuple[int, str], int] = {}
        self._tokens = itertools.count(1)  # request tokens, unique across shards

    # --- ownership --------------------------------------------------------------------

    @property
    def owned(self) -> set[int]:
        return set(self.runtime.shards)

    @property
    def failed(self) -> dict[int, str]:
        """Partitions led here whose load failed -> why."""
        return self.runtime.failed

    @property
    def loading(self) -> set[int]:
        return self.runtime.loading

    @loading.setter
    def loading(self, partitions: set[int]) -> None:
        self.runtime.loading = set(partitions)

    @property
    def groups(self) -> dict[str, Group]:
        """Every group coordinated here (a snapshot over the shards)."""
        return {g: group for shard in self.runtime.shards.values()
                for g, group in shard.groups.items()}

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config.num_partitions)

    def ownership_error(self, group_id: str) -> ErrorCode:
        if not group_id:
            return ErrorCode.invalid_group_id
        return self.runtime.status(self.partition_for(group_id))

    def load(self, partition: int) -> bool:
        """Become coordinator for one partition: replay its log into a new shard.

        Never raises. Records that cannot be decoded are skipped and counted (see
        `loader`); if the load fails anyway, the partition stays unowned and recorded in
        `failed`, so its groups answer NOT_COORDINATOR (Kafka's failed coordinator shard)
        while the rest of the broker serves. It is tried again when leadership moves.
        """
        return self.runtime.load(partition, lambda timer: self._build(partition, timer))

    def _build(self, partition: int, timer: Timer) -> GroupCoordinatorShard:
        shard = GroupCoordinatorShard(partition, self.config, timer, self.clock,
                                      self.partition_exists, self._tokens, self.mint_member_id,
                                      self.topics)
        state = PartitionLoad(partition, shard.replay)
        try:
            for entry in self.log.replay(partition):
                state.feed(entry)
        finally:
            state.finish()
            for reason, count in state.skipped.items():
                key = (partition, reason)
                self.skipped_records[key] = self.skipped_records.get(key, 0) + count
        shard.on_loaded()
        if state.read:
            log.info("loaded __consumer_offsets-%d: %d record(s), %d group(s)", partition,
                     state.read, len(shard.groups))
        return shard

    def unload(self, partition: int) -> None:
        self.runtime.unload(partition)

    async def _write(self, group_id: str, op: Operation[R], refused: Callable[[ErrorCode], R]) -> R:
        error = self.ownership_error(group_id)
        if error != ErrorCode.none:
            return refused(error)
        return await self.runtime.write(self.partition_for(group_id), op)

    def _shard(self, group_id: str) -> tuple[ErrorCode, GroupCoordinatorShard | None]:
        if not group_id:
            return ErrorCode.invalid_group_id, None
        shard = self.runtime.shards.get(self.partition_for(group_id))
        if shard is None:
            return self.ownership_error(group_id), None
        return ErrorCode.none, shard

    # --- membership -------------------------------------------------------------------

    async def join(self, req: JoinRequest) -> JoinResult:
        return await self._write(req.group_id, lambda shard: shard.join(req),
                                 lambda error: JoinResult(error, member_id=req.member_id))

    async def sync(self, group_id: str, generation_id: int, member_id: str,
                   instance_id: str | None, protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> SyncResult:
        return await self._write(
            group_id,
            lambda shard: shard.sync(group_id, generation_id, member_id, instance_id,
                                     protocol_type, protocol_name, assignments),
            SyncResult)

    def heartbeat(self, group_id: str, generation_id: int, member_id: str,
                  instance_id: str | None) -> ErrorCode:
        error = self.ownership_error(group_id)
        if error != ErrorCode.none:
            return error
        response, _ = self.runtime.execute(
            self.partition_for(group_id),
            lambda shard: shard.heartbeat(group_id, generation_id, member_id, instance_id))
        return response

    async def leave(self, group_id: str, members: list[tuple[str, str | None]]
                    ) -> tuple[ErrorCode, list[ErrorCode]]:
        return await self._write(group_id, lambda shard: shard.leave(group_id, members),
                                 lambda error: (error, []))

    async def consumer_heartbeat(self, req: HeartbeatRequest) -> HeartbeatResult:
        """ConsumerGroupHeartbeat (KIP-848)."""
        return await self._write(req.group_id, lambda shard: shard.consumer_heartbeat(req),
                                 lambda error: HeartbeatResult(error))

    def consumer_describe(self, group_id: str) -> tuple[ErrorCode, ConsumerGroup | None]:
        """ConsumerGroupDescribe: GROUP_ID_NOT_FOUND for an unknown or classic group."""
        error, shard = self._shard(group_id)
        if shard is None:
            return error, None
        group = shard.consumer.groups.get(group_id)
        return (ErrorCode.none, group) if group is not None else (ErrorCode.group_id_not_found, None)

    # --- offsets ----------------------------------------------------------------------

    async def commit(self, group_id: str, generation_id: int, member_id: str,
                     instance_id: str | None, commits: list[OffsetCommit]) -> CommitResponse:
        """Returns (group-level error, per-partition errors)."""
        return await self._write(
            group_id,
            lambda shard: shard.commit(group_id, generation_id, member_id, instance_id, commits),
            lambda error: (error, {(c.topic, c.partition): error for c in commits}))

    def fetch(self, group_id: str, topics: list[tuple[str, list[int]]] | None,
              member: tuple[str, int] | None = None
              ) -> tuple[ErrorCode, dict[TopicPartition, CommittedOffset | None]]:
        """Committed offsets; ``member`` (id, epoch: OffsetFetch v9+) is checked against
        a consumer group's members."""
        error, shard = self._shard(group_id)
        if shard is None:
            return error, {}
        if member is not None:
            error = shard.consumer.fetch_error(group_id, *member)
            if error != ErrorCode.none:
                return error, {}
        return ErrorCode.none, shard.fetch(group_id, topics)

    def unstable(self, group_id: str) -> set[TopicPartition]:
        """Partitions with transactional offsets pending (OffsetFetch require_stable)."""
        _, shard = self._shard(group_id)
        return set() if shard is None else shard.offsets.unstable(group_id)

    async def txn_commit(self, group_id: str, producer: tuple[int, int], generation_id: int,
                         member_id: str, commits: list[OffsetCommit]) -> CommitResponse:
        """TxnOffsetCommit: offsets pending until the transaction's marker."""
        return await self._write(
            group_id,
            lambda shard: shard.txn_commit(group_id, producer, generation_id, member_id,
                                           commits),
            lambda error: (error, {(c.topic, c.partition): error for c in commits}))

    def complete_transaction(self, partition: int, producer_id: int, committed: bool) -> None:
        """A transaction marker was written to ``partition`` (already in the log, so it
        is only folded, as the loader folds it): commit or drop its held offsets."""
        shard = self.runtime.shards.get(partition)
        if shard is not None:
            shard.replay(records.TxnMarker(producer_id, committed))

    async def delete_offsets(self, group_id: str, partitions: list[TopicPartition]
                             ) -> CommitResponse:
        return await self._write(group_id,
                                 lambda shard: shard.delete_offsets(group_id, partitions),
                                 lambda error: (error, {}))

    # --- administration ---------------------------------------------------------------

    def describe(self, group_id: str) -> tuple[ErrorCode, Group | None]:
        error, shard = self._shard(group_id)
        if shard is None:
            return error, None
        group = shard.describe(group_id)
        return (ErrorCode.none, group) if group is not None else (ErrorCode.group_id_not_found, None)

    def list_groups(self, states: Iterable[str] = ()) -> list[Group]:
        wanted = {s.lower() for s in states}
        return [g for shard in self.runtime.shards.values() for g in shard.list_groups(wanted)]

    def list_consumer_groups(self, states: Iterable[str] = ()) -> list[ConsumerGroup]:
        """KIP-848 consumer groups coordinated here (ListGroups with type ``consumer``)."""
        wanted = {s.lower() for s in states}
        return [g for shard in self.runtime.shards.values() for g in shard.consumer.listed(wanted)]

    async def delete_group(self, group_id: str) -> ErrorCode:
        return await self._write(group_id, lambda shard: shard.delete_group(group_id),
                                 lambda error: error)

    def drop_topics(self, topics: set[str]) -> int:
        """Deleted topics: their offsets leave every group this broker coordinates."""
        dropped = 0
        for partition in list(self.runtime.shards):
            count, error = self.runtime.execute(partition, lambda shard: shard.drop_topics(topics))
            if error == ErrorCode.none and count:
                dropped += count
        if dropped:
            log.info("dropped %d committed offset(s) of deleted topics %s", dropped,
                     ", ".join(sorted(topics)))
        return dropped

    def expire_offsets(self) -> int:
        """Drop offsets of empty groups older than offsets.retention (Kafka 2.1+ rules)."""
        expired = 0
        for partition in list(self.runtime.shards):
            count, error = self.runtime.execute(partition, lambda shard: shard.expire_offsets())
            if error == ErrorCode.none and count:
                expired += count
        if expired:
            log.info("expired %d committed offset(s)", expired)
        return expired

"""The face share-group handlers see: a share group's operations on its coordinator shard.

Share groups live on the same `__consumer_offsets` shard as the classic and consumer
groups of that id (FindCoordinator with key type GROUP finds them all), so a group id
is one kind of group at a time. This wraps the `GroupCoordinator`: ownership checks and
the runtime are its; the share state is the shard's `share` (`ShareGroups`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from strom.coordinator.runtime import CoordinatorResult
from strom.coordinator.share.group import (
    ShareGroup,
    ShareHeartbeat,
    ShareHeartbeatResult,
    ShareSettings,
)

if TYPE_CHECKING:
    from strom.coordinator.group.coordinator import GroupCoordinator
    from strom.coordinator.group.records import Record
    from strom.coordinator.group.shard import GroupCoordinatorShard


def _other_kind(shard: GroupCoordinatorShard, group_id: str) -> bool:
    """Is ``group_id`` a classic group with members or a consumer group?"""
    classic = shard.groups.get(group_id)
    return ((classic is not None and bool(classic.members))
            or group_id in shard.consumer.groups)


async def heartbeat(coordinator: GroupCoordinator, req: ShareHeartbeat,
                    settings: ShareSettings,
                    on_removed: Callable[[str, str], object] | None = None
                    ) -> ShareHeartbeatResult:
    """ShareGroupHeartbeat on the group's shard; GROUP_ID_NOT_FOUND for a group of
    another type, as Kafka answers."""
    error = coordinator.ownership_error(req.group_id)
    if error != ErrorCode.none:
        return ShareHeartbeatResult(error, member_epoch=-1)

    def op(shard: GroupCoordinatorShard) -> CoordinatorResult[ShareHeartbeatResult, Record]:
        if _other_kind(shard, req.group_id):
            return CoordinatorResult(response=ShareHeartbeatResult(
                ErrorCode.group_id_not_found,
                f"Group {req.group_id} is not a share group.", member_epoch=-1))
        shard.share.settings = settings
        if on_removed is not None:
            shard.share.on_removed = on_removed
        done = shard.share.heartbeat(req)
        return CoordinatorResult(done.records, done.response)

    return await coordinator.runtime.write(coordinator.partition_for(req.group_id), op)


def describe(coordinator: GroupCoordinator, group_id: str) -> tuple[ErrorCode, ShareGroup | None]:
    """ShareGroupDescribe: GROUP_ID_NOT_FOUND for an unknown group or one of another type."""
    if not group_id:
        return ErrorCode.invalid_group_id, None
    shard = coordinator.runtime.shards.get(coordinator.partition_for(group_id))
    if shard is None:
        return coordinator.ownership_error(group_id), None
    group = shard.share.groups.get(group_id)
    return (ErrorCode.none, group) if group is not None else (ErrorCode.group_id_not_found, None)


def listed(coordinator: GroupCoordinator, states: set[str]) -> list[ShareGroup]:
    """Share groups coordinated here (ListGroups with type ``share``)."""
    return [g for shard in coordinator.runtime.shards.values() for g in shard.share.listed(states)]


def is_member(coordinator: GroupCoordinator, group_id: str, member_id: str) -> bool | None:
    """Is ``member_id`` in share group ``group_id``? None when not coordinated here."""
    shard = coordinator.runtime.shards.get(coordinator.partition_for(group_id))
    if shard is None:
        return None
    group = shard.share.groups.get(group_id)
    return group is not None and member_id in group.members

"""DescribeShareGroupOffsets (90), AlterShareGroupOffsets (91), DeleteShareGroupOffsets (92):
the admin face of share groups' start offsets (KIP-932), what `kafka-share-groups.sh
--describe/--reset-offsets/--delete-offsets` use.

A share group's "offset" per partition is its share-partition start offset (SPSO); lag
(v1, KIP-1226) is the records from there to the high watermark not yet acknowledged or
archived. Kafka answers these from its share coordinator; Strom's share-partition state
is kept by the partition's leader (`strom.broker.share`), so they are answered from this
broker's share-partitions and their durable state, which is the whole picture on a
single broker. Altering and deleting need an empty group (NON_EMPTY_GROUP otherwise, as
Kafka answers) and replace the share-partition's state: an altered one restarts at the
new offset with nothing in flight, a deleted one starts again from
`share.auto.offset.reset` on the next fetch.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.share_groups import manager, share_enabled
from strom.broker.network import dispatch
from strom.broker.share.partition import RecordState, SharePartition
from strom.coordinator.share import service
from strom.protocol.api_keys import ApiKey


def _share(ctx: RequestContext, group_id: str, topic: str, index: int) -> SharePartition | None:
    """The group's share-partition, live or from its durable state."""
    shares = manager(ctx)
    key = (group_id, topic, index)
    live = shares.partitions.get(key)
    if live is not None or shares.store is None:
        return live
    stored = shares.store.read(key)
    if stored is None:
        return None
    restored = SharePartition(0, shares.clock)
    restored.state_epoch, start, batches = stored
    restored.restore(start, batches)
    return restored


def _lag(ctx: RequestContext, topic: str, index: int, share: SharePartition) -> int:
    partition = ctx.partitions.get(topic, index)
    if partition is None:
        return -1
    done = sum(1 for e in share.records.values()
               if e.state in (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED))
    return max(partition.high_watermark - share.start_offset - done, 0)


def _described_partition(ctx: RequestContext, group_id: str, topic: str, index: int
                         ) -> dict[str, Any]:
    row: dict[str, Any] = {"partition_index": index, "start_offset": -1, "leader_epoch": -1,
                           "lag": -1, "error_code": ErrorCode.none}
    info = ctx.metadata.image().topics.get(topic)
    if info is None or index not in info.partitions:
        row["error_code"] = ErrorCode.unknown_topic_or_partition
        return row
    share = _share(ctx, group_id, topic, index)
    if share is not None:
        row["start_offset"] = share.start_offset
        row["lag"] = _lag(ctx, topic, index, share)
        partition = ctx.partitions.get(topic, index)
        row["leader_epoch"] = partition.leader_epoch if partition is not None else -1
    return row


def _wanted(ctx: RequestContext, group_id: str, topics: Any) -> list[tuple[str, list[int]]]:
    """The requested topics, or (null) every partition the group has state for."""
    if topics is not None:
        return [(t.topic_name, [int(p) for p in t.partitions]) for t in topics]
    held: dict[str, list[int]] = {}
    for (topic, index) in sorted(manager(ctx).group_partitions(group_id)):
        held.setdefault(topic, []).append(index)
    return list(held.items())


def _described_group(ctx: RequestContext, group: Any) -> dict[str, Any]:
    error, _ = service.describe(ctx.groups.coordinator, group.group_id)
    if error not in (ErrorCode.none, ErrorCode.group_id_not_found):
        return {"group_id": group.group_id, "topics": [], "error_code": error}
    image = ctx.metadata.image()
    topics = []
    for name, indexes in _wanted(ctx, group.group_id, group.topics):
        info = image.topics.get(name)
        topics.append({"topic_name": name, "topic_id": info.topic_id if info else None,
                       "partitions": [_described_partition(ctx, group.group_id, name, i)
                                      for i in indexes]})
    return {"group_id": group.group_id, "topics": topics, "error_code": ErrorCode.none}


@dispatch.handles(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, 1)
async def describe_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    if not share_enabled(ctx):
        return ctx.respond(groups=[{"group_id": g.group_id, "topics": [],
                                    "error_code": ErrorCode.unsupported_version}
                                   for g in request.groups])
    return ctx.respond(groups=[_described_group(ctx, g) for g in request.groups])


def _group_error(ctx: RequestContext, group_id: str) -> tuple[ErrorCode, str | None]:
    """Altering or deleting offsets: this broker coordinates the group, and it is empty."""
    if not share_enabled(ctx):
        return ErrorCode.unsupported_version, None
    error, group = service.describe(ctx.groups.coordinator, group_id)
    if error not in (ErrorCode.none, ErrorCode.group_id_not_found):
        return error, None
    if group is not None and group.members:
        return ErrorCode.non_empty_group, "The group is not empty."
    return ErrorCode.none, None


def _alter_partition(ctx: RequestContext, group_id: str, topic: str, part: Any) -> dict[str, Any]:
    index, offset = int(part.partition_index), int(part.start_offset)
    info = ctx.metadata.image().topics.get(topic)
    partition = ctx.partitions.get(topic, index)
    if info is None or index not in info.partitions:
        return {"partition_index": index, "error_code": ErrorCode.unknown_topic_or_partition}
    if partition is None or not partition.is_leader:
        return {"partition_index": index, "error_code": ErrorCode.not_leader_or_follower}
    shares = manager(ctx)
    key = (group_id, topic, index)
    share = shares.partitions.get(key)
    if share is None:
        share = shares.partitions[key] = SharePartition(offset, shares.clock)
    share.records.clear()
    share.start_offset = share.end_offset = offset
    share.state_epoch += 1
    shares.persist(key)
    return {"partition_index": index, "error_code": ErrorCode.none}


@dispatch.handles(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, 0)
async def alter_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    error, message = _group_error(ctx, request.group_id)
    if error != ErrorCode.none:
        return ctx.respond(error_code=error, error_message=message, responses=[])
    image = ctx.metadata.image()
    return ctx.respond(error_code=ErrorCode.none, responses=[
        {"topic_name": t.topic_name,
         "topic_id": image.topics[t.topic_name].topic_id if t.topic_name in image.topics
         else None,
         "partitions": [_alter_partition(ctx, request.group_id, t.topic_name, p)
                        for p in t.partitions]}
        for t in request.topics])


def _delete_topic(ctx: RequestContext, group_id: str, topic: str) -> dict[str, Any]:
    info = ctx.metadata.image().topics.get(topic)
    if info is None:
        return {"topic_name": topic, "topic_id": None,
                "error_code": ErrorCode.unknown_topic_or_partition,
                "error_message": "The topic does not exist."}
    shares = manager(ctx)
    for index in range(len(info.partitions)):
        shares.forget((group_id, topic, index))
    return {"topic_name": topic, "topic_id": info.topic_id, "error_code": ErrorCode.none}


@dispatch.handles(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, 0)
async def delete_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    error, message = _group_error(ctx, request.group_id)
    if error != ErrorCode.none:
        return ctx.respond(error_code=error, error_message=message, responses=[])
    return ctx.respond(error_code=ErrorCode.none, responses=[
        _delete_topic(ctx, request.group_id, t.topic_name) for t in request.topics])

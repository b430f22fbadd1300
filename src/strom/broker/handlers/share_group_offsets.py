"""DescribeShareGroupOffsets (90), AlterShareGroupOffsets (91), DeleteShareGroupOffsets (92):
the admin face of share groups' start offsets (KIP-932), what `kafka-share-groups.sh
--describe/--reset-offsets/--delete-offsets` use.

A share group's "offset" per partition is its share-partition start offset (SPSO); lag
(v1, KIP-1226) is the records from there to the high watermark not yet acknowledged or
archived. As Kafka, they are answered from the share coordinator
(ReadShareGroupStateSummary through `strom.broker.hosts.share_host`), so they see
share-partitions led by any broker. Altering and deleting need an empty group
(NON_EMPTY_GROUP otherwise, as Kafka answers) and replace the share-partition's state:
an altered one is initialized again at the new offset under a new state epoch, nothing
in flight, a deleted one starts again from `share.auto.offset.reset` on the next fetch.
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


def _lag(ctx: RequestContext, topic: str, index: int, start: int,
         share: SharePartition | None) -> int:
    """Records from the start offset to the high watermark not yet acknowledged or
    archived (in-flight counts known only where the share-partition is loaded)."""
    partition = ctx.partitions.get(topic, index)
    if partition is None:
        return -1
    done = 0 if share is None else sum(
        1 for e in share.records.values()
        if e.state in (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED))
    return max(partition.high_watermark - start - done, 0)


async def _described_partition(ctx: RequestContext, group_id: str, topic: str, index: int
                               ) -> dict[str, Any]:
    """One share-partition's start offset from the share coordinator
    (ReadShareGroupStateSummary), wherever its partition is led."""
    row: dict[str, Any] = {"partition_index": index, "start_offset": -1, "leader_epoch": -1,
                           "lag": -1, "error_code": ErrorCode.none}
    info = ctx.metadata.image().topics.get(topic)
    if info is None or index not in info.partitions:
        row["error_code"] = ErrorCode.unknown_topic_or_partition
        return row
    shares = manager(ctx)
    key = (group_id, topic, index)
    live = shares.partitions.get(key)
    if live is not None:
        start: int | None = live.start_offset
    else:
        store = shares.store
        summary = None if store is None else await store.summary(key)
        start = None if summary is None or summary[1] is None else summary[1][1]
    if start is not None and start >= 0:
        row["start_offset"] = start
        row["lag"] = _lag(ctx, topic, index, start, live)
        row["leader_epoch"] = info.partitions[index].leader_epoch
    return row


def _wanted(ctx: RequestContext, group_id: str, topics: Any) -> list[tuple[str, list[int]]]:
    """The requested topics, or (null) the partitions of the topics the group's members
    subscribe to and those loaded here."""
    if topics is not None:
        return [(t.topic_name, [int(p) for p in t.partitions]) for t in topics]
    held: dict[str, set[int]] = {}
    for (topic, index) in manager(ctx).group_partitions(group_id):
        held.setdefault(topic, set()).add(index)
    _, group = service.describe(ctx.groups.coordinator, group_id)
    image = ctx.metadata.image()
    for member in (group.members.values() if group is not None else ()):
        for name in member.subscribed_topics:
            info = image.topics.get(name)
            if info is not None:
                held.setdefault(name, set()).update(info.partitions)
    return [(t, sorted(ps)) for t, ps in sorted(held.items())]


async def _described_group(ctx: RequestContext, group: Any) -> dict[str, Any]:
    error, _ = service.describe(ctx.groups.coordinator, group.group_id)
    if error not in (ErrorCode.none, ErrorCode.group_id_not_found):
        return {"group_id": group.group_id, "topics": [], "error_code": error}
    image = ctx.metadata.image()
    topics = []
    for name, indexes in _wanted(ctx, group.group_id, group.topics):
        info = image.topics.get(name)
        topics.append({"topic_name": name, "topic_id": info.topic_id if info else None,
                       "partitions": [await _described_partition(ctx, group.group_id, name, i)
                                      for i in indexes]})
    return {"group_id": group.group_id, "topics": topics, "error_code": ErrorCode.none}


@dispatch.handles(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, 1)
async def describe_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    if not share_enabled(ctx):
        return ctx.respond(groups=[{"group_id": g.group_id, "topics": [],
                                    "error_code": ErrorCode.unsupported_version}
                                   for g in request.groups])
    return ctx.respond(groups=[await _described_group(ctx, g) for g in request.groups])


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


async def _alter_partition(ctx: RequestContext, group_id: str, topic: str, part: Any
                           ) -> dict[str, Any]:
    index, offset = int(part.partition_index), int(part.start_offset)
    info = ctx.metadata.image().topics.get(topic)
    partition = ctx.partitions.get(topic, index)
    if info is None or index not in info.partitions:
        return {"partition_index": index, "error_code": ErrorCode.unknown_topic_or_partition}
    if partition is None or not partition.is_leader:
        return {"partition_index": index, "error_code": ErrorCode.not_leader_or_follower}
    shares = manager(ctx)
    key = (group_id, topic, index)
    share = shares.partitions.pop(key, None)  # read again from the new state
    epoch = 1 if share is None else share.state_epoch + 1
    if shares.store is not None:
        summary = await shares.store.summary(key)
        if summary[1] is not None:
            epoch = max(epoch, summary[1][0] + 1)
        error = await shares.store.initialize(key, epoch, offset)
        if error != ErrorCode.none:
            return {"partition_index": index, "error_code": error}
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
         "partitions": [await _alter_partition(ctx, request.group_id, t.topic_name, p)
                        for p in t.partitions]}
        for t in request.topics])


async def _delete_topic(ctx: RequestContext, group_id: str, topic: str) -> dict[str, Any]:
    info = ctx.metadata.image().topics.get(topic)
    if info is None:
        return {"topic_name": topic, "topic_id": None,
                "error_code": ErrorCode.unknown_topic_or_partition,
                "error_message": "The topic does not exist."}
    shares = manager(ctx)
    for index in range(len(info.partitions)):
        await shares.forget((group_id, topic, index))
    return {"topic_name": topic, "topic_id": info.topic_id, "error_code": ErrorCode.none}


@dispatch.handles(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, 0)
async def delete_share_group_offsets(ctx: RequestContext, request: Any) -> Any:
    error, message = _group_error(ctx, request.group_id)
    if error != ErrorCode.none:
        return ctx.respond(error_code=error, error_message=message, responses=[])
    return ctx.respond(error_code=ErrorCode.none, responses=[
        await _delete_topic(ctx, request.group_id, t.topic_name) for t in request.topics])

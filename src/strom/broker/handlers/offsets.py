"""OffsetCommit (8), OffsetFetch (9) and OffsetDelete (47)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.coordinator.group.offsets import OffsetCommit
from strom.protocol.api_keys import ApiKey


@dispatch.handles(ApiKey.OFFSET_COMMIT, 2, 9)
async def offset_commit(ctx: RequestContext, request: Any) -> Any:
    generation = int(getattr(request, "generation_id_or_member_epoch",
                             getattr(request, "generation_id", -1)))
    commits = [
        OffsetCommit(t.name, int(p.partition_index), int(p.committed_offset),
                     int(getattr(p, "committed_leader_epoch", -1)), p.committed_metadata)
        for t in request.topics for p in t.partitions
    ]
    _, results = await ctx.groups.coordinator.commit(
        request.group_id, generation, request.member_id,
        getattr(request, "group_instance_id", None), commits,
    )
    return ctx.respond(topics=[
        {"name": t.name, "partitions": [
            {"partition_index": p.partition_index,
             "error_code": results[(t.name, int(p.partition_index))]}
            for p in t.partitions]}
        for t in request.topics
    ])


def _fetch_group(ctx: RequestContext, group_id: str, topics: Any, nested: bool,
                 require_stable: bool = False, member: tuple[str, int] | None = None
                 ) -> dict[str, Any]:
    wanted = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    error, offsets = ctx.groups.coordinator.fetch(group_id, wanted, member)
    # transactional offsets not decided yet: a require_stable fetch is told to retry
    unstable = ctx.groups.coordinator.unstable(group_id) if require_stable else set()
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), found in sorted(offsets.items()):
        held = (topic, partition) in unstable
        committed = None if held else found
        by_topic.setdefault(topic, []).append({
            "partition_index": partition,
            "committed_offset": committed.offset if committed else -1,
            "committed_leader_epoch": committed.leader_epoch if committed else -1,
            "metadata": committed.metadata if committed else "",
            "error_code": ErrorCode.unstable_offset_commit if held else ErrorCode.none,
        })
    return {"group_id": group_id, "error_code": error,
            "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()]}


@dispatch.handles(ApiKey.OFFSET_FETCH, 1, 9)
async def offset_fetch(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version >= 8:
        stable = bool(request.require_stable)
        groups = [_fetch_group(ctx, g.group_id, g.topics, True, stable,
                               (g.member_id or "", int(g.member_epoch))
                               if ctx.api_version >= 9 else None)  # KIP-848 members
                  for g in request.groups]
        return ctx.respond(groups=groups)
    result = _fetch_group(ctx, request.group_id, request.topics, False,
                          bool(getattr(request, "require_stable", False)))
    return ctx.respond(topics=result["topics"], error_code=result["error_code"])


@dispatch.handles(ApiKey.OFFSET_DELETE, 0, 0)
async def offset_delete(ctx: RequestContext, request: Any) -> Any:
    partitions = [(t.name, int(p.partition_index)) for t in request.topics for p in t.partitions]
    error, results = await ctx.groups.coordinator.delete_offsets(request.group_id,
                                                                       partitions)
    return ctx.respond(
        error_code=error,
        topics=[] if error != ErrorCode.none else [
            {"name": t.name, "partitions": [
                {"partition_index": p.partition_index,
                 "error_code": results[(t.name, int(p.partition_index))]}
                for p in t.partitions]}
            for t in request.topics
        ],
    )

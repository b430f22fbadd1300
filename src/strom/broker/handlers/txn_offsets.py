"""TxnOffsetCommit (28): a transactional producer commits a consumer group's offsets.

The group coordinator holds them per producer until the transaction's marker reaches
the group's `__consumer_offsets` partition: COMMIT makes them committed offsets, ABORT
drops them. Until then OffsetFetch does not show them, and a fetch with require_stable
answers UNSTABLE_OFFSET_COMMIT for those partitions.
"""

from __future__ import annotations

from typing import Any

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.coordinator.group.offsets import OffsetCommit
from strom.protocol.api_keys import ApiKey


@dispatch.handles(ApiKey.TXN_OFFSET_COMMIT, 0, 5)
async def txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    commits = [
        OffsetCommit(t.name, int(p.partition_index), int(p.committed_offset),
                     int(getattr(p, "committed_leader_epoch", -1)), p.committed_metadata)
        for t in request.topics for p in t.partitions
    ]
    _, results = await ctx.groups.coordinator.txn_commit(
        request.group_id, (int(request.producer_id), int(request.producer_epoch)),
        int(getattr(request, "generation_id", -1)),
        getattr(request, "member_id", ""), commits)
    return ctx.respond(topics=[
        {"name": t.name, "partitions": [
            {"partition_index": p.partition_index,
             "error_code": results[(t.name, int(p.partition_index))]}
            for p in t.partitions]}
        for t in request.topics
    ])

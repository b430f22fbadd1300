"""OffsetForLeaderEpoch (23): where did a leader epoch end, on this leader's log?

A follower asks after a leadership change and truncates its log to the answer, so it
never keeps records the new leader does not have (KIP-101/KIP-279).
"""

from __future__ import annotations

from typing import Any

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, leader_partition
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey


def _answer(ctx: RequestContext, topic: str, part: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"partition": part.partition, "error_code": NONE,
                             "leader_epoch": -1, "end_offset": -1}
    partition, code = leader_partition(ctx, topic, part.partition,
                                       int(getattr(part, "current_leader_epoch", -1)))
    if partition is None:
        entry["error_code"] = code
        return entry
    epoch, end = partition.epoch_end_offset(int(part.leader_epoch))
    entry.update(leader_epoch=epoch, end_offset=end)
    return entry


@dispatch.handles(ApiKey.OFFSET_FOR_LEADER_EPOCH, 2, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    return ctx.respond(topics=[
        {"topic": t.topic, "partitions": [_answer(ctx, t.topic, p) for p in t.partitions]}
        for t in request.topics
    ])

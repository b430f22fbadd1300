"""AlterPartitionReassignments (45) and ListPartitionReassignments (46).

The request only records the target, decided by `strom.cluster.reassignment.alter`
(this module translates the request and the answers); new replicas
then replicate like any follower, and the controller completes the move once they are
in sync.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.cluster import reassignment
from strom.cluster.image import TopicInfo
from strom.cluster.store import MetadataError
from strom.protocol.api_keys import ApiKey


def _alter_topic(ctx: RequestContext, topic: Any) -> list[dict[str, Any]]:
    live = set(ctx.metadata.image().brokers)
    targets = {int(part.partition_index): None if part.replicas is None
               else tuple(int(r) for r in part.replicas) for part in topic.partitions}
    outcome: dict[int, reassignment.Outcome] = {}

    def change(current: TopicInfo) -> TopicInfo | None:
        updated, decided = reassignment.alter(current, targets, live)
        outcome.clear()
        outcome.update(decided)
        return updated

    try:
        ctx.metadata.update_topic(topic.name, change)
    except MetadataError as exc:
        outcome = {index: (exc.error, str(exc)) for index in targets}
    results = []
    for part in topic.partitions:
        error, message = outcome.get(int(part.partition_index), (ErrorCode.none, None))
        results.append({"partition_index": int(part.partition_index), "error_code": error,
                        "error_message": message})
    return results


@dispatch.handles(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, 0)
async def alter(ctx: RequestContext, request: Any) -> Any:
    return ctx.respond(error_code=ErrorCode.none, responses=[
        {"name": t.name, "partitions": _alter_topic(ctx, t)} for t in request.topics])


@dispatch.handles(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, 0)
async def list_reassignments(ctx: RequestContext, request: Any) -> Any:
    image = ctx.metadata.image()
    wanted = None if request.topics is None else {
        t.name: set(int(p) for p in t.partition_indexes) for t in request.topics}
    topics = []
    for name, topic in sorted(image.topics.items()):
        if wanted is not None and name not in wanted:
            continue
        parts = [{"partition_index": p.partition, "replicas": list(p.replicas),
                  "adding_replicas": list(p.adding), "removing_replicas": list(p.removing)}
                 for p in sorted(topic.partitions.values(), key=lambda p: p.partition)
                 if p.reassigning and (wanted is None or p.partition in wanted[name])]
        if parts:
            topics.append({"name": name, "partitions": parts})
    return ctx.respond(error_code=ErrorCode.none, topics=topics)

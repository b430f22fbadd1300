"""AlterPartitionReassignments (45) and ListPartitionReassignments (46).

The request only records the target (see strom.cluster.reassignment); new replicas
then replicate like any follower, and the controller completes the move once they are
in sync.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.cluster import reassignment
from strom.cluster.image import TopicInfo
from strom.cluster.store import MetadataError
from strom.protocol.api_keys import ApiKey


def _alter_topic(ctx: RequestContext, topic: Any) -> list[dict[str, Any]]:
    live = set(ctx.metadata.image().brokers)
    outcome: dict[int, tuple[str, str | None]] = {}

    def change(current: TopicInfo) -> TopicInfo | None:
        updated = dict(current.partitions)
        for part in topic.partitions:
            index = int(part.partition_index)
            p = current.partitions.get(index)
            if p is None:
                outcome[index] = ("unknown_topic_or_partition", None)
                continue
            try:
                if part.replicas is None:
                    updated[index] = reassignment.cancel(p)
                else:
                    updated[index] = reassignment.start(p, tuple(int(r) for r in part.replicas),
                                                        live)
                outcome[index] = ("none", None)
            except reassignment.ReassignmentError as exc:
                outcome[index] = (exc.error, str(exc))
        return replace(current, partitions=updated) if updated != current.partitions else None

    try:
        ctx.metadata.update_topic(topic.name, change)
    except MetadataError as exc:
        outcome = {int(p.partition_index): (exc.error, str(exc)) for p in topic.partitions}
    return [{"partition_index": int(p.partition_index),
             "error_code": ErrorCode[outcome.get(int(p.partition_index), ("none", None))[0]],
             "error_message": outcome.get(int(p.partition_index), ("none", None))[1]}
            for p in topic.partitions]


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

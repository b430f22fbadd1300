"""ElectLeaders (43): preferred or unclean leader elections on request.

Any broker may run the election: it is a version-checked write of the partition state,
computed by the same rules the controller uses (strom.cluster.controller), so a race
with the controller resolves to one consistent outcome.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.cluster.controller import elect, preferred
from strom.cluster.image import PartitionInfo, TopicInfo
from strom.cluster.store import MetadataError
from strom.protocol.api_keys import ApiKey

PREFERRED, UNCLEAN = 0, 1


def _decide(p: PartitionInfo, kind: int, live: set[int]) -> tuple[PartitionInfo | None, str]:
    if kind == PREFERRED:
        if p.leader == p.replicas[0]:
            return None, "election_not_needed"
        new = preferred(p, live)
        return new, "none" if new else "preferred_leader_not_available"
    if p.leader in live:
        return None, "election_not_needed"
    new = elect(p, live, unclean=True)
    return new, "none" if new and new.leader != -1 else "eligible_leaders_not_available"


def _elect_topic(ctx: RequestContext, name: str, partitions: list[int] | None,
                 kind: int) -> list[dict[str, Any]]:
    image = ctx.metadata.image()
    topic = image.topics.get(name)
    if topic is None:
        return [{"partition_id": p, "error_code": ErrorCode.unknown_topic_or_partition}
                for p in partitions or []]
    wanted = sorted(topic.partitions) if partitions is None else partitions
    live = set(image.brokers)
    outcome: dict[int, str] = {}

    def change(current: TopicInfo) -> TopicInfo | None:
        updated = dict(current.partitions)
        for index in wanted:
            p = current.partitions.get(index)
            if p is None:
                outcome[index] = "unknown_topic_or_partition"
                continue
            new, outcome[index] = _decide(p, kind, live)
            if new is not None:
                updated[index] = new
        return replace(current, partitions=updated) if updated != current.partitions else None

    try:
        ctx.metadata.update_topic(name, change)
    except MetadataError as exc:
        return [{"partition_id": p, "error_code": ErrorCode[exc.error]} for p in wanted]
    return [{"partition_id": p, "error_code": ErrorCode[outcome.get(p, "none")]} for p in wanted]


@dispatch.handles(ApiKey.ELECT_LEADERS, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    kind = int(getattr(request, "election_type", PREFERRED))
    if kind not in (PREFERRED, UNCLEAN):
        return ctx.respond(error_code=ErrorCode.invalid_request)
    targets: list[tuple[str, list[int] | None]]
    if request.topic_partitions is None:
        targets = [(name, None) for name in sorted(ctx.metadata.image().topics)]
    else:
        targets = [(t.topic, [int(p) for p in t.partitions]) for t in request.topic_partitions]
    results = [{"topic": name, "partition_result": _elect_topic(ctx, name, parts, kind)}
               for name, parts in targets]
    return ctx.respond(error_code=ErrorCode.none, replica_election_results=results)

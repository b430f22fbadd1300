"""ElectLeaders (43): preferred or unclean leader elections on request.

Any broker may run the election: it is a version-checked write of the partition state,
decided by `strom.cluster.controller.elect_requested` (the controller's own rules), so a
race with the controller resolves to one consistent outcome. This module only
translates the request and the answers.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.cluster.controller import ElectionType, elect_requested
from strom.cluster.image import TopicInfo
from strom.cluster.store import MetadataError
from strom.protocol.api_keys import ApiKey


def _elect_topic(ctx: RequestContext, name: str, partitions: list[int] | None,
                 kind: ElectionType) -> list[dict[str, Any]]:
    image = ctx.metadata.image()
    topic = image.topics.get(name)
    if topic is None:
        return [{"partition_id": p, "error_code": ErrorCode.unknown_topic_or_partition}
                for p in partitions or []]
    wanted = sorted(topic.partitions) if partitions is None else partitions
    live = set(image.brokers)
    outcome: dict[int, ErrorCode] = {}

    def change(current: TopicInfo) -> TopicInfo | None:
        updated, decided = elect_requested(current, wanted, kind, live)
        outcome.clear()
        outcome.update(decided)
        return updated

    try:
        ctx.metadata.update_topic(name, change)
    except MetadataError as exc:
        return [{"partition_id": p, "error_code": exc.error} for p in wanted]
    return [{"partition_id": p, "error_code": outcome.get(p, ErrorCode.none)} for p in wanted]


@dispatch.handles(ApiKey.ELECT_LEADERS, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    try:  # v0 has no election type: preferred
        kind = ElectionType(int(getattr(request, "election_type", ElectionType.PREFERRED)))
    except ValueError:
        return ctx.respond(error_code=ErrorCode.invalid_request)
    targets: list[tuple[str, list[int] | None]]
    if request.topic_partitions is None:
        targets = [(name, None) for name in sorted(ctx.metadata.image().topics)]
    else:
        targets = [(t.topic, [int(p) for p in t.partitions]) for t in request.topic_partitions]
    results = [{"topic": name, "partition_result": _elect_topic(ctx, name, parts, kind)}
               for name, parts in targets]
    return ctx.respond(error_code=ErrorCode.none, replica_election_results=results)

"""ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69): the KIP-848 protocol.

Thin adapters over `strom.coordinator.group.consumer_group`. Both are served when
`group.coordinator.rebalance.protocols` includes `consumer` (the default, as in Kafka 4);
otherwise ApiVersions does not list them and a request for them is refused with
UNSUPPORTED_VERSION, as Kafka refuses an API it does not enable.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.coordinator.group.consumer_group import (
    Assignment,
    ConsumerGroup,
    ConsumerMember,
    HeartbeatRequest,
)
from strom.protocol.api_keys import ApiKey
from strom.protocol.metadata_response import AUTHORIZED_OPERATIONS_UNKNOWN
from strom.protocol.schema import millis

MEMBER_TYPE_CLASSIC, MEMBER_TYPE_CONSUMER = 0, 1  # ConsumerGroupDescribe v1's MemberType
CONSUMER_APIS = frozenset({int(ApiKey.CONSUMER_GROUP_HEARTBEAT), int(ApiKey.CONSUMER_GROUP_DESCRIBE)})


def consumer_protocol_enabled(ctx: RequestContext) -> bool:
    protocols = ctx.config.get_str("group.coordinator.rebalance.protocols") or ""
    return "consumer" in {p.strip().lower() for p in protocols.split(",")}


def _owned(request: Any) -> Assignment | None:
    if request.topic_partitions is None:
        return None
    return {tp.topic_id: frozenset(int(p) for p in tp.partitions)
            for tp in request.topic_partitions if tp.topic_id is not None}


def _assignment(assignment: Assignment | None) -> dict[str, Any] | None:
    if assignment is None:
        return None
    return {"topic_partitions": [{"topic_id": t, "partitions": sorted(ps)}
                                 for t, ps in sorted(assignment.items()) if ps]}


@dispatch.handles(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1)
async def consumer_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    if not consumer_protocol_enabled(ctx):
        return ctx.respond(error_code=ErrorCode.unsupported_version, member_epoch=-1)
    if ctx.api_version >= 1 and not request.member_id:
        return ctx.respond(error_code=ErrorCode.invalid_request,
                           error_message="MemberId can't be empty.", member_epoch=-1)
    result = await ctx.groups.coordinator.consumer_heartbeat(HeartbeatRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        member_epoch=int(request.member_epoch),
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=millis(request.rebalance_timeout),
        subscribed_topics=(None if request.subscribed_topic_names is None
                           else tuple(request.subscribed_topic_names)),
        subscribed_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor,
        owned=_owned(request),
        client_id=ctx.client_id or "",
        client_host="/" + ctx.peer.rsplit(":", 1)[0],
    ))
    return ctx.respond(error_code=result.error, error_message=result.message,
                       member_id=result.member_id, member_epoch=result.member_epoch,
                       heartbeat_interval=result.heartbeat_interval_ms,
                       assignment=_assignment(result.assignment))


def _named(assignment: Assignment, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {"topic_partitions": [{"topic_id": t, "topic_name": names.get(t, ""),
                                  "partitions": sorted(ps)}
                                 for t, ps in sorted(assignment.items()) if ps]}


def _member(group: ConsumerGroup, member: ConsumerMember, names: dict[uuid.UUID, str]
            ) -> dict[str, Any]:
    return {"member_id": member.member_id, "instance_id": member.instance_id,
            "rack_id": member.rack_id, "member_epoch": member.member_epoch,
            "client_id": member.client_id, "client_host": member.client_host,
            "subscribed_topic_names": list(member.subscribed_topics),
            "subscribed_topic_regex": member.subscribed_regex,
            "assignment": _named(member.assigned, names),
            "target_assignment": _named(group.target.get(member.member_id, {}), names),
            "member_type": (MEMBER_TYPE_CLASSIC if member.classic is not None
                            else MEMBER_TYPE_CONSUMER)}


def _described(ctx: RequestContext, group_id: str) -> dict[str, Any]:
    coordinator = ctx.groups.coordinator
    error, group = coordinator.consumer_describe(group_id)
    ops = AUTHORIZED_OPERATIONS_UNKNOWN
    if group is None:
        return described_absent(group_id, error)
    names = {topic_id: name for name, (topic_id, _) in coordinator.topics().items()}
    return {"error_code": ErrorCode.none, "group_id": group_id, "group_state": group.state,
            "group_epoch": group.epoch, "assignment_epoch": group.assignment_epoch,
            "assignor_name": group.assignor("uniform"),
            "members": [_member(group, m, names) for m in group.members.values()],
            "authorized_operations": ops}


def described_absent(group_id: str, error: ErrorCode, state: str = "Dead") -> dict[str, Any]:
    """A ConsumerGroupDescribe / ShareGroupDescribe entry (one shape) for a group not
    described: not found (Kafka's message), not coordinated here, or the API switched off
    (UNSUPPORTED_VERSION with an empty state)."""
    message = f"Group {group_id} not found." if error == ErrorCode.group_id_not_found else None
    return {"error_code": error, "error_message": message, "group_id": group_id,
            "group_state": state, "group_epoch": -1, "assignment_epoch": -1,
            "assignor_name": "", "members": [],
            "authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN}


@dispatch.handles(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, 1)
async def consumer_group_describe(ctx: RequestContext, request: Any) -> Any:
    if not consumer_protocol_enabled(ctx):
        return ctx.respond(groups=[described_absent(g, ErrorCode.unsupported_version, "")
                                   for g in request.group_ids])
    return ctx.respond(groups=[_described(ctx, g) for g in request.group_ids])

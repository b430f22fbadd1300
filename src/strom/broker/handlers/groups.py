"""JoinGroup (11), SyncGroup (14), Heartbeat (12) and LeaveGroup (13).

Thin adapters: the rules live in strom.coordinator.group.membership (a pure state
machine); the coordinator runtime does the waiting.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.coordinator.group.membership import JoinRequest
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import millis


@dispatch.handles(ApiKey.JOIN_GROUP, 0, 9)
async def join_group(ctx: RequestContext, request: Any) -> Any:
    session_ms = millis(request.session_timeout)
    rebalance = getattr(request, "rebalance_timeout", None)
    result = await ctx.groups.coordinator.join(JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.client_id or "",
        client_host="/" + ctx.peer.rsplit(":", 1)[0],
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=millis(rebalance) if rebalance is not None else session_ms,
        protocol_type=request.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
        require_known_member_id=ctx.api_version >= 4,
    ))
    return ctx.respond(
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name if ctx.api_version >= 7 else result.protocol_name or "",
        leader=result.leader,
        skip_assignment=False,
        member_id=result.member_id,
        members=[{"member_id": m, "group_instance_id": i, "metadata": meta}
                 for m, i, meta in result.members],
    )


@dispatch.handles(ApiKey.SYNC_GROUP, 0, 5)
async def sync_group(ctx: RequestContext, request: Any) -> Any:
    result = await ctx.groups.coordinator.sync(
        request.group_id,
        int(request.generation_id),
        request.member_id,
        getattr(request, "group_instance_id", None),
        getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None),
        {a.member_id: bytes(a.assignment) for a in request.assignments},
    )
    return ctx.respond(error_code=result.error, protocol_type=result.protocol_type,
                       protocol_name=result.protocol_name, assignment=result.assignment)


@dispatch.handles(ApiKey.HEARTBEAT, 0, 4)
async def heartbeat(ctx: RequestContext, request: Any) -> Any:
    error = ctx.groups.coordinator.heartbeat(
        request.group_id, int(request.generation_id), request.member_id,
        getattr(request, "group_instance_id", None),
    )
    return ctx.respond(error_code=error)


@dispatch.handles(ApiKey.LEAVE_GROUP, 0, 5)
async def leave_group(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        members = [(request.member_id, None)]
    error, results = await ctx.groups.coordinator.leave(request.group_id, members)
    if ctx.api_version < 3:
        top = error if error != ErrorCode.none else (results[0] if results else ErrorCode.none)
        return ctx.respond(error_code=top)
    return ctx.respond(
        error_code=error,
        members=[{"member_id": m, "group_instance_id": i, "error_code": e}
                 for (m, i), e in zip(members, results, strict=False)],
    )

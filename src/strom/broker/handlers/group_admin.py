"""DescribeGroups (15), ListGroups (16) and DeleteGroups (42)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers import share_groups
from strom.broker.network import dispatch
from strom.coordinator.group.model import Group, GroupState
from strom.protocol.api_keys import ApiKey
from strom.protocol.metadata_response import AUTHORIZED_OPERATIONS_UNKNOWN


def _describe(ctx: RequestContext, group_id: str) -> dict[str, Any]:
    error, group = ctx.groups.coordinator.describe(group_id)
    if error == ErrorCode.group_id_not_found or group is None:
        code = ErrorCode.none if error == ErrorCode.group_id_not_found else error
        return {"error_code": code, "group_id": group_id, "group_state": "Dead",
                "protocol_type": "", "protocol_data": "", "members": [],
                "authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN}
    return {"error_code": ErrorCode.none, "group_id": group_id, **_summary(group),
            "authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN}


def _summary(group: Group) -> dict[str, Any]:
    stable = group.is_(GroupState.STABLE)
    protocol = group.protocol_name or ""
    return {
        "group_state": group.state.value,
        "protocol_type": group.protocol_type or "",
        "protocol_data": protocol if stable else "",
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id,
             "client_id": m.client_id, "client_host": m.client_host,
             "member_metadata": m.metadata_for(protocol) if stable else b"",
             "member_assignment": m.assignment if stable else b""}
            for m in group.members.values()
        ],
    }


@dispatch.handles(ApiKey.DESCRIBE_GROUPS, 0, 5)
async def describe_groups(ctx: RequestContext, request: Any) -> Any:
    return ctx.respond(groups=[_describe(ctx, g) for g in request.groups])


@dispatch.handles(ApiKey.LIST_GROUPS, 0, 5)
async def list_groups(ctx: RequestContext, request: Any) -> Any:
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    states = getattr(request, "states_filter", ())
    rows = []
    if not types or "classic" in types:
        rows += [{"group_id": g.group_id, "protocol_type": g.protocol_type or "",
                  "group_state": g.state.value, "group_type": "classic"}
                 for g in ctx.groups.coordinator.list_groups(states)]
    if not types or "consumer" in types:  # KIP-848 groups
        rows += [{"group_id": g.group_id, "protocol_type": "consumer", "group_state": g.state,
                  "group_type": "consumer"}
                 for g in ctx.groups.coordinator.list_consumer_groups(states)]
    if not types or "share" in types:  # KIP-932 groups
        rows += [{"group_id": g.group_id, "protocol_type": "share", "group_state": g.state,
                  "group_type": "share"}
                 for g in share_groups.listed_groups(ctx, {s.lower() for s in states})]
    return ctx.respond(error_code=ErrorCode.none,
                       groups=sorted(rows, key=lambda row: row["group_id"]))


@dispatch.handles(ApiKey.DELETE_GROUPS, 0, 2)
async def delete_groups(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.groups.coordinator
    results = []
    for g in request.groups_names:
        error = await coordinator.delete_group(g)
        if error == ErrorCode.none:  # a share group's share-partition state goes with it
            share_groups.forget_group(ctx, g)
        results.append({"group_id": g, "error_code": error})
    return ctx.respond(results=results)

"""FindCoordinator (10): which broker coordinates a group (or a transactional id).

Group coordinators are found by hashing the group id onto `__consumer_offsets`, created
on first use. Transaction coordinators do not exist yet, so transactional lookups are
refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients treat as fatal with a
clear message, rather than COORDINATOR_NOT_AVAILABLE, which they would retry forever.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey

GROUP, TRANSACTION = 0, 1


def _find(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "node_id": -1, "host": "", "port": -1}
    if key_type == TRANSACTION:
        entry.update(error_code=ErrorCode.transactional_id_authorization_failed,
                     error_message="Transactions are not supported by this broker yet")
        return entry
    if key_type != GROUP:
        entry.update(error_code=ErrorCode.invalid_request,
                     error_message=f"Unknown coordinator key type {key_type}")
        return entry
    if not key:
        entry.update(error_code=ErrorCode.invalid_group_id, error_message="Empty group id")
        return entry
    error, leader = ctx.groups.coordinator_for(key)
    broker = ctx.metadata.image().brokers.get(leader)
    if error != ErrorCode.none or broker is None:
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="The coordinator is not available.")
        return entry
    entry.update(error_code=ErrorCode.none, node_id=broker.broker_id, host=broker.host,
                 port=broker.port)
    return entry


@dispatch.handles(ApiKey.FIND_COORDINATOR, 0, 6)
async def handle(ctx: RequestContext, request: Any) -> Any:
    key_type = int(getattr(request, "key_type", GROUP))
    if ctx.api_version >= 4:
        return ctx.respond(coordinators=[_find(ctx, k, key_type) for k in request.coordinator_keys])
    entry = _find(ctx, request.key, key_type)
    entry.pop("key")
    return ctx.respond(**entry)

"""FindCoordinator (10): which broker coordinates a group (or a transactional id).

Group coordinators are found by hashing the group id onto `__consumer_offsets`, and
transaction coordinators by hashing the transactional id onto `__transaction_state`,
share coordinators (key type 2, `group:topicId:partition`) onto `__share_group_state`
(each topic created on first use); the coordinator is the partition's leader.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey

GROUP, TRANSACTION, SHARE = 0, 1, 2


def _find(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "node_id": -1, "host": "", "port": -1}
    if key_type == TRANSACTION:
        return _find_transaction(ctx, key, entry)
    if key_type == SHARE:
        from strom.broker.handlers.share_state import find_share_coordinator

        return _answer(ctx, entry, *find_share_coordinator(ctx, key))
    if key_type != GROUP:
        entry.update(error_code=ErrorCode.invalid_request,
                     error_message=f"Unknown coordinator key type {key_type}")
        return entry
    if not key:
        entry.update(error_code=ErrorCode.invalid_group_id, error_message="Empty group id")
        return entry
    return _answer(ctx, entry, *ctx.groups.coordinator_for(key))


def _find_transaction(ctx: RequestContext, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    txns = ctx.services.transactions
    if not key:
        entry.update(error_code=ErrorCode.invalid_request,
                     error_message="Empty transactional id")
        return entry
    if txns is None:
        return _answer(ctx, entry, ErrorCode.coordinator_not_available, -1)
    return _answer(ctx, entry, *txns.coordinator_for(key))


def _answer(ctx: RequestContext, entry: dict[str, Any], error: ErrorCode, leader: int
            ) -> dict[str, Any]:
    broker = ctx.metadata.image().brokers.get(leader)
    if error != ErrorCode.none or broker is None:
        entry.update(error_code=ErrorCode.coordinator_not_available,
                     error_message="The coordinator is not available.")
        return entry
    host, port = ctx.endpoint(broker)
    entry.update(error_code=ErrorCode.none, node_id=broker.broker_id, host=host, port=port)
    return entry


@dispatch.handles(ApiKey.FIND_COORDINATOR, 0, 6)
async def handle(ctx: RequestContext, request: Any) -> Any:
    key_type = int(getattr(request, "key_type", GROUP))
    if ctx.api_version >= 4:
        return ctx.respond(coordinators=[_find(ctx, k, key_type) for k in request.coordinator_keys])
    entry = _find(ctx, request.key, key_type)
    entry.pop("key")
    return ctx.respond(**entry)

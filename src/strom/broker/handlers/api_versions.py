"""ApiVersions (18): the list of APIs and version ranges, derived from the registry."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.consumer_groups import CONSUMER_APIS, consumer_protocol_enabled
from strom.broker.handlers.share_groups import SHARE_APIS, share_enabled, share_version
from strom.broker.network import dispatch
from strom.protocol import apis, framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build


def _api_keys(ctx: RequestContext | None = None) -> list[dict[str, int]]:
    """The registry's APIs; the KIP-848 ones only when the consumer protocol is enabled
    (`group.coordinator.rebalance.protocols`), since clients switch to it on sight, and
    the KIP-932 ones only while `share.version` is finalized (both by default, as Kafka
    4.4 serves them); without a context (no broker config) neither."""
    hidden = set() if ctx is not None and consumer_protocol_enabled(ctx) else set(CONSUMER_APIS)
    if ctx is None or not share_enabled(ctx):
        hidden |= SHARE_APIS
    return [
        {"api_key": key, "min_version": lo, "max_version": hi}
        for key, lo, hi in dispatch.advertised() if key not in hidden
    ]


def _finalized_levels(ctx: RequestContext) -> dict[str, tuple[int, int]]:
    """Feature name → (highest supported level, finalized level), as Kafka lists them:
    `transaction.version` at 2 only when configured (`strom.transaction.version`: a Kafka
    4 client then ends transactions with epoch bumps, KIP-890 part 2; without it clients
    stay on version 1), and `share.version` while share groups are served."""
    levels: dict[str, tuple[int, int]] = {}
    txns = ctx.services.transactions
    if txns is not None and txns.transaction_version >= 2:
        levels["transaction.version"] = (2, 2)
    share = share_version(ctx.config)
    if share >= 1:
        levels["share.version"] = (1, share)
    return levels


def _features(ctx: RequestContext) -> dict[str, Any]:
    levels = _finalized_levels(ctx)
    if not levels:
        return {}
    return {"supported_features": [{"name": name, "min_version": 0, "max_version": top}
                                   for name, (top, _) in levels.items()],
            "finalized_features_epoch": 1,
            "finalized_features": [{"name": name, "max_version_level": level,
                                    "min_version_level": level}
                                   for name, (_, level) in levels.items()]}


@dispatch.handles(ApiKey.API_VERSIONS, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    return build(ctx.response_type(), error_code=ErrorCode.none, api_keys=_api_keys(ctx),
                 **_features(ctx))


def unsupported_version_response(correlation_id: int, services: Any = None) -> bytes:
    """KIP-511: a version we lack is answered as v0 with UNSUPPORTED_VERSION and our list,
    so the client can pick a version and ask again; `services` (anything with the
    broker's `config`) makes it the list this broker advertises."""
    body: Any = build(
        apis.response_type(ApiKey.API_VERSIONS, 0),
        error_code=ErrorCode.unsupported_version,
        api_keys=_api_keys(services),
    )
    return framing.encode_response(correlation_id, ApiKey.API_VERSIONS, 0, body)

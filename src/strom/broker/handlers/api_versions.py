"""ApiVersions (18): the list of APIs and version ranges, derived from the registry."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.protocol import apis, framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build


def _api_keys() -> list[dict[str, int]]:
    return [
        {"api_key": key, "min_version": lo, "max_version": hi}
        for key, lo, hi in dispatch.advertised()
    ]


@dispatch.handles(ApiKey.API_VERSIONS, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    return build(ctx.response_type(), error_code=ErrorCode.none, api_keys=_api_keys())


def unsupported_version_response(correlation_id: int) -> bytes:
    """KIP-511: a version we lack is answered as v0 with UNSUPPORTED_VERSION and our list,
    so the client can pick a version and ask again."""
    body: Any = build(
        apis.response_type(ApiKey.API_VERSIONS, 0),
        error_code=ErrorCode.unsupported_version,
        api_keys=_api_keys(),
    )
    return framing.encode_response(correlation_id, ApiKey.API_VERSIONS, 0, body)

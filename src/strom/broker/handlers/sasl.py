"""SaslHandshake (17) and SaslAuthenticate (36) outside an authentication exchange.

On a SASL listener the connection's `Authenticator` answers these while the client
authenticates (and re-authenticates, KIP-368). What reaches these handlers arrived where
no exchange can happen — on a PLAINTEXT or SSL listener, or a SaslAuthenticate after
authentication completed — and is answered ILLEGAL_SASL_STATE, as Kafka's KafkaApis does.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey


@dispatch.handles(ApiKey.SASL_HANDSHAKE, 0, 1)
async def handshake(ctx: RequestContext, request: Any) -> Any:
    return ctx.respond(error_code=ErrorCode.illegal_sasl_state, mechanisms=[])


@dispatch.handles(ApiKey.SASL_AUTHENTICATE, 0, 2)
async def authenticate(ctx: RequestContext, request: Any) -> Any:
    return ctx.respond(error_code=ErrorCode.illegal_sasl_state,
                       error_message="SaslAuthenticate request received after successful "
                                     "authentication",
                       auth_bytes=b"", session_lifetime=0)

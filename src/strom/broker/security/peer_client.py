"""The client side of broker-to-broker connections on the inter-broker listener.

Brokers reach each other on the listener `inter.broker.listener.name` names (or the
first of `security.inter.broker.protocol`), as Kafka does: over TLS with the listener's
`ssl.*` settings (truststore to verify the peer, keystore when the peer asks for a
client certificate, hostname checked per `ssl.endpoint.identification.algorithm`), and
on SASL listeners authenticated with `sasl.mechanism.inter.broker.protocol` and the
`username`/`password` of the listener's JAAS entry for that mechanism
(`listener.name.<listener>.<mechanism>.sasl.jaas.config`), as Kafka's brokers log in.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

from strom.broker.security import jaas, tls
from strom.broker.security.credentials import MECHANISMS
from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig
from strom.config.security_protocols import inter_broker_listener, protocol_map
from strom.protocol import framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.sasl_client import SaslClientError, ScramClient
from strom.protocol.schema import build

log = logging.getLogger(__name__)
_SIZE = struct.Struct(">i")
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class PeerAuthenticationFailed(OSError):
    """The other broker refused this broker's TLS or SASL login."""


@dataclass(frozen=True)
class InterBrokerSecurity:
    listener: str
    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    mechanism: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)

    async def open(self, host: str, port: int, client_id: str) -> Streams:
        """A connection to another broker, TLS and SASL done."""
        context = self.ssl_context
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context is not None else None)
        if self.mechanism is not None:
            try:
                await _sasl_login(self, reader, writer, client_id)
            except BaseException:
                writer.close()
                raise
        log.info("connected to the broker at %s:%d on listener %s (%s%s)", host, port,
                 self.listener, self.protocol,
                 f", {self.mechanism} as {self.username}" if self.mechanism else "")
        return reader, writer


def build_inter_broker(config: BrokerConfig) -> InterBrokerSecurity:
    """What this broker uses to reach the others; InvalidConfig when unusable."""
    name = inter_broker_listener(config)
    protocol = protocol_map(config).get(name, "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return InterBrokerSecurity(name)

    def get(key: str) -> str | None:
        return tls.listener_value(config, name, key)

    context = tls.client_context(get) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return InterBrokerSecurity(name, protocol, context)
    mechanism = (config.raw("sasl.mechanism.inter.broker.protocol") or "GSSAPI").upper()
    if mechanism not in ("PLAIN", *MECHANISMS):
        raise InvalidConfig(f"sasl.mechanism.inter.broker.protocol {mechanism} is not "
                            "supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
    key = f"listener.name.{name.lower()}.{mechanism.lower()}.sasl.jaas.config"
    text = config.props.get(key)
    options = {} if not text else next(
        (m.options for m in jaas.parse(text) if "username" in m.options), {})
    if "username" not in options or "password" not in options:
        raise InvalidConfig(f"inter-broker SASL needs username and password in {key}")
    return InterBrokerSecurity(name, protocol, context, mechanism, options["username"],
                               options["password"])


async def _sasl_login(security: InterBrokerSecurity, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, client_id: str) -> None:
    correlation = itertools.count(1)

    async def call(api_key: ApiKey, version: int, body: Any) -> Any:
        cid = next(correlation)
        writer.write(framing.encode_request(cid, api_key, version, body, client_id))
        await writer.drain()
        (size,) = _SIZE.unpack(await reader.readexactly(4))
        return framing.decode_response(await reader.readexactly(size), api_key, version).body

    from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
    from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

    mechanism = security.mechanism
    assert mechanism is not None
    shake = await call(ApiKey.SASL_HANDSHAKE, 1, build(SaslHandshakeRequest, mechanism=mechanism))
    if int(shake.error_code) != 0:
        raise PeerAuthenticationFailed(f"SASL mechanism {mechanism} refused by the peer "
                                       f"(it offers {', '.join(shake.mechanisms)})")

    async def step(token: bytes) -> bytes:
        answer = await call(ApiKey.SASL_AUTHENTICATE, 2,
                            build(SaslAuthenticateRequest, auth_bytes=token))
        if int(answer.error_code) != 0:
            raise PeerAuthenticationFailed(f"SASL {mechanism} login as {security.username} "
                                           f"refused: {answer.error_message}")
        return bytes(answer.auth_bytes)

    if mechanism == "PLAIN":
        await step(b"\0" + security.username.encode() + b"\0" + security.password.encode())
        return
    await _scram_login(mechanism, security.username, security.password, step)


async def _scram_login(mechanism: str, user: str, password: str, step: Any) -> None:
    """RFC 5802's client (`strom.protocol.sasl_client`, shared with the client library):
    the server must extend our nonce and prove it knows the key."""
    client = ScramClient(mechanism, user, password)
    try:
        client.verify(await step(client.final(await step(client.first()))))
    except SaslClientError as exc:
        raise PeerAuthenticationFailed(f"the peer's SCRAM exchange failed: {exc}") from None

"""Kafka's SASL state machine for one connection (SaslServerAuthenticator).

Before a client is authenticated only ApiVersions (once) and SaslHandshake are served;
anything else closes the connection, as Kafka does ("Unexpected Kafka request of type
... during SASL handshake"). SaslHandshake v0 is followed by raw SASL tokens (a size and
the token, no request header); v1 by SaslAuthenticate requests. A mechanism the
listener does not enable is answered UNSUPPORTED_SASL_MECHANISM, a failed exchange
SASL_AUTHENTICATION_FAILED; both close the connection once the answer is sent.

KIP-368: with `connections.max.reauth.ms` > 0, SaslAuthenticate v1+ tells the client its
session lifetime; the client re-authenticates in place with a new SaslHandshake (same
mechanism, same principal), and a request other than SaslHandshake after the session
expired closes the connection.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.security.listener import ListenerSecurity
from strom.broker.security.oauthbearer import OAuthBearerServer
from strom.broker.security.plain import PlainServer
from strom.broker.security.scram import AuthenticationFailed, ScramServer
from strom.protocol import apis
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build

log = logging.getLogger(__name__)


class State(enum.Enum):
    HANDSHAKE_OR_VERSIONS = 1  # nothing yet: ApiVersions or SaslHandshake
    HANDSHAKE = 2  # ApiVersions answered: SaslHandshake only
    AUTHENTICATE = 3  # v1 handshake done: SaslAuthenticate requests
    RAW_TOKENS = 4  # v0 handshake done: raw tokens
    COMPLETE = 5
    FAILED = 6


class SaslRefused(Exception):
    """Close the connection (without an answer: the message goes to the log)."""


@dataclass
class Answer:
    """What the connection sends: a response body (or raw token bytes), and whether
    the connection closes once it is written."""

    body: Any
    close: bool = False
    raw: bytes | None = None


class Authenticator:
    def __init__(self, security: ListenerSecurity, peer: str,
                 clock: Any = time.monotonic) -> None:
        self.security = security
        self.peer = peer
        self.clock = clock
        self.state = State.HANDSHAKE_OR_VERSIONS
        self.principal: str | None = None
        self.mechanism: str | None = None
        self.reauthenticating = False
        self._server: PlainServer | ScramServer | OAuthBearerServer | None = None
        self._expires_at: float | None = None

    # --- what the connection asks ------------------------------------------------------

    @property
    def wants_raw_token(self) -> bool:
        return self.state is State.RAW_TOKENS

    def takes(self, api_key: int) -> bool:
        """Whether this request is the authenticator's to answer rather than a handler's;
        raises SaslRefused when it may not be served at all in this state."""
        if self.state is State.COMPLETE:
            if api_key == ApiKey.SASL_HANDSHAKE:
                return True  # KIP-368 re-authentication
            if self._expires_at is not None and self.clock() >= self._expires_at:
                raise SaslRefused(f"session of {self.principal} expired "
                                  "(connections.max.reauth.ms) without re-authentication")
            return False
        if self.state is State.HANDSHAKE_OR_VERSIONS and api_key == ApiKey.API_VERSIONS:
            self.state = State.HANDSHAKE
            return False  # the ordinary handler answers
        allowed = {State.HANDSHAKE_OR_VERSIONS: ApiKey.SASL_HANDSHAKE,
                   State.HANDSHAKE: ApiKey.SASL_HANDSHAKE,
                   State.AUTHENTICATE: ApiKey.SASL_AUTHENTICATE}.get(self.state)
        if api_key != allowed:
            phase = "authentication" if self.state is State.AUTHENTICATE else "handshake"
            raise SaslRefused(f"Unexpected Kafka request of type {apis.api_name(api_key)} "
                              f"during SASL {phase}.")
        return True

    def answer(self, api_key: int, version: int, request: Any) -> Answer:
        if api_key == ApiKey.SASL_HANDSHAKE:
            return self._handshake(version, request)
        return self._authenticate(version, request)

    def raw_token(self, token: bytes) -> bytes:
        """A v0 raw token: the reply token, or SaslRefused (v0 has no error answer)."""
        try:
            reply = self._evaluate(token)
        except AuthenticationFailed as exc:
            self.state = State.FAILED
            raise SaslRefused(str(exc)) from None
        if self._server is not None and self._server.complete:
            self._complete()
        return reply

    # --- the steps ---------------------------------------------------------------------

    def _handshake(self, version: int, request: Any) -> Answer:
        mechanism = str(request.mechanism)
        response = apis.response_type(ApiKey.SASL_HANDSHAKE, version)
        enabled = list(self.security.mechanisms)
        if self.state is State.COMPLETE:
            if version < 1 or mechanism != self.mechanism:
                self.state = State.FAILED
                return Answer(build(response, error_code=ErrorCode.illegal_sasl_state,
                                    mechanisms=enabled), close=True)
            self.reauthenticating = True
        if mechanism not in enabled:
            self.state = State.FAILED
            log.info("%s: unsupported SASL mechanism %s", self.peer, mechanism)
            return Answer(build(response, error_code=ErrorCode.unsupported_sasl_mechanism,
                                mechanisms=enabled), close=True)
        self.mechanism = mechanism
        self._server = self._new_server(mechanism)
        self.state = State.AUTHENTICATE if version >= 1 else State.RAW_TOKENS
        return Answer(build(response, error_code=ErrorCode.none, mechanisms=enabled))

    def _new_server(self, mechanism: str) -> PlainServer | ScramServer | OAuthBearerServer:
        if mechanism == "PLAIN":
            return PlainServer(self.security.plain_users)
        if mechanism == "OAUTHBEARER":
            return OAuthBearerServer()
        lookup = self.security.scram_lookup
        assert lookup is not None  # every SASL listener has one
        return ScramServer(mechanism, lookup)

    def _authenticate(self, version: int, request: Any) -> Answer:
        response = apis.response_type(ApiKey.SASL_AUTHENTICATE, version)
        try:
            reply = self._evaluate(bytes(request.auth_bytes))
        except AuthenticationFailed as exc:
            self.state = State.FAILED
            log.info("%s: SASL %s authentication failed: %s", self.peer, self.mechanism, exc)
            return Answer(self._auth_response(response, version, ErrorCode.sasl_authentication_failed,
                                              str(exc), b""), close=True)
        lifetime = 0
        if self._server is not None and self._server.complete:
            lifetime = self._complete()
            if self.state is State.FAILED:
                return Answer(self._auth_response(
                    response, version, ErrorCode.sasl_authentication_failed,
                    "Cannot change principals during re-authentication", b""), close=True)
        return Answer(self._auth_response(response, version, ErrorCode.none, None, reply,
                                          lifetime))

    @staticmethod
    def _auth_response(response: type, version: int, error: ErrorCode, message: str | None,
                       reply: bytes, lifetime: int = 0) -> Any:
        fields: dict[str, Any] = {"error_code": error, "error_message": message,
                                  "auth_bytes": reply}
        if version >= 1:
            fields["session_lifetime"] = lifetime
        return build(response, **fields)

    def _evaluate(self, token: bytes) -> bytes:
        if self._server is None:
            raise AuthenticationFailed("SASL exchange without a handshake")
        return self._server.evaluate(token)

    def _complete(self) -> int:
        """The exchange succeeded: the principal, and the session lifetime (ms, 0 for
        none) a v1+ SaslAuthenticate answer carries."""
        assert self._server is not None
        principal = f"User:{self._server.username}"
        token_expiry = getattr(self._server, "expires_at_ms", None)
        if self.reauthenticating and principal != self.principal:
            self.state = State.FAILED
            return 0
        self.principal = principal
        self.state = State.COMPLETE
        self.reauthenticating = False
        self._server = None
        reauth = self.security.reauth_ms
        if reauth > 0 and token_expiry is not None:  # KIP-368: never past the token's expiry
            reauth = max(1, min(reauth, int(token_expiry - time.time() * 1000)))
        self._expires_at = self.clock() + reauth / 1000 if reauth > 0 else None
        if reauth > 0:
            log.debug("%s authenticated as %s for %d ms", self.peer, principal, reauth)
        return reauth

"""SASL OAUTHBEARER (RFC 7628) with unsecured JWTs, for development, as Kafka's default
server callback (OAuthBearerUnsecuredValidatorCallbackHandler) accepts them.

The client sends `n,,<0x01>auth=Bearer <token><0x01><0x01>`; the token is a JWS with
`"alg":"none"` whose claims name the principal (`sub`) and the expiry (`exp`, seconds).
Nothing proves who signed it: anyone may claim any name. A listener offering
OAUTHBEARER is therefore logged with a warning at start. A rejected token is answered,
as RFC 7628 and Kafka do, with an error challenge (`{"status":"invalid_token"}`); the
client acknowledges it with a single 0x01 and the exchange fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from strom.broker.security.scram import AuthenticationFailed

_SEP = "\x01"


class OAuthBearerServer:
    mechanism = "OAUTHBEARER"

    def __init__(self, clock_ms: Callable[[], float] = lambda: time.time() * 1000) -> None:
        self.clock_ms = clock_ms
        self.username = ""
        self.complete = False
        self.expires_at_ms: float | None = None
        self._rejected: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        if self._rejected is not None:  # the client's 0x01 after our error challenge
            raise AuthenticationFailed(f"Authentication failed: {self._rejected}")
        try:
            claims = _claims(_bearer_token(token.decode("utf-8")))
            self._validate(claims)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            self._rejected = str(exc) or "invalid token"
            return json.dumps({"status": "invalid_token"}).encode()
        self.username = str(claims["sub"])
        self.expires_at_ms = float(claims["exp"]) * 1000
        self.complete = True
        return b""

    def _validate(self, claims: dict[str, Any]) -> None:
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise ValueError("the token has no principal (sub) claim")
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise ValueError("the token has no expiration (exp) claim")
        if expires * 1000 <= self.clock_ms():
            raise ValueError("the token has expired")
        issued = claims.get("iat")
        if isinstance(issued, int | float) and issued > expires:
            raise ValueError("the token was issued after it expires")


def _bearer_token(message: str) -> str:
    header, sep, rest = message.partition(_SEP)
    if not sep or not header.startswith(("n,", "y,")) or not rest.endswith(_SEP * 2):
        raise ValueError("malformed OAUTHBEARER client message")
    pairs = dict(kv.split("=", 1) for kv in rest[:-2].split(_SEP) if "=" in kv)
    auth = pairs.get("auth", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ValueError("no bearer token")
    return token


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("the token is not a JWS (header.payload.signature)")
    header = json.loads(_b64url(parts[0]))
    if not isinstance(header, dict) or header.get("alg") != "none":
        raise ValueError("only unsecured tokens (alg none) are accepted")
    claims = json.loads(_b64url(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("the token's payload is not a JSON object")
    return claims


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the token is not base64url") from exc

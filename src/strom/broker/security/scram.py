"""The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677).

Checks that close the CVE-2024-56128 class: the client-final nonce must be exactly the
nonce the server sent (the client's nonce extended by the server's), the channel-binding
attribute must repeat the client's GS2 header, and the proof is compared in constant
time. An unknown user gets a server-first message with a salt derived from the name (so
the same every time) and fails at the proof, exactly like a wrong password: the
exchange does not tell which users exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import string
from collections.abc import Callable

from strom.broker.security.credentials import (
    MECHANISMS,
    MIN_ITERATIONS,
    ScramCredential,
    hmac_digest,
)

log = logging.getLogger(__name__)
CredentialLookup = Callable[[str, str], ScramCredential | None]
_FAKE_SALT_KEY = os.urandom(32)  # per process: the decoy salts of unknown users


class AuthenticationFailed(Exception):
    """The exchange failed; the message is what Kafka answers the client."""


class ScramServer:
    """One exchange: `evaluate(client-first)` → server-first, `evaluate(client-final)`
    → server-final; then `complete` and `username`."""

    def __init__(self, mechanism: str, lookup: CredentialLookup) -> None:
        self.mechanism = mechanism
        self.hash_name = MECHANISMS[mechanism]
        self.lookup = lookup
        self.username = ""
        self.complete = False
        self._step = 0
        self._credential: ScramCredential | None = None
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def evaluate(self, token: bytes) -> bytes:
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail() from None
        if self._step == 0:
            self._step = 1
            return self._first(text).encode()
        if self._step == 1:
            self._step = 2
            return self._final(text).encode()
        raise self._fail()

    def _fail(self, reason: str = "malformed message") -> AuthenticationFailed:
        log.debug("SCRAM %s exchange of %r failed: %s", self.mechanism, self.username, reason)
        return AuthenticationFailed(
            "Authentication failed during authentication due to invalid credentials with "
            f"SASL mechanism {self.mechanism}")

    def _first(self, text: str) -> str:
        parts = text.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y"):  # 'p': channel binding, unsupported
            raise self._fail()
        authzid = parts[1]
        self._gs2_header = f"{parts[0]},{authzid},"
        bare = parts[2]
        attrs = _attributes(bare)
        username, nonce = attrs.get("n"), attrs.get("r")
        if not username or not nonce or not bare.startswith("n=") or "m" in attrs:
            raise self._fail()
        self.username = _saslname(username)
        if authzid and _saslname(authzid.removeprefix("a=")) != self.username:
            raise self._fail()
        if attrs.get("tokenauth", "false").lower() == "true":
            raise self._fail()  # delegation tokens are not supported
        self._client_first_bare = bare
        self._credential = self.lookup(self.username, self.mechanism)
        salt, iterations = self._salt_and_iterations()
        self._nonce = nonce + _server_nonce()
        self._server_first = (f"r={self._nonce},s={base64.b64encode(salt).decode()},"
                              f"i={iterations}")
        return self._server_first

    def _salt_and_iterations(self) -> tuple[bytes, int]:
        if self._credential is not None:
            return self._credential.salt, self._credential.iterations
        decoy = hmac_digest("sha256", _FAKE_SALT_KEY, self.username.encode())
        return decoy, MIN_ITERATIONS

    def _final(self, text: str) -> str:
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise self._fail()
        attrs = _attributes(without_proof)
        channel = base64.b64encode(self._gs2_header.encode()).decode()
        nonce_ok = hmac.compare_digest(attrs.get("r", "").encode(), self._nonce.encode())
        if not nonce_ok:
            raise self._fail("the nonce is not the server's")
        if attrs.get("c") != channel or not without_proof.startswith("c="):
            raise self._fail("channel binding does not repeat the GS2 header")
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError:
            raise self._fail() from None
        auth_message = ",".join((self._client_first_bare, self._server_first,
                                 without_proof)).encode()
        credential = self._credential
        if credential is None:
            raise self._fail("unknown user")
        if not self._proof_ok(credential, auth_message, proof):
            raise self._fail("wrong proof")
        self.complete = True
        signature = hmac_digest(self.hash_name, credential.server_key, auth_message)
        return "v=" + base64.b64encode(signature).decode()

    def _proof_ok(self, credential: ScramCredential, auth_message: bytes,
                  proof: bytes) -> bool:
        signature = hmac_digest(self.hash_name, credential.stored_key, auth_message)
        if len(proof) != len(signature):
            return False
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        computed = hashlib.new(self.hash_name, client_key).digest()
        return hmac.compare_digest(computed, credential.stored_key)


def _server_nonce() -> str:
    """32 random letters and digits: printable, and safe for clients that parse the
    nonce strictly (an older librdkafka rejected '-' and '_')."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def _attributes(text: str) -> dict[str, str]:
    """`k=v,k=v` attributes (values may hold '=': base64)."""
    attrs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep:
            attrs[key] = value
    return attrs


def _saslname(text: str) -> str:
    """RFC 5802's escaping of ',' and '=' in names."""
    return text.replace("=2C", ",").replace("=3D", "=")

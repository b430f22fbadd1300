"""The client side of SASL PLAIN and SCRAM-SHA-256/512 (RFC 4616, RFC 5802, RFC 7677),
as tokens in and tokens out, no I/O.

Both the broker (logging in to another broker on the inter-broker listener) and the
client library (`strom.client.security`, for requests librdkafka cannot send) need a
SCRAM client; the layer both may import without crossing the import contracts is
`strom.protocol`, which does no I/O, so the exchange lives here once. The client checks
what protects it: the server must extend the client's nonce, offer at least 4096
iterations (Kafka's minimum), and prove it knows the server key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
"""Mechanism name → hashlib name."""
MIN_ITERATIONS = 4096


class SaslClientError(Exception):
    """The server's side of the exchange is malformed or does not prove itself."""


def plain_token(username: str, password: str, authzid: str = "") -> bytes:
    """PLAIN's only message: authzid NUL authcid NUL password."""
    return f"{authzid}\0{username}\0{password}".encode()


def _saslname(name: str) -> str:
    """RFC 5802's escaping of ',' and '=' in user names."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hash_name).digest()


class ScramClient:
    """One exchange: `first()` → client-first; `final(server-first)` → client-final;
    `verify(server-final)` raises unless the server signature is right."""

    def __init__(self, mechanism: str, username: str, password: str,
                 nonce: str | None = None) -> None:
        if mechanism not in SCRAM_HASHES:
            raise ValueError(f"not a SCRAM mechanism: {mechanism}")
        self.mechanism = mechanism
        self._hash = SCRAM_HASHES[mechanism]
        self._password = password
        self._nonce = nonce or secrets.token_hex(16)
        self._first_bare = f"n={_saslname(username)},r={self._nonce}"
        self._expected = b""

    def first(self) -> bytes:
        return f"n,,{self._first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        """The proof for the server's challenge (its nonce, salt and iterations)."""
        text = server_first.decode("utf-8", "replace")
        attrs = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        nonce, salt, iterations = attrs.get("r", ""), attrs.get("s", ""), attrs.get("i", "")
        if (not nonce.startswith(self._nonce) or nonce == self._nonce
                or not iterations.isdigit() or int(iterations) < MIN_ITERATIONS):
            raise SaslClientError(f"the server's {self.mechanism} challenge is malformed")
        try:
            salt_bytes = base64.b64decode(salt, validate=True)
        except ValueError:
            raise SaslClientError(f"the server's {self.mechanism} salt is not base64") from None
        salted = hashlib.pbkdf2_hmac(self._hash, self._password.encode(), salt_bytes,
                                     int(iterations))
        client_key = _hmac(self._hash, salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        signature = _hmac(self._hash, stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = _hmac(self._hash, salted, b"Server Key")
        self._expected = b"v=" + base64.b64encode(_hmac(self._hash, server_key, auth_message))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        """Constant-time check of the server signature: a server that does not know the
        user's server key is not the cluster the client meant to reach."""
        if not self._expected or not hmac.compare_digest(server_final, self._expected):
            raise SaslClientError(f"the server's {self.mechanism} signature is wrong")

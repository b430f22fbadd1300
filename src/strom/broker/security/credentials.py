"""SCRAM credentials in Kafka's stored form, kept in the metadata store.

Kafka keeps a user's SCRAM credentials as the user entity's configs (ZooKeeper:
`/config/users/<user>`), one per mechanism:
`SCRAM-SHA-256` = `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`.
Only the salted keys are stored (RFC 5802): the password cannot be read back from them.
Strom uses the same strings in both stores (`MetadataImage.user_configs`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
"""Mechanism name → hashlib name."""
MECHANISM_TYPES = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
"""AlterUserScramCredentials' mechanism bytes (Kafka's ScramMechanism)."""
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def __repr__(self) -> str:  # keys stay out of logs
        return f"ScramCredential(iterations={self.iterations})"

    def to_config(self) -> str:
        """Kafka's persisted form."""
        b64 = base64.b64encode
        return (f"salt={b64(self.salt).decode()},stored_key={b64(self.stored_key).decode()},"
                f"server_key={b64(self.server_key).decode()},iterations={self.iterations}")

    @classmethod
    def from_config(cls, text: str) -> ScramCredential:
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        try:
            return cls(base64.b64decode(fields["salt"]), base64.b64decode(fields["stored_key"]),
                       base64.b64decode(fields["server_key"]), int(fields["iterations"]))
        except (KeyError, ValueError) as exc:
            raise ValueError("not a SCRAM credential") from exc


def hmac_digest(hash_name: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hash_name).digest()


def salted_password(mechanism: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC of the mechanism's hash."""
    return hashlib.pbkdf2_hmac(MECHANISMS[mechanism], password, salt, iterations)


def from_salted_password(mechanism: str, salt: bytes, salted: bytes,
                         iterations: int) -> ScramCredential:
    """What AlterUserScramCredentials sends (salt and salted password) → stored keys."""
    hash_name = MECHANISMS[mechanism]
    client_key = hmac_digest(hash_name, salted, b"Client Key")
    stored_key = hashlib.new(hash_name, client_key).digest()
    server_key = hmac_digest(hash_name, salted, b"Server Key")
    return ScramCredential(salt, stored_key, server_key, iterations)


def from_password(mechanism: str, password: str, iterations: int = MIN_ITERATIONS,
                  salt: bytes | None = None) -> ScramCredential:
    salt = salt if salt is not None else os.urandom(32)
    salted = salted_password(mechanism, password.encode(), salt, iterations)
    return from_salted_password(mechanism, salt, salted, iterations)


def user_credentials(configs: dict[str, str]) -> dict[str, ScramCredential]:
    """The SCRAM credentials among a user entity's configs, by mechanism."""
    found: dict[str, ScramCredential] = {}
    for mechanism in MECHANISMS:
        text = configs.get(mechanism)
        if text:
            try:
                found[mechanism] = ScramCredential.from_config(text)
            except ValueError:
                continue
    return found

"""The server side of SASL PLAIN (RFC 4616): one message `authzid NUL user NUL password`.

Users and passwords come from the listener's JAAS config (`user_<name>="<password>"`).
Passwords are compared in constant time; an unknown user and a wrong password get the
same answer, Kafka's "Invalid username or password".
"""

from __future__ import annotations

import hmac

from strom.broker.security.scram import AuthenticationFailed

_DECOY = b"\x00" * 32


class PlainServer:
    mechanism = "PLAIN"

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.username = ""
        self.complete = False

    def evaluate(self, token: bytes) -> bytes:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected 3 tokens, got "
                                       f"{len(parts)}")
        authzid, user, password = parts
        if not user:
            raise AuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise AuthenticationFailed("Authentication failed: password not specified")
        name = user.decode("utf-8", "replace")
        if authzid and authzid != user:
            raise AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is "
                "different from username")
        expected = self.users.get(name)
        matches = hmac.compare_digest(password, expected.encode() if expected is not None
                                      else _DECOY)
        if expected is None or not matches:
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        self.username = name
        self.complete = True
        return b""

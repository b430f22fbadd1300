"""Requests between the workers of a Connect cluster: forwarding to the leader, and the
session key that signs internal requests (KIP-507).

A follower that receives a config write forwards it to the leader's REST URL (from the
group assignment) with `?forward=true`; the leader may forward once more
(`forward=false`), never a third time, as Kafka's HerderRequestHandler allows two hops.
The leader keeps a session key in the config topic (`session-key`, Kafka's record) and
rotates it every `inter.worker.key.ttl.ms`; a worker signs the body of an internal request
(`POST /connectors/{c}/tasks`, `PUT /connectors/{c}/fence`, Kafka 4.4's paths) with HMAC-SHA256 under that
key and sends it base64 in `X-Connect-Authorization`, with the algorithm in
`X-Connect-Request-Signature-Algorithm`. Kafka's answers: 400 when the signature is
missing or its algorithm not accepted, 403 when it does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from strom.connect.api.errors import BadRequestError, ConnectError

SIGNATURE_HEADER = "X-Connect-Authorization"
ALGORITHM_HEADER = "X-Connect-Request-Signature-Algorithm"
HMAC_SHA256 = "HmacSHA256"
_DIGESTS = {HMAC_SHA256: hashlib.sha256}

NO_LEADER = ("Cannot complete request momentarily due to no known leader URL, likely because a "
             "rebalance was underway.")
STALE = ("Cannot complete request momentarily due to stale configuration (typically caused by a "
         "concurrent config change)")
CONFLICT = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"
MISSING_SIGNATURE = "Internal request missing required signature"
INVALID_SIGNATURE = "Internal request contained invalid signature."

#: the `forward` query parameter of the request being handled (None: a user's request)
FORWARD: ContextVar[str | None] = ContextVar("connect_forward", default=None)


class HttpStatusError(ConnectError):
    """An error answered with its own HTTP status (409, 403, or the leader's answer)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class SessionKey:
    key: bytes
    algorithm: str
    created_ms: int

    def expired(self, now_ms: int, ttl_ms: int) -> bool:
        return now_ms >= self.created_ms + ttl_ms


def new_session_key(algorithm: str, size_bits: int | None, now_ms: int) -> SessionKey:
    """A random key; 256 bits unless `inter.worker.key.size` says otherwise (Java's
    KeyGenerator default for HmacSHA256)."""
    return SessionKey(secrets.token_bytes((size_bits or 256) // 8), algorithm, now_ms)


def session_key_value(key: SessionKey) -> bytes:
    """The `session-key` record's value, as KafkaConfigBackingStore writes it."""
    return json.dumps({"key": base64.b64encode(key.key).decode(), "algorithm": key.algorithm,
                       "creation-timestamp": key.created_ms}).encode()


def parse_session_key(data: Mapping[str, Any] | None) -> SessionKey | None:
    if not data or "key" not in data:
        return None
    return SessionKey(base64.b64decode(data["key"]), str(data.get("algorithm", HMAC_SHA256)),
                      int(data.get("creation-timestamp", 0)))


def sign(key: SessionKey, body: bytes, algorithm: str = HMAC_SHA256) -> dict[str, str]:
    """The two headers that sign `body`."""
    digest = hmac.new(key.key, body, _DIGESTS[algorithm]).digest()
    return {SIGNATURE_HEADER: base64.b64encode(digest).decode(), ALGORITHM_HEADER: algorithm}


def verify(key: SessionKey | None, body: bytes, headers: Mapping[str, str], accepted: list[str]) -> None:
    """Raise Kafka's error for a request whose signature is missing, of an algorithm this
    worker does not accept, or wrong."""
    signature, algorithm = headers.get(SIGNATURE_HEADER.lower()), headers.get(ALGORITHM_HEADER.lower())
    if signature is None or algorithm is None:
        raise BadRequestError(MISSING_SIGNATURE)
    if algorithm not in accepted or algorithm not in _DIGESTS:
        raise BadRequestError(
            f"This worker does not support the '{algorithm}' key signing algorithm used by other "
            f"workers. This worker is currently configured to use: {accepted}. Check that all "
            f"workers' configuration files permit the same set of signature algorithms, and "
            f"correct any misconfigured worker and restart it.")
    if key is None:
        raise HttpStatusError(403, INVALID_SIGNATURE)
    expected = sign(key, body, algorithm)[SIGNATURE_HEADER]
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise HttpStatusError(403, INVALID_SIGNATURE)


def next_forward_flag() -> str:
    """The `forward` value of a request sent on: "true" for a user's request (one more hop
    allowed), "false" for one that was forwarded already; a third hop is a conflict."""
    flag = FORWARD.get()
    if flag is None:
        return "true"
    if flag.lower() == "true":
        return "false"
    raise HttpStatusError(409, CONFLICT)


def send(base_url: str, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None,
         headers: Mapping[str, str] | None = None, raw: bytes | None = None,
         timeout: float = 60.0) -> tuple[int, Any]:
    """(status, JSON answer or None) of one request to another worker; HttpStatusError
    with the other worker's status and message for an answer >= 400, 500 for no answer."""
    if not base_url.startswith(("http://", "https://")):
        raise HttpStatusError(500, f"not an http(s) URL: {base_url}")
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    url = base_url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as exc:
        raise HttpStatusError(exc.code, _message(exc.read(), exc.reason)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise HttpStatusError(500, f"IO Error trying to forward REST request: {exc}") from None
    return status, json.loads(answer) if answer else None


def _message(raw: bytes, reason: Any) -> str:
    try:
        answer = json.loads(raw)
    except ValueError:
        return str(reason)
    return str(answer.get("message", reason)) if isinstance(answer, dict) else str(reason)


class ForwardFlag:
    """ASGI middleware: puts the request's `forward` query parameter in `FORWARD` for the
    handler (and the thread it runs on) to read."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = FORWARD.set(query["forward"][-1] if "forward" in query else None)
        try:
            await self.app(scope, receive, send)
        finally:
            FORWARD.reset(token)

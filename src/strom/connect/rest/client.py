"""A small client of Kafka Connect's REST API on the standard library (urllib), for the
`strom connect` verbs and for workers forwarding requests to each other: no HTTP
dependency beyond what Python ships."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class RestError(Exception):
    """An answer with status >= 400 (Kafka's error body's message), or no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def call(base_url: str, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
    """The JSON answer of one request (None for an empty one); RestError otherwise."""
    if not base_url.startswith(("http://", "https://")):
        raise RestError(0, f"not an http(s) URL: {base_url}")  # urllib would open file: URLs
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise RestError(exc.code, _message(exc.read(), exc.reason)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RestError(0, f"cannot reach {base_url}: {getattr(exc, 'reason', exc)}") from None
    return json.loads(raw) if raw else None


def _message(raw: bytes, reason: Any) -> str:
    try:
        answer = json.loads(raw)
    except ValueError:
        return str(reason)
    return str(answer.get("message", reason)) if isinstance(answer, dict) else str(reason)

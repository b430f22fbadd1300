"""The table of APIs this broker serves, built from the handlers that register.

ApiVersions is derived from this table, so what we advertise can never drift from what
we implement. Each handler module registers with `@handles(ApiKey.X, min, max)`;
`strom.broker.handlers.registry` imports every handler module, by name, so the table is
complete once it is imported (no list of strings read by importlib).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from strom.broker.context import RequestContext

Handler = Callable[["RequestContext", Any], Awaitable[Any]]


@dataclass(frozen=True)
class Registration:
    api_key: ApiKey
    min_version: int
    max_version: int
    handler: Handler
    advertised_min: int


HANDLERS: dict[ApiKey, Registration] = {}


def handles(
    api_key: ApiKey, min_version: int, max_version: int, *, advertised_min: int | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler; `advertised_min` below `min_version` is a client workaround."""

    def register(fn: Handler) -> Handler:
        HANDLERS[api_key] = Registration(
            api_key,
            min_version,
            max_version,
            fn,
            min_version if advertised_min is None else advertised_min,
        )
        return fn

    return register


DISCONNECT_LISTENERS: list[Callable[[Any, str], None]] = []
"""Called with a closed client connection's `Services` and peer (Kafka's
ConnectionDisconnectListener): the share sessions opened on it end at once."""


def disconnected(services: Any, peer: str) -> None:
    """A client connection closed: tell the handlers that keep state per connection."""
    for listener in DISCONNECT_LISTENERS:
        try:
            listener(services, peer)
        except Exception:  # a listener's failure must not break the connection's close
            logging.getLogger(__name__).exception("disconnect listener failed for %s", peer)


def lookup(api_key: int, version: int) -> Registration | None:
    """The handler for a decoded request's (key, version); any int, known or not."""
    reg = HANDLERS.get(api_key)  # type: ignore[call-overload]  # an IntEnum hashes as its int
    if reg is None or not reg.min_version <= version <= reg.max_version:
        return None
    return reg


def advertised() -> list[tuple[int, int, int]]:
    """(key, min, max) of every registered API, the body of ApiVersions."""
    return sorted((int(r.api_key), r.advertised_min, r.max_version) for r in HANDLERS.values())

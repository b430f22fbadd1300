"""A `RequestContext` for calling a handler without a socket or a broker.

A handler sees the broker only through the faces of `strom.broker.services`; a test
hands in fakes of the faces the handler under test uses, and every other face is an
`Unused` that fails the test if the handler reaches for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from strom.broker.context import RequestContext
from strom.broker.services import Services
from strom.config.broker import BrokerConfig
from strom.protocol import apis
from strom.protocol.schema import build

BROKER_ID = 1


class Unused:
    """A face the handler under test must not touch."""

    def __init__(self, face: str) -> None:
        self._face = face

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the handler used {self._face}.{name}, a face it was not given")


def broker_config(tmp: Path | None = None, **props: str) -> BrokerConfig:
    """A one-node broker's configuration (nothing is opened: a config is plain data)."""
    return BrokerConfig({"log.dirs": str(tmp or Path("/nonexistent/strom-logs")),
                         "node.id": str(BROKER_ID),
                         "listeners": "PLAINTEXT://127.0.0.1:9092", **props})


def context(api_key: int, version: int, *, config: BrokerConfig | None = None,
            **faces: Any) -> RequestContext:
    """A context whose given faces are the fakes passed by name (metadata, partitions,
    groups, admin, metrics, producer_ids); the others are `Unused`."""
    names = ("metadata", "partitions", "groups", "admin", "metrics", "producer_ids")
    unknown = set(faces) - set(names)
    assert not unknown, f"no such face: {unknown}"
    chosen = {name: faces.get(name, Unused(name)) for name in names}
    services = Services(BROKER_ID, config or broker_config(), **chosen)
    return RequestContext(services, api_key, version, 7, "test-client", "127.0.0.1:1")


def request(api_key: int, version: int, **fields: Any) -> Any:
    """A request entity of this version from version-agnostic fields."""
    spec = apis.request_spec(api_key, version)
    assert spec is not None, (api_key, version)
    return build(spec.request_type, fields)


def call(handler: Callable[[RequestContext, Any], Awaitable[Any]], ctx: RequestContext,
         body: Any) -> Any:
    """Run one handler to completion on a fresh event loop."""
    return asyncio.run(handler(ctx, body))

"""librdkafka configurations for AdminClient, Producer and Consumer, built in one place.

Every client a Strom tool opens starts from the same base: the bootstrap servers, a
client id, a connection setup timeout short enough that an unreachable address is
reported in seconds (`socket.connection.setup.timeout.ms`, 5 s instead of librdkafka's
30 s), a request timeout equal to the caller's, and librdkafka's log lines routed to a
Python logger instead of stderr. On top come the role's defaults (`acks` for a
producer, `group.id` for a consumer), and last the caller's properties, which win: a
user who passes `-X socket.timeout.ms=...` means it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.client.logs import LIBRDKAFKA_LOGGER

DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
DEFAULT_CLIENT_ID = "strom"
DEFAULT_TIMEOUT_S = 15.0
CONNECTION_SETUP_TIMEOUT_MS = 5000

# Properties an AdminClient gets on top of the base: its metadata requests must never
# create a topic as a side effect (a Metadata request naming a topic does, by default).
ADMIN_DEFAULTS: Mapping[str, Any] = {"allow.auto.create.topics": False}


@dataclass(frozen=True)
class ClientSettings:
    """What every client of one application shares: where the cluster is, who is asking,
    how long to wait, and any librdkafka properties (they override everything else)."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    properties: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S
    client_id: str = DEFAULT_CLIENT_ID

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("bootstrap_servers is empty")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")


def build_config(settings: ClientSettings, defaults: Mapping[str, Any] | None = None, *,
                 error_cb: Callable[[Any], None] | None = None,
                 logger: logging.Logger | None = LIBRDKAFKA_LOGGER) -> dict[str, Any]:
    """A librdkafka config: the base from `settings`, then `defaults`, then
    `settings.properties`; `error_cb` receives the client's KafkaErrors (see `health`)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "socket.connection.setup.timeout.ms": CONNECTION_SETUP_TIMEOUT_MS,
        "socket.timeout.ms": int(settings.timeout * 1000),
    }
    if error_cb is not None:
        conf["error_cb"] = error_cb
    if logger is not None:
        conf["logger"] = logger
    conf.update(defaults or {})
    conf.update(settings.properties)
    return conf

"""What a handler may see of the broker and of the request it is answering.

The broker is seen only through the narrow faces of `strom.broker.services`; a handler
uses the ones it needs (`ctx.metadata`, `ctx.partitions`, `ctx.groups`, ...), so a test
builds a context from fakes of those alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.protocol import apis
from strom.protocol.schema import build

if TYPE_CHECKING:
    from strom.broker.services import (
        GroupCoordination,
        MetadataWriter,
        PartitionDirectory,
        ProducerIds,
        RequestMetrics,
        Services,
        TopicAdministration,
    )
    from strom.cluster.image import BrokerInfo
    from strom.config.broker import BrokerConfig


@dataclass(frozen=True, slots=True)
class RequestContext:
    services: Services
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    principal: str = "User:ANONYMOUS"
    """Who sent the request: `User:<name>` from SASL or the TLS certificate, else
    User:ANONYMOUS (what the authorizer is to decide on)."""
    advertised: tuple[str, int] | None = None
    listener: str | None = None
    """The name of the listener the request came in on (upper case)."""
    """This broker's advertised host and port on the listener the request came in on,
    when it is not the registered (first) one: Kafka answers with that listener's."""
    size: int = 0
    """The request's size in bytes (header and body, as Kafka's quotas count it)."""
    mute: Callable[[int], None] | None = None
    """Stops reading from the connection for that many ms (a client quota's throttle,
    KIP-219); None where there is no connection."""

    # The faces, by name (one shared `Services` per broker keeps a request's context small).

    @property
    def broker_id(self) -> int:
        return self.services.broker_id

    @property
    def config(self) -> BrokerConfig:
        return self.services.config

    @property
    def metadata(self) -> MetadataWriter:
        return self.services.metadata

    @property
    def partitions(self) -> PartitionDirectory:
        return self.services.partitions

    @property
    def groups(self) -> GroupCoordination:
        return self.services.groups

    @property
    def admin(self) -> TopicAdministration:
        return self.services.admin

    @property
    def metrics(self) -> RequestMetrics:
        return self.services.metrics

    @property
    def producer_ids(self) -> ProducerIds:
        return self.services.producer_ids

    def endpoint(self, broker: BrokerInfo) -> tuple[str, int]:
        """Where clients of this listener reach `broker` (Metadata, FindCoordinator)."""
        if self.listener is not None:
            found = broker.endpoint(self.listener)
            if found is not None:
                return found
        if self.advertised is not None and broker.broker_id == self.services.broker_id:
            return self.advertised
        return broker.host, broker.port

    def response_type(self) -> type:
        return apis.response_type(self.api_key, self.api_version)

    def respond(self, **fields: Any) -> Any:
        """Build this request's response entity from version-agnostic fields."""
        return build(self.response_type(), fields)

    def response_class(self, name: str) -> Any:
        """A nested response entity class (e.g. 'PartitionProduceResponse') of this version."""
        return getattr(apis.response_module(self.api_key, self.api_version), name)

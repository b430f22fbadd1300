"""What a handler may see of the broker and of the request it is answering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.protocol import apis
from strom.protocol.schema import build

if TYPE_CHECKING:
    from strom.broker.server import Broker


@dataclass(frozen=True, slots=True)
class RequestContext:
    broker: Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str

    def response_type(self) -> type:
        return apis.response_type(self.api_key, self.api_version)

    def respond(self, **fields: Any) -> Any:
        """Build this request's response entity from version-agnostic fields."""
        return build(self.response_type(), fields)

    def response_class(self, name: str) -> Any:
        """A nested response entity class (e.g. 'PartitionProduceResponse') of this version."""
        return getattr(apis.response_module(self.api_key, self.api_version), name)

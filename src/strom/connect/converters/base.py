"""The converter seam: Connect data (schema + value) to bytes and back.

A worker has a key, a value and a header converter; a connector config may override
each (`key.converter`, ...). Converters are configured with the properties under their
prefix (`value.converter.schemas.enable=false` reaches the value converter as
`schemas.enable`) and with `is_key`, as in Kafka.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

from strom.connect.api.config import ConfigDef
from strom.connect.data.schema import Schema


class SchemaAndValue(NamedTuple):
    schema: Schema | None
    value: Any


NULL = SchemaAndValue(None, None)


class Converter(ABC):
    """Kafka's Converter (and HeaderConverter: `from_header`/`to_header` default to the
    value methods, as the JSON and string converters do in Kafka)."""

    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None:  # noqa: B027 - an optional hook
        """Read the converter's own properties (prefix already stripped)."""

    @abstractmethod
    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        """Serialize; None stays None (a tombstone)."""

    @abstractmethod
    def to_connect_data(self, topic: str, data: bytes | None) -> SchemaAndValue:
        """Deserialize; DataError for bytes this converter cannot read."""

    def from_header(self, topic: str, key: str, schema: Schema | None, value: Any) -> bytes | None:
        return self.from_connect_data(topic, schema, value)

    def to_header(self, topic: str, key: str, data: bytes | None) -> SchemaAndValue:
        return self.to_connect_data(topic, data)

    def config(self) -> ConfigDef:
        return ConfigDef()

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release resources (none for the built-in converters)."""

    def version(self) -> str:
        from strom.connect.version import VERSION

        return VERSION

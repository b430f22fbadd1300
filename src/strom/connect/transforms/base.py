"""The SMT seam: `Transformation`, `Predicate`, and the Key/Value split Kafka's SMTs share.

Most of Kafka's transforms come in a `$Key` and a `$Value` flavour that differ only in
which half of the record they read and rewrite. `KeyOrValue` captures that difference
once (`operating_schema`, `operating_value`, `new_record`); each SMT module defines
its logic on it and the two concrete classes (`InsertFieldKey`, `InsertFieldValue`).
Kafka's class names (`org.apache.kafka.connect.transforms.InsertField$Value`) resolve to
them through `strom.connect.plugins`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from strom.connect.api.config import AbstractConfig, ConfigDef
from strom.connect.api.errors import DataError
from strom.connect.api.records import ConnectRecord
from strom.connect.data.schema import Schema, SchemaBuilder
from strom.connect.data.struct import Struct


class Transformation(ABC):
    """Kafka's Transformation: configure once, then `apply` per record (None drops it)."""

    def configure(self, configs: Mapping[str, Any]) -> None:
        """Read the transform's own properties (prefix `transforms.<alias>.` stripped)."""
        self.settings = AbstractConfig(self.config(), configs)

    @abstractmethod
    def apply(self, record: ConnectRecord) -> ConnectRecord | None: ...

    @abstractmethod
    def config(self) -> ConfigDef: ...

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release resources (the built-in transforms hold none)."""

    def version(self) -> str:
        from strom.connect.version import VERSION

        return VERSION


class Predicate(ABC):
    """Kafka's Predicate: decides whether a transform applies to a record."""

    def configure(self, configs: Mapping[str, Any]) -> None:
        self.settings = AbstractConfig(self.config(), configs)

    @abstractmethod
    def test(self, record: ConnectRecord) -> bool: ...

    @abstractmethod
    def config(self) -> ConfigDef: ...

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release resources."""

    def version(self) -> str:
        from strom.connect.version import VERSION

        return VERSION


class KeyOrValue(Transformation):
    """A transform that works on one half of the record; `is_key` says which."""

    is_key = False

    def operating_schema(self, record: ConnectRecord) -> Schema | None:
        return record.key_schema if self.is_key else record.value_schema

    def operating_value(self, record: ConnectRecord) -> Any:
        return record.key if self.is_key else record.value

    def new_record(self, record: ConnectRecord, schema: Schema | None, value: Any) -> ConnectRecord:
        if self.is_key:
            return record.new_record(record.topic, record.kafka_partition, schema, value,
                                     record.value_schema, record.value, record.timestamp)
        return record.new_record(record.topic, record.kafka_partition, record.key_schema, record.key,
                                 schema, value, record.timestamp)


def require_map(value: Any, purpose: str) -> dict[str, Any]:
    """Kafka's Requirements.requireMap, with its message."""
    if not isinstance(value, dict):
        raise DataError(f"Only Map objects supported in absence of schema for [{purpose}], found: "
                        + _java_class(value))
    return value


def require_struct(value: Any, purpose: str) -> Struct:
    """Kafka's Requirements.requireStruct, with its message."""
    if not isinstance(value, Struct):
        raise DataError(f"Only Struct objects supported for [{purpose}], found: " + _java_class(value))
    return value


def require_sink_record(record: ConnectRecord, purpose: str) -> None:
    from strom.connect.api.records import SinkRecord

    if not isinstance(record, SinkRecord):
        raise DataError(f"Only SinkRecord supported for [{purpose}], found: " + type(record).__name__)


def _java_class(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def copy_schema_basics(source: Schema, builder: SchemaBuilder) -> SchemaBuilder:
    """Kafka's SchemaUtil.copySchemaBasics: name, version, doc and parameters."""
    builder.name(source.name).version(source.version).doc(source.doc)
    if source.parameters:
        builder.parameters(source.parameters)
    return builder


def field_value(struct: Struct, name: str, replace_null_with_default: bool) -> Any:
    """A struct field's value, its default standing in for null if so configured (KIP-581)."""
    return struct.get(name) if replace_null_with_default else struct.get_without_default(name)


REPLACE_NULL_WITH_DEFAULT = "replace.null.with.default"


def define_replace_null(definition: ConfigDef) -> ConfigDef:
    from strom.connect.api.config import ConfigType, Importance

    return definition.define(REPLACE_NULL_WITH_DEFAULT, ConfigType.BOOLEAN, True, Importance.MEDIUM,
                             "Whether to replace fields that have a default value and that are null "
                             "to the default value.")

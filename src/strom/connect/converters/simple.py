"""`StringConverter` and `ByteArrayConverter`, Kafka's two pass-through converters.

StringConverter writes any value's string form in `converter.encoding` (UTF-8) and
reads bytes back as an optional STRING; ByteArrayConverter passes bytes unchanged and
refuses anything else with Kafka's DataError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance
from strom.connect.api.errors import DataError
from strom.connect.converters.base import Converter, SchemaAndValue
from strom.connect.data.schema import OPTIONAL_BYTES_SCHEMA, OPTIONAL_STRING_SCHEMA, Schema, Type

_NULL_STRING = SchemaAndValue(OPTIONAL_STRING_SCHEMA, None)  # immutable: one for every null


class StringConverter(Converter):
    """Kafka's org.apache.kafka.connect.storage.StringConverter."""

    def __init__(self) -> None:
        self.encoding = "utf-8"

    def config(self) -> ConfigDef:
        return ConfigDef().define("converter.encoding", ConfigType.STRING, "UTF-8", Importance.HIGH,
                                  "The name of the Java character set to use for encoding strings")

    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None:
        self.encoding = str(configs.get("converter.encoding", "UTF-8"))

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, bool):
            value = "true" if value else "false"
        return str(value).encode(self.encoding)

    def to_connect_data(self, topic: str, data: bytes | None) -> SchemaAndValue:
        if data is None:
            return _NULL_STRING
        try:
            return SchemaAndValue(OPTIONAL_STRING_SCHEMA, bytes(data).decode(self.encoding))
        except UnicodeDecodeError as exc:
            raise DataError(f"Failed to deserialize string: {exc}") from exc


class ByteArrayConverter(Converter):
    """Kafka's org.apache.kafka.connect.converters.ByteArrayConverter."""

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        if schema is not None and schema.type is not Type.BYTES:
            raise DataError(f"Invalid schema type for ByteArrayConverter: {schema.type.name}")
        if value is not None and not isinstance(value, bytes | bytearray | memoryview):
            raise DataError("ByteArrayConverter is not compatible with objects of type "
                            + type(value).__name__)
        return None if value is None else bytes(value)

    def to_connect_data(self, topic: str, data: bytes | None) -> SchemaAndValue:
        return SchemaAndValue(OPTIONAL_BYTES_SCHEMA, None if data is None else bytes(data))



class SimpleHeaderConverter(Converter):
    """Kafka's default header converter: strings as UTF-8, other values as compact JSON
    text; reading infers the type of the text (booleans, integers, floats, else string)."""

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        from strom.connect.converters.json_converter import value_to_json
        from strom.connect.converters.jsontext import dumps

        return dumps(value_to_json(schema, value)).encode("utf-8")

    def to_connect_data(self, topic: str, data: bytes | None) -> SchemaAndValue:
        if data is None:
            return SchemaAndValue(None, None)
        from strom.connect.transforms.headers import parse_literal

        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return SchemaAndValue(OPTIONAL_BYTES_SCHEMA, bytes(data))
        return SchemaAndValue(*parse_literal(text))

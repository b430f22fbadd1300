"""`JsonConverter`: Kafka's connect-json, byte for byte.

With `schemas.enable=true` (the default) each message is the envelope
`{"schema":{...},"payload":...}`; the schema JSON lists `type`, the type's parts
(`fields`/`items`/`keys`+`values`), `optional`, `default`, `name`, `version`, `doc`,
`parameters` in Kafka's order, struct fields adding `"field"` last. Maps with non-string
keys become arrays of `[key, value]` pairs. Decimals are base64 of the unscaled
two's-complement bytes (`decimal.format=BASE64`) or JSON numbers (`NUMERIC`); Date, Time
and Timestamp are their integer encodings. `tests/connect/test_connect_interop.py`
compares our output with Kafka's JsonConverter run in a JVM.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from strom.connect.api.config import AbstractConfig, ConfigDef, ConfigType, Importance, one_of
from strom.connect.api.errors import DataError
from strom.connect.converters.base import NULL, Converter, SchemaAndValue
from strom.connect.converters.jsontext import Float32, Numeric, dumps, to_float32
from strom.connect.data.schema import (
    DATE_NAME,
    DECIMAL_NAME,
    DECIMAL_SCALE,
    TIME_NAME,
    TIMESTAMP_NAME,
    Field,
    Schema,
    Type,
    days_since_epoch,
    decimal_from_bytes,
    decimal_to_bytes,
    epoch_millis,
    from_days,
    from_epoch_millis,
    from_millis_of_day,
    millis_of_day,
)
from strom.connect.data.struct import Struct

ENVELOPE_ERROR = (
    'JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain '
    "additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false "
    "in your converter configuration.")

JSON_CONFIG = (
    ConfigDef()
    .define("schemas.enable", ConfigType.BOOLEAN, True, Importance.HIGH,
            "Include schemas within each of the serialized values and keys.")
    .define("schemas.cache.size", ConfigType.INT, 1000, Importance.HIGH,
            "The maximum number of schemas that can be cached in this converter instance.")
    .define("decimal.format", ConfigType.STRING, "BASE64", Importance.LOW,
            "Controls which format this converter will serialize decimals in.",
            validator=one_of("BASE64", "NUMERIC", case_insensitive=True))
    .define("replace.null.with.default", ConfigType.BOOLEAN, True, Importance.LOW,
            "Whether to replace fields that have a default value and that are null to the default "
            "value.")
    .define("converter.type", ConfigType.STRING, "value", Importance.LOW,
            "How this converter will be used.", validator=one_of("key", "value", "header"))
)


# --- schema <-> JSON ------------------------------------------------------------------------


def schema_to_json(schema: Schema | None, numeric: bool = False) -> dict[str, Any] | None:
    """The envelope's `schema` object, in Kafka's key order."""
    if schema is None:
        return None
    node: dict[str, Any] = {"type": schema.type.value}
    if schema.type is Type.STRUCT:
        node["fields"] = [_field_json(f, numeric) for f in schema.fields]
    elif schema.type is Type.ARRAY:
        node["items"] = schema_to_json(schema.value_schema, numeric)
    elif schema.type is Type.MAP:
        node["keys"] = schema_to_json(schema.key_schema, numeric)
        node["values"] = schema_to_json(schema.value_schema, numeric)
    node["optional"] = schema.optional
    _put_names(node, schema)
    if schema.default is not None:
        node["default"] = value_to_json(schema, schema.default, numeric, True)
    return node


def _put_names(node: dict[str, Any], schema: Schema) -> None:
    if schema.name is not None:
        node["name"] = schema.name
    if schema.version is not None:
        node["version"] = schema.version
    if schema.doc is not None:
        node["doc"] = schema.doc
    if schema.parameters:
        node["parameters"] = dict(schema.parameters)


def _field_json(f: Field, numeric: bool) -> dict[str, Any]:
    node = schema_to_json(f.schema, numeric) or {}
    node["field"] = f.name
    return node


_TYPES = {t.value: t for t in Type}


def schema_from_json(node: Any) -> Schema | None:
    """A Schema from the envelope's `schema` object; DataError when it is malformed."""
    if node is None:
        return None
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise DataError("Schema must contain 'type' field")
    kind = _TYPES.get(node["type"])
    if kind is None:
        raise DataError("Unknown schema type: " + node["type"])
    fields, key, value = _schema_parts(kind, node)
    optional = node.get("optional", False)
    params = node.get("parameters")
    schema = Schema(kind, bool(optional), None, node.get("name"), node.get("version"),
                    node.get("doc"), dict(params) if isinstance(params, dict) else None,
                    fields, key, value)
    if node.get("default") is not None:
        from dataclasses import replace

        schema = replace(schema, default=value_from_json(schema, node["default"]))
    return schema


def _schema_parts(kind: Type, node: dict[str, Any]
                  ) -> tuple[tuple[Field, ...], Schema | None, Schema | None]:
    if kind is Type.STRUCT:
        raw = node.get("fields")
        if not isinstance(raw, list):
            raise DataError("Struct schema's \"fields\" argument is not an array.")
        fields = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
                raise DataError("Struct schema's field name not specified properly")
            fields.append(Field(entry["field"], i, _required(schema_from_json(entry))))
        return tuple(fields), None, None
    if kind is Type.ARRAY:
        if "items" not in node:
            raise DataError("Array schema did not specify the element type")
        return (), None, schema_from_json(node["items"])
    if kind is Type.MAP:
        if "keys" not in node or "values" not in node:
            raise DataError("Map schema did not specify the key and value types")
        return (), schema_from_json(node["keys"]), schema_from_json(node["values"])
    return (), None, None


def _required(schema: Schema | None) -> Schema:
    if schema is None:
        raise DataError("Field schema is null")
    return schema


# --- values -> JSON -------------------------------------------------------------------------


def value_to_json(schema: Schema | None, value: Any, numeric: bool = False,
                  replace_null: bool = True) -> Any:
    """A JSON tree of `value` under `schema` (or inferred from the value when schemaless)."""
    if value is None:
        return _null_to_json(schema, numeric, replace_null)
    if schema is None:
        return _schemaless_to_json(value, numeric)
    if schema.name in _LOGICAL_TO_JSON:
        return _LOGICAL_TO_JSON[schema.name](schema, value, numeric)
    return _TO_JSON[schema.type](schema, value, numeric, replace_null)


def _null_to_json(schema: Schema | None, numeric: bool, replace_null: bool) -> Any:
    if schema is None:
        return None
    if schema.default is not None and replace_null:
        return value_to_json(schema, schema.default, numeric, replace_null)
    if schema.optional:
        return None
    raise DataError("Conversion error: null value for field that is required and has no default value")


def _schemaless_to_json(value: Any, numeric: bool) -> Any:
    if isinstance(value, Struct):
        return value_to_json(value.schema, value, numeric)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: value_to_json(None, v, numeric) for k, v in value.items()}
        return [[value_to_json(None, k, numeric), value_to_json(None, v, numeric)]
                for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [value_to_json(None, v, numeric) for v in value]
    if isinstance(value, decimal.Decimal):
        return Numeric(value)
    if isinstance(value, bool | int | float | str):
        return value
    raise DataError("Java class " + type(value).__name__ + " does not have corresponding schema type.")


def _decimal_json(schema: Schema, value: Any, numeric: bool) -> Any:
    scale = int((schema.parameters or {}).get(DECIMAL_SCALE, "0"))
    if numeric:
        return Numeric(value.quantize(decimal.Decimal(1).scaleb(-scale)))
    return base64.b64encode(decimal_to_bytes(value, scale)).decode("ascii")


def _logical_int(convert: Callable[[Any], int], kind: type) -> Callable[[Schema, Any, bool], int]:
    def write(schema: Schema, value: Any, numeric: bool) -> int:
        if not isinstance(value, kind):
            raise DataError(f"Invalid type for {schema.name}, expected {kind.__name__} but was "
                            f"{type(value).__name__}")
        return convert(value)

    return write


_LOGICAL_TO_JSON: dict[str | None, Callable[[Schema, Any, bool], Any]] = {
    DECIMAL_NAME: _decimal_json,
    DATE_NAME: _logical_int(days_since_epoch, datetime.date),
    TIME_NAME: _logical_int(millis_of_day, datetime.time),
    TIMESTAMP_NAME: _logical_int(epoch_millis, datetime.datetime),
}


def _int_json(schema: Schema, value: Any, numeric: bool, replace_null: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"Invalid type for {schema.type.name}: {type(value).__name__}")
    return value


def _float_json(schema: Schema, value: Any, numeric: bool, replace_null: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"Invalid type for {schema.type.name}: {type(value).__name__}")
    return Float32(value) if schema.type is Type.FLOAT32 else float(value)


def _typed(kind: type | tuple[type, ...], convert: Callable[[Any], Any] = lambda v: v
           ) -> Callable[[Schema, Any, bool, bool], Any]:
    def write(schema: Schema, value: Any, numeric: bool, replace_null: bool) -> Any:
        if not isinstance(value, kind):
            raise DataError(f"Invalid type for {schema.type.name}: {type(value).__name__}")
        return convert(value)

    return write


def _array_json(schema: Schema, value: Any, numeric: bool, replace_null: bool) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise DataError(f"Invalid type for ARRAY: {type(value).__name__}")
    return [value_to_json(schema.value_schema, v, numeric, replace_null) for v in value]


def _map_json(schema: Schema, value: Any, numeric: bool, replace_null: bool) -> Any:
    if not isinstance(value, dict):
        raise DataError(f"Invalid type for MAP: {type(value).__name__}")
    ks, vs = schema.key_schema, schema.value_schema
    if ks is not None and ks.type is Type.STRING:
        return {k: value_to_json(vs, v, numeric, replace_null) for k, v in value.items()}
    return [[value_to_json(ks, k, numeric, replace_null), value_to_json(vs, v, numeric, replace_null)]
            for k, v in value.items()]


def _struct_json(schema: Schema, value: Any, numeric: bool, replace_null: bool) -> dict[str, Any]:
    if not isinstance(value, Struct) or value.schema != schema:
        raise DataError("Mismatching schema.")
    return {f.name: value_to_json(f.schema, value.get_without_default(f.name), numeric, replace_null)
            for f in schema.fields}


def _b64(value: Any) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


_TO_JSON: dict[Type, Callable[[Schema, Any, bool, bool], Any]] = {
    Type.INT8: _int_json, Type.INT16: _int_json, Type.INT32: _int_json, Type.INT64: _int_json,
    Type.FLOAT32: _float_json, Type.FLOAT64: _float_json, Type.BOOLEAN: _typed(bool),
    Type.STRING: _typed(str), Type.BYTES: _typed((bytes, bytearray, memoryview), _b64),
    Type.ARRAY: _array_json, Type.MAP: _map_json, Type.STRUCT: _struct_json,
}


# --- JSON -> values -------------------------------------------------------------------------


def value_from_json(schema: Schema | None, node: Any) -> Any:
    """The Connect value of a JSON tree under `schema` (schemaless: maps, lists, int, float)."""
    if schema is None:
        return _schemaless_from_json(node)
    if node is None:
        if schema.default is not None:
            return schema.default
        if schema.optional:
            return None
        raise DataError("Invalid null value for required " + schema.type.name + " field")
    if schema.name in _LOGICAL_FROM_JSON:
        return _LOGICAL_FROM_JSON[schema.name](schema, node)
    return _FROM_JSON[schema.type](schema, node)


def _schemaless_from_json(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _schemaless_from_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_schemaless_from_json(v) for v in node]
    return node


def _decimal_from_json(schema: Schema, node: Any) -> decimal.Decimal:
    scale = int((schema.parameters or {}).get(DECIMAL_SCALE, "0"))
    if isinstance(node, int | float):
        return decimal.Decimal(str(node)).quantize(decimal.Decimal(1).scaleb(-scale))
    try:
        return decimal_from_bytes(base64.b64decode(str(node), validate=True), scale)
    except binascii.Error as exc:
        raise DataError("Invalid bytes for Decimal field") from exc


def _int_node(kind: str, convert: Callable[[int], Any]) -> Callable[[Schema, Any], Any]:
    def read(schema: Schema, node: Any) -> Any:
        if not isinstance(node, int) or isinstance(node, bool):
            raise DataError(f"Invalid type for {kind}: {type(node).__name__}")
        return convert(node)

    return read


_LOGICAL_FROM_JSON: dict[str | None, Callable[[Schema, Any], Any]] = {
    DECIMAL_NAME: _decimal_from_json,
    DATE_NAME: _int_node("Date", from_days),
    TIME_NAME: _int_node("Time", from_millis_of_day),
    TIMESTAMP_NAME: _int_node("Timestamp", from_epoch_millis),
}


def _int_from(schema: Schema, node: Any) -> int:
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise DataError(f"Invalid type for {schema.type.name}: {type(node).__name__}")
    return int(node)


def _float_from(schema: Schema, node: Any) -> float:
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise DataError(f"Invalid type for {schema.type.name}: {type(node).__name__}")
    return to_float32(node) if schema.type is Type.FLOAT32 else float(node)


def _check(kind: type, name: str, convert: Callable[[Any], Any] = lambda v: v
           ) -> Callable[[Schema, Any], Any]:
    def read(schema: Schema, node: Any) -> Any:
        if not isinstance(node, kind):
            raise DataError(f"Invalid type for {name}: {type(node).__name__}")
        return convert(node)

    return read


def _bytes_from(schema: Schema, node: Any) -> bytes:
    try:
        return base64.b64decode(str(node), validate=True)
    except binascii.Error as exc:
        raise DataError("Invalid bytes field") from exc


def _array_from(schema: Schema, node: Any) -> list[Any]:
    if not isinstance(node, list):
        raise DataError("Invalid type for ARRAY: " + type(node).__name__)
    return [value_from_json(schema.value_schema, v) for v in node]


def _map_from(schema: Schema, node: Any) -> dict[Any, Any]:
    ks, vs = schema.key_schema, schema.value_schema
    if ks is not None and ks.type is Type.STRING:
        if not isinstance(node, dict):
            raise DataError("Maps with string fields should be encoded as JSON objects, but found "
                            + type(node).__name__)
        return {k: value_from_json(vs, v) for k, v in node.items()}
    if not isinstance(node, list):
        raise DataError("Maps with non-string fields should be encoded as JSON array of tuples, but "
                        "found " + type(node).__name__)
    found: dict[Any, Any] = {}
    for entry in node:
        if not isinstance(entry, list) or len(entry) != 2:
            raise DataError("Found invalid map entry instead of array tuple")
        found[value_from_json(ks, entry[0])] = value_from_json(vs, entry[1])
    return found


def _struct_from(schema: Schema, node: Any) -> Struct:
    if not isinstance(node, dict):
        raise DataError("Structs should be encoded as JSON objects, but found " + type(node).__name__)
    struct = Struct(schema)
    for f in schema.fields:
        struct.put(f.name, value_from_json(f.schema, node.get(f.name)))
    return struct


_FROM_JSON: dict[Type, Callable[[Schema, Any], Any]] = {
    Type.INT8: _int_from, Type.INT16: _int_from, Type.INT32: _int_from, Type.INT64: _int_from,
    Type.FLOAT32: _float_from, Type.FLOAT64: _float_from, Type.BOOLEAN: _check(bool, "BOOLEAN"),
    Type.STRING: _check(str, "STRING"), Type.BYTES: _bytes_from, Type.ARRAY: _array_from,
    Type.MAP: _map_from, Type.STRUCT: _struct_from,
}


# --- the converter --------------------------------------------------------------------------


class JsonConverter(Converter):
    """Kafka's org.apache.kafka.connect.json.JsonConverter."""

    def __init__(self) -> None:
        self.schemas_enable = True
        self.numeric = False
        self.replace_null = True
        self._schemas: dict[bytes, Schema | None] = {}
        self._cache_size = 1000

    def config(self) -> ConfigDef:
        return JSON_CONFIG

    def configure(self, configs: Mapping[str, Any], is_key: bool) -> None:
        props = dict(configs)
        props.setdefault("converter.type", "key" if is_key else "value")
        parsed = AbstractConfig(JSON_CONFIG, props)
        self.schemas_enable = parsed.get_bool("schemas.enable")
        self.numeric = parsed.get_string("decimal.format").upper() == "NUMERIC"
        self.replace_null = parsed.get_bool("replace.null.with.default")
        self._cache_size = parsed.get_int("schemas.cache.size")

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        if schema is None and value is None:
            return None
        payload = value_to_json(schema, value, self.numeric, self.replace_null)
        if self.schemas_enable:
            payload = {"schema": schema_to_json(schema, self.numeric), "payload": payload}
        return dumps(payload).encode("utf-8")

    def to_connect_data(self, topic: str, data: bytes | None) -> SchemaAndValue:
        if not data:
            return NULL
        try:
            node = orjson.loads(data)
        except orjson.JSONDecodeError:
            node = _lenient(data)
        if not self.schemas_enable:
            return SchemaAndValue(None, _schemaless_from_json(node))
        if not isinstance(node, dict) or set(node) != {"schema", "payload"}:
            raise DataError(ENVELOPE_ERROR)
        schema = self._schema(node["schema"])
        return SchemaAndValue(schema, value_from_json(schema, node["payload"]))

    def _schema(self, node: Any) -> Schema | None:
        if node is None:
            return None
        key = orjson.dumps(node)
        if key not in self._schemas:
            if len(self._schemas) >= self._cache_size:
                self._schemas.clear()
            self._schemas[key] = schema_from_json(node)
        return self._schemas[key]


def _lenient(data: bytes) -> Any:
    """Parse what orjson refuses but Jackson reads (NaN, big numbers); DataError otherwise."""
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError("Converting byte[] to Kafka Connect data failed due to serialization error: "
                        + str(exc)) from exc

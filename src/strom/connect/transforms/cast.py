"""Cast: change the type of the whole key/value or of listed fields (`spec=f1:int32,f2:string`
or `spec=int64`), with Java's conversion rules (narrowing int casts wrap, float to int
truncates, strings parse, booleans are 1/0, `string` uses Java's toString forms).
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import math
from collections.abc import Callable
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance
from strom.connect.api.errors import ConfigError, DataError
from strom.connect.api.records import ConnectRecord
from strom.connect.converters.jsontext import java_double, java_float, to_float32
from strom.connect.data.schema import Schema, SchemaBuilder, Type, epoch_millis
from strom.connect.data.struct import Struct
from strom.connect.transforms.base import (
    REPLACE_NULL_WITH_DEFAULT,
    KeyOrValue,
    copy_schema_basics,
    define_replace_null,
    field_value,
    require_map,
    require_struct,
)

_TARGETS = {"int8": Type.INT8, "int16": Type.INT16, "int32": Type.INT32, "int64": Type.INT64,
            "float32": Type.FLOAT32, "float64": Type.FLOAT64, "boolean": Type.BOOLEAN,
            "string": Type.STRING}
_WHOLE = "__whole__"
_WRAP: dict[Type, Callable[[int], Any]] = {
    Type.INT8: ctypes.c_int8, Type.INT16: ctypes.c_int16, Type.INT32: ctypes.c_int32,
    Type.INT64: ctypes.c_int64}


def _parse_spec(name: str, spec: list[str]) -> dict[str, Type]:
    casts: dict[str, Type] = {}
    for entry in spec:
        field, _, target = entry.rpartition(":")
        kind = _TARGETS.get(target.strip().lower())
        if kind is None:
            raise ConfigError(name, spec, "Invalid type found in casting spec: " + target.strip())
        if not field:
            if len(spec) > 1:
                raise ConfigError(name, spec, "Cast transformations that specify a type to cast the "
                                  "entire value to may only specify a single cast in their spec")
            return {_WHOLE: kind}
        casts[field.strip()] = kind
    if not casts:
        raise ConfigError(name, spec, "Must specify at least one field to cast.")
    return casts


def cast_value(value: Any, target: Type, source: Schema | None = None) -> Any:
    """`value` converted to `target` as Kafka's Cast does."""
    if value is None:
        return None
    if target is Type.STRING:
        return _to_string(value, source)
    if target is Type.BOOLEAN:
        return _to_bool(value)
    number = _to_number(value, target)
    if target in _WRAP:
        return _WRAP[target](int(number)).value
    return to_float32(number) if target is Type.FLOAT32 else float(number)


def _to_number(value: Any, target: Type) -> int | float:
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, str):
        try:
            return int(value.strip()) if target in _WRAP else float(value.strip())
        except ValueError as exc:
            raise DataError(f'For input string: "{value}"') from exc
    if isinstance(value, float) and target in _WRAP:
        return _saturate(value, target)
    if isinstance(value, int | float):
        return value
    raise DataError(f"Unexpected type in Cast transformation: {type(value).__name__}")


def _saturate(value: float, target: Type) -> int:
    """Java's (long)/(int) of a double saturates; narrower types go through int first."""
    if math.isnan(value):
        return 0
    bits = 64 if target is Type.INT64 else 32
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return max(low, min(high, int(value)))


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    raise DataError(f"Unexpected type in Cast transformation: {type(value).__name__}")


def _to_string(value: Any, source: Schema | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        single = source is not None and source.type is Type.FLOAT32
        return java_float(value) if single else java_double(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.datetime):
        millis = epoch_millis(value)
        stamp = datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    return str(value)


class Cast(KeyOrValue):
    """Kafka's Cast$Key / Cast$Value."""

    PURPOSE = "cast types"

    def config(self) -> ConfigDef:
        d = ConfigDef().define("spec", ConfigType.LIST, importance=Importance.HIGH,
                               documentation="List of fields and the type to cast them to of the form "
                                             "field1:type,field2:type to cast fields of Maps or Structs.")
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.casts = _parse_spec("spec", self.settings.get_list("spec"))
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        schema, value = self.operating_schema(record), self.operating_value(record)
        if value is None:
            return record
        if _WHOLE in self.casts:
            target = self.casts[_WHOLE]
            new_schema = None if schema is None else _target_schema(schema, target)
            return self.new_record(record, new_schema, cast_value(value, target, schema))
        if schema is None:
            original = require_map(value, self.PURPOSE)
            return self.new_record(record, None, {k: cast_value(v, self.casts[k]) if k in self.casts
                                                  else v for k, v in original.items()})
        return self._struct(record, schema, require_struct(value, self.PURPOSE))

    def _struct(self, record: ConnectRecord, schema: Schema, value: Struct) -> ConnectRecord:
        builder = copy_schema_basics(schema, SchemaBuilder.struct())
        for f in schema.fields:
            target = self.casts.get(f.name)
            builder.field(f.name, f.schema if target is None else _target_schema(f.schema, target))
        new_schema = builder.build()
        updated = Struct(new_schema)
        for f in schema.fields:
            current = field_value(value, f.name, self.replace_null)
            target = self.casts.get(f.name)
            updated.put(f.name, current if target is None else cast_value(current, target, f.schema))
        return self.new_record(record, new_schema, updated)


def _target_schema(source: Schema, target: Type) -> Schema:
    builder = SchemaBuilder.of(target)
    if source.optional:
        builder.optional()
    if source.default is not None:
        builder.default_value(cast_value(source.default, target, source))
    return builder.build()


class CastKey(Cast):
    is_key = True


class CastValue(Cast):
    is_key = False

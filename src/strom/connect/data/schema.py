"""Kafka Connect's data model: schemas, fields and the logical types Decimal, Date, Time,
Timestamp, in the shape connectors and converters written against Kafka's API expect.

A `Schema` is immutable (a frozen dataclass); `SchemaBuilder` assembles one the way
Kafka's fluent builder does, so code ported from Java reads the same. Values are plain
Python objects: int, float, bool, str, bytes, list, dict, `Struct` (see `struct`), and
for the logical types `decimal.Decimal`, `datetime.date`, `datetime.time` and
`datetime.datetime` (always UTC), the same objects Kafka uses `BigDecimal`/`java.util.Date` for.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from strom.connect.api.errors import DataError, SchemaBuilderError


class Type(Enum):
    """Schema types under Kafka's names; `.value` is the lower-case JSON spelling."""

    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float"
    FLOAT64 = "double"
    BOOLEAN = "boolean"
    STRING = "string"
    BYTES = "bytes"
    ARRAY = "array"
    MAP = "map"
    STRUCT = "struct"

    @property
    def is_primitive(self) -> bool:
        return self not in (Type.ARRAY, Type.MAP, Type.STRUCT)


INT_RANGES: dict[Type, tuple[int, int]] = {
    Type.INT8: (-(2**7), 2**7 - 1),
    Type.INT16: (-(2**15), 2**15 - 1),
    Type.INT32: (-(2**31), 2**31 - 1),
    Type.INT64: (-(2**63), 2**63 - 1),
}

DECIMAL_NAME = "org.apache.kafka.connect.data.Decimal"
DECIMAL_SCALE = "scale"
DATE_NAME = "org.apache.kafka.connect.data.Date"
TIME_NAME = "org.apache.kafka.connect.data.Time"
TIMESTAMP_NAME = "org.apache.kafka.connect.data.Timestamp"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Field:
    """A struct field: its name, position and schema."""

    name: str
    index: int
    schema: Schema


@dataclass(frozen=True)
class Schema:
    """An immutable Connect schema (Kafka's ConnectSchema)."""

    type: Type
    optional: bool = False
    default: Any = None
    name: str | None = None
    version: int | None = None
    doc: str | None = None
    parameters: Mapping[str, str] | None = None
    fields: tuple[Field, ...] = ()
    key_schema: Schema | None = None
    value_schema: Schema | None = None

    def field(self, name: str) -> Field | None:
        """The field called `name` of a struct schema, or None."""
        if self.type is not Type.STRUCT:
            raise DataError("Cannot look up fields on non-struct type")
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def as_optional(self) -> Schema:
        return replace(self, optional=True)

    def __repr__(self) -> str:
        label = self.name or self.type.name
        return f"Schema{{{label}:{self.type.name}{'?' if self.optional else ''}}}"


def _primitive(kind: Type, optional: bool) -> Schema:
    return Schema(kind, optional=optional)


INT8_SCHEMA = _primitive(Type.INT8, False)
INT16_SCHEMA = _primitive(Type.INT16, False)
INT32_SCHEMA = _primitive(Type.INT32, False)
INT64_SCHEMA = _primitive(Type.INT64, False)
FLOAT32_SCHEMA = _primitive(Type.FLOAT32, False)
FLOAT64_SCHEMA = _primitive(Type.FLOAT64, False)
BOOLEAN_SCHEMA = _primitive(Type.BOOLEAN, False)
STRING_SCHEMA = _primitive(Type.STRING, False)
BYTES_SCHEMA = _primitive(Type.BYTES, False)
OPTIONAL_INT8_SCHEMA = _primitive(Type.INT8, True)
OPTIONAL_INT16_SCHEMA = _primitive(Type.INT16, True)
OPTIONAL_INT32_SCHEMA = _primitive(Type.INT32, True)
OPTIONAL_INT64_SCHEMA = _primitive(Type.INT64, True)
OPTIONAL_FLOAT32_SCHEMA = _primitive(Type.FLOAT32, True)
OPTIONAL_FLOAT64_SCHEMA = _primitive(Type.FLOAT64, True)
OPTIONAL_BOOLEAN_SCHEMA = _primitive(Type.BOOLEAN, True)
OPTIONAL_STRING_SCHEMA = _primitive(Type.STRING, True)
OPTIONAL_BYTES_SCHEMA = _primitive(Type.BYTES, True)


class SchemaBuilder:
    """Kafka's fluent SchemaBuilder: `SchemaBuilder.struct().name("x").field(...).build()`."""

    def __init__(self, kind: Type) -> None:
        self._type = kind
        self._optional = False
        self._default: Any = None
        self._name: str | None = None
        self._version: int | None = None
        self._doc: str | None = None
        self._parameters: dict[str, str] = {}
        self._fields: list[Field] = []
        self._key: Schema | None = None
        self._value: Schema | None = None

    @classmethod
    def struct(cls) -> SchemaBuilder:
        return cls(Type.STRUCT)

    @classmethod
    def array(cls, value_schema: Schema) -> SchemaBuilder:
        built = cls(Type.ARRAY)
        built._value = value_schema
        return built

    @classmethod
    def map(cls, key_schema: Schema, value_schema: Schema) -> SchemaBuilder:
        built = cls(Type.MAP)
        built._key, built._value = key_schema, value_schema
        return built

    @classmethod
    def of(cls, kind: Type) -> SchemaBuilder:
        return cls(kind)

    @classmethod
    def from_schema(cls, schema: Schema) -> SchemaBuilder:
        """A builder holding everything of `schema` but its fields' order is kept too."""
        built = cls(schema.type)
        built._optional, built._default = schema.optional, schema.default
        built._name, built._version, built._doc = schema.name, schema.version, schema.doc
        built._parameters = dict(schema.parameters or {})
        built._fields = list(schema.fields)
        built._key, built._value = schema.key_schema, schema.value_schema
        return built

    def optional(self) -> SchemaBuilder:
        self._optional = True
        return self

    def required(self) -> SchemaBuilder:
        self._optional = False
        return self

    def default_value(self, value: Any) -> SchemaBuilder:
        self._default = value
        return self

    def name(self, name: str | None) -> SchemaBuilder:
        self._name = name
        return self

    def version(self, version: int | None) -> SchemaBuilder:
        self._version = version
        return self

    def doc(self, doc: str | None) -> SchemaBuilder:
        self._doc = doc
        return self

    def parameter(self, key: str, value: str) -> SchemaBuilder:
        self._parameters[key] = value
        return self

    def parameters(self, values: Mapping[str, str]) -> SchemaBuilder:
        self._parameters.update(values)
        return self

    def field(self, name: str, schema: Schema) -> SchemaBuilder:
        if self._type is not Type.STRUCT:
            raise SchemaBuilderError("Cannot create fields on type " + self._type.name)
        if any(f.name == name for f in self._fields):
            raise SchemaBuilderError(f"Cannot create field because of field name duplication {name}")
        self._fields.append(Field(name, len(self._fields), schema))
        return self

    def build(self) -> Schema:
        schema = Schema(self._type, self._optional, None, self._name, self._version, self._doc,
                        dict(self._parameters) or None, tuple(self._fields), self._key, self._value)
        if self._default is not None:
            validate_value(schema, self._default)
            schema = replace(schema, default=self._default)
        return schema


def decimal_schema(scale: int, optional: bool = False) -> Schema:
    return Schema(Type.BYTES, optional, name=DECIMAL_NAME, version=1,
                  parameters={DECIMAL_SCALE: str(scale)})


def date_schema(optional: bool = False) -> Schema:
    return Schema(Type.INT32, optional, name=DATE_NAME, version=1)


def time_schema(optional: bool = False) -> Schema:
    return Schema(Type.INT32, optional, name=TIME_NAME, version=1)


def timestamp_schema(optional: bool = False) -> Schema:
    return Schema(Type.INT64, optional, name=TIMESTAMP_NAME, version=1)


_LOGICAL_CLASSES: dict[str, tuple[type, ...]] = {
    DECIMAL_NAME: (decimal.Decimal,),
    DATE_NAME: (datetime.date,),
    TIME_NAME: (datetime.time,),
    TIMESTAMP_NAME: (datetime.datetime,),
}
_PRIMITIVE_CLASSES: dict[Type, tuple[type, ...]] = {
    Type.INT8: (int,), Type.INT16: (int,), Type.INT32: (int,), Type.INT64: (int,),
    Type.FLOAT32: (float, int), Type.FLOAT64: (float, int), Type.BOOLEAN: (bool,),
    Type.STRING: (str,), Type.BYTES: (bytes, bytearray, memoryview), Type.ARRAY: (list, tuple),
    Type.MAP: (dict,),
}


def validate_value(schema: Schema | None, value: Any, field_name: str | None = None) -> None:
    """Raise DataError unless `value` fits `schema` (Kafka's ConnectSchema.validateValue)."""
    where = f' for field: "{field_name}"' if field_name else ""
    if value is None:
        if schema is not None and not schema.optional and schema.default is None:
            raise DataError(f"Invalid value: null used for required field{where}, schema type: "
                            f"{schema.type.name}")
        return
    if schema is None:
        return
    expected = _LOGICAL_CLASSES.get(schema.name or "")
    if expected is None:
        _validate_plain(schema, value, where)
    elif not isinstance(value, expected):
        raise DataError(f"Invalid Java object for schema \"{schema.name}\" with type "
                        f"{schema.type.name}: {type(value).__name__}{where}")


def _validate_plain(schema: Schema, value: Any, where: str) -> None:
    from strom.connect.data.struct import Struct

    if schema.type is Type.STRUCT:
        if not isinstance(value, Struct) or value.schema != schema:
            raise DataError(f"Struct schemas do not match{where}.")
        value.validate()
        return
    allowed = _PRIMITIVE_CLASSES[schema.type]
    wrong_bool = isinstance(value, bool) and schema.type is not Type.BOOLEAN
    if not isinstance(value, allowed) or wrong_bool:
        raise DataError(f"Invalid Java object for schema with type {schema.type.name}: "
                        f"{type(value).__name__}{where}")
    _validate_contents(schema, value)


def _validate_contents(schema: Schema, value: Any) -> None:
    bounds = INT_RANGES.get(schema.type)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise DataError(f"Value {value} out of range for {schema.type.name}")
    if schema.type is Type.ARRAY:
        for item in value:
            validate_value(schema.value_schema, item)
    elif schema.type is Type.MAP:
        for key, item in value.items():
            validate_value(schema.key_schema, key)
            validate_value(schema.value_schema, item)


def infer_schema(value: Any) -> Schema | None:
    """The schema Kafka's Values.inferSchema gives a schemaless value, or None."""
    from strom.connect.data.struct import Struct

    if isinstance(value, Struct):
        return value.schema
    simple: list[tuple[type, Schema]] = [
        (bool, BOOLEAN_SCHEMA), (int, INT64_SCHEMA), (float, FLOAT64_SCHEMA),
        (str, STRING_SCHEMA), (bytes, BYTES_SCHEMA)]
    for kind, schema in simple:
        if isinstance(value, kind):
            return schema
    return None


def days_since_epoch(value: datetime.date) -> int:
    return (value - EPOCH.date()).days


def millis_of_day(value: datetime.time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def epoch_millis(value: datetime.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_millis(millis: int) -> datetime.datetime:
    return EPOCH + datetime.timedelta(milliseconds=millis)


def from_days(days: int) -> datetime.date:
    return EPOCH.date() + datetime.timedelta(days=days)


def from_millis_of_day(millis: int) -> datetime.time:
    seconds, ms = divmod(millis, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    return datetime.time(hours, mins, sec, ms * 1000)


def decimal_to_bytes(value: decimal.Decimal, scale: int) -> bytes:
    """Two's-complement big-endian unscaled value, as Java's BigInteger.toByteArray."""
    unscaled = int(value.scaleb(scale).to_integral_value())
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return unscaled.to_bytes(length, "big", signed=True)


def decimal_from_bytes(raw: bytes, scale: int) -> decimal.Decimal:
    return decimal.Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


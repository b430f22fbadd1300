"""Header SMTs: InsertHeader (a literal, typed the way Kafka's Values.parseString types it),
DropHeaders, HeaderFrom (copy or move fields into headers).
"""

from __future__ import annotations

from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance, one_of
from strom.connect.api.errors import ConfigError
from strom.connect.api.records import ConnectRecord
from strom.connect.converters.jsontext import to_float32
from strom.connect.data.schema import (
    BOOLEAN_SCHEMA,
    FLOAT32_SCHEMA,
    FLOAT64_SCHEMA,
    INT8_SCHEMA,
    INT16_SCHEMA,
    INT32_SCHEMA,
    INT64_SCHEMA,
    INT_RANGES,
    STRING_SCHEMA,
    Schema,
    SchemaBuilder,
    Type,
)
from strom.connect.data.struct import Struct
from strom.connect.transforms.base import (
    REPLACE_NULL_WITH_DEFAULT,
    KeyOrValue,
    Transformation,
    copy_schema_basics,
    define_replace_null,
    field_value,
    require_map,
    require_struct,
)

_INT_SCHEMAS = [(Type.INT8, INT8_SCHEMA), (Type.INT16, INT16_SCHEMA), (Type.INT32, INT32_SCHEMA),
                (Type.INT64, INT64_SCHEMA)]


def parse_literal(text: str) -> tuple[Schema, Any]:
    """A literal's schema and value: booleans, the smallest integer type, float or double,
    else the string itself (a subset of Kafka's Values.parseString)."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return BOOLEAN_SCHEMA, stripped.lower() == "true"
    try:
        number = int(stripped)
    except ValueError:
        return _parse_float(text)
    for kind, schema in _INT_SCHEMAS:
        low, high = INT_RANGES[kind]
        if low <= number <= high:
            return schema, number
    return STRING_SCHEMA, text


def _parse_float(text: str) -> tuple[Schema, Any]:
    try:
        number = float(text.strip())
    except ValueError:
        return STRING_SCHEMA, text
    if not any(c.isdigit() for c in text):
        return STRING_SCHEMA, text
    if to_float32(number) == number:
        return FLOAT32_SCHEMA, number
    return FLOAT64_SCHEMA, number


class InsertHeader(Transformation):
    """Add header `header` with the literal `value.literal`."""

    def config(self) -> ConfigDef:
        return (ConfigDef()
                .define("header", ConfigType.STRING, importance=Importance.HIGH,
                        documentation="The name of the header.")
                .define("value.literal", ConfigType.STRING, importance=Importance.HIGH,
                        documentation="The literal value that is to be set as the header value on all "
                                      "records."))

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.header = self.settings.get_string("header")
        self.schema, self.value = parse_literal(self.settings.get_string("value.literal"))

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        headers = record.headers.copy().add(self.header, self.value, self.schema)
        return record.new_record(record.topic, record.kafka_partition, record.key_schema, record.key,
                                 record.value_schema, record.value, record.timestamp, headers)


class DropHeaders(Transformation):
    """Remove every header named in `headers`."""

    def config(self) -> ConfigDef:
        return ConfigDef().define("headers", ConfigType.LIST, importance=Importance.HIGH,
                                  documentation="The name of the headers to be removed.")

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.names = set(self.settings.get_list("headers"))
        if not self.names:
            raise ConfigError("headers", "", "Empty list")

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        headers = record.headers.copy()
        for name in self.names:
            headers.remove(name)
        return record.new_record(record.topic, record.kafka_partition, record.key_schema, record.key,
                                 record.value_schema, record.value, record.timestamp, headers)


class HeaderFrom(KeyOrValue):
    """Copy or move `fields` into `headers` (same length, pairwise)."""

    PURPOSE = "header " + "from"

    def config(self) -> ConfigDef:
        d = (ConfigDef()
             .define("fields", ConfigType.LIST, importance=Importance.HIGH,
                     documentation="Field names in the record whose values are to be copied or moved "
                                   "to headers.")
             .define("headers", ConfigType.LIST, importance=Importance.HIGH,
                     documentation="Header names, in the same order as the field names listed in the "
                                   "fields configuration property.")
             .define("operation", ConfigType.STRING, importance=Importance.HIGH,
                     documentation="Either move if the fields are to be moved to the headers (removed "
                                   "from the key/value), or copy if the fields are to be copied to the "
                                   "headers (retained in the key/value).", validator=one_of("move", "copy")))
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.fields = self.settings.get_list("fields")
        self.headers = self.settings.get_list("headers")
        if len(self.fields) != len(self.headers):
            raise ConfigError("'fields' config must have the same number of elements as 'headers' "
                              "config.")
        self.move = self.settings.get_string("operation") == "move"
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        schema, value = self.operating_schema(record), self.operating_value(record)
        headers = record.headers.copy()
        if value is None:
            return record
        if schema is None:
            original = require_map(value, self.PURPOSE)
            for name, header in zip(self.fields, self.headers, strict=True):
                headers.add(header, original.get(name), None)
            kept = {k: v for k, v in original.items() if not (self.move and k in self.fields)}
            return self._with(record, None, kept, headers)
        struct = require_struct(value, self.PURPOSE)
        for name, header in zip(self.fields, self.headers, strict=True):
            found = schema.field(name)
            headers.add(header, field_value(struct, name, self.replace_null),
                        None if found is None else found.schema)
        if not self.move:
            return self._with(record, schema, struct, headers)
        builder = copy_schema_basics(schema, SchemaBuilder.struct())
        kept_fields = [f for f in schema.fields if f.name not in self.fields]
        for f in kept_fields:
            builder.field(f.name, f.schema)
        new_schema = builder.build()
        moved = Struct(new_schema)
        for f in kept_fields:
            moved.put(f.name, field_value(struct, f.name, self.replace_null))
        return self._with(record, new_schema, moved, headers)

    def _with(self, record: ConnectRecord, schema: Schema | None, value: Any, headers: Any) -> ConnectRecord:
        if self.is_key:
            return record.new_record(record.topic, record.kafka_partition, schema, value,
                                     record.value_schema, record.value, record.timestamp, headers)
        return record.new_record(record.topic, record.kafka_partition, record.key_schema, record.key,
                                 schema, value, record.timestamp, headers)


class HeaderFromKey(HeaderFrom):
    is_key = True


class HeaderFromValue(HeaderFrom):
    is_key = False

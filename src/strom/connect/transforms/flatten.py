"""Flatten: nested structs (or maps) become top-level fields named `parent<delimiter>child`.

A field under an optional struct becomes optional itself, since the parent may be null.
Arrays and maps inside a struct are kept whole, as Kafka does.
"""

from __future__ import annotations

from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance
from strom.connect.api.records import ConnectRecord
from strom.connect.data.schema import Schema, SchemaBuilder, Type
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


class Flatten(KeyOrValue):
    """Kafka's Flatten$Key / Flatten$Value."""

    PURPOSE = "flattening"

    def config(self) -> ConfigDef:
        d = ConfigDef().define("delimiter", ConfigType.STRING, ".", Importance.MEDIUM,
                               "Delimiter to insert between field names from the input record when "
                               "generating field names for the output record")
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.delimiter = self.settings.get_string("delimiter")
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        schema, value = self.operating_schema(record), self.operating_value(record)
        if schema is None:
            if value is None:
                return record
            flat: dict[str, Any] = {}
            self._flatten_map(require_map(value, self.PURPOSE), "", flat)
            return self.new_record(record, None, flat)
        builder = copy_schema_basics(schema, SchemaBuilder.struct())
        if schema.optional:
            builder.optional()
        self._flatten_schema(schema, "", False, builder)
        flat_schema = builder.build()
        if value is None:
            return self.new_record(record, flat_schema, None)
        flat_struct = Struct(flat_schema)
        self._flatten_struct(require_struct(value, self.PURPOSE), "", flat_struct)
        return self.new_record(record, flat_schema, flat_struct)

    def _name(self, prefix: str, name: str) -> str:
        return name if not prefix else prefix + self.delimiter + name

    def _flatten_map(self, value: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
        for key, item in value.items():
            if isinstance(item, dict):
                self._flatten_map(item, self._name(prefix, key), out)
            else:
                out[self._name(prefix, key)] = item

    def _flatten_schema(self, schema: Schema, prefix: str, optional: bool, builder: SchemaBuilder) -> None:
        for f in schema.fields:
            name = self._name(prefix, f.name)
            if f.schema.type is Type.STRUCT:
                self._flatten_schema(f.schema, name, optional or f.schema.optional, builder)
            else:
                builder.field(name, _leaf_schema(f.schema, optional))

    def _flatten_struct(self, value: Struct | None, prefix: str, out: Struct) -> None:
        if value is None:
            return
        for f in value.schema.fields:
            name = self._name(prefix, f.name)
            current = field_value(value, f.name, self.replace_null)
            if f.schema.type is Type.STRUCT:
                self._flatten_struct(current, name, out)
            else:
                out.put(name, current)


def _leaf_schema(source: Schema, parent_optional: bool) -> Schema:
    if not source.type.is_primitive:
        return source
    builder = copy_schema_basics(source, SchemaBuilder.of(source.type))
    if source.optional or parent_optional:
        builder.optional()
    if source.default is not None:
        builder.default_value(source.default)
    return builder.build()


class FlattenKey(Flatten):
    is_key = True


class FlattenValue(Flatten):
    is_key = False

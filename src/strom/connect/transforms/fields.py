"""Field-level SMTs with Kafka's config keys: InsertField, ReplaceField, MaskField,
ValueToKey, ExtractField, HoistField.

Schemaless records (`dict` values) and schema'd ones (`Struct`) are both handled, as in
Kafka; a rewritten struct gets a new schema carrying the original's name, version, doc
and parameters (SchemaUtil.copySchemaBasics). Tombstones (null values) pass through.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance
from strom.connect.api.errors import ConfigError, DataError
from strom.connect.api.records import ConnectRecord, SinkRecord
from strom.connect.data.schema import (
    INT32_SCHEMA,
    INT64_SCHEMA,
    OPTIONAL_INT32_SCHEMA,
    OPTIONAL_INT64_SCHEMA,
    OPTIONAL_STRING_SCHEMA,
    STRING_SCHEMA,
    Schema,
    SchemaBuilder,
    Type,
    from_epoch_millis,
    timestamp_schema,
)
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

# --- InsertField ---------------------------------------------------------------------------


class _InsertSpec:
    """`name`, `name?` (optional, the default) or `name!` (required)."""

    def __init__(self, spec: str | None) -> None:
        self.name: str | None = None
        self.optional = True
        if spec:
            self.optional = not spec.endswith("!")
            self.name = spec[:-1] if spec[-1] in "!?" else spec


class InsertField(KeyOrValue):
    """Insert the record's topic, partition, offset, timestamp or a static value."""

    PURPOSE = "field insertion"

    def config(self) -> ConfigDef:
        d = ConfigDef()
        for name, doc in (("topic.field", "topic"), ("partition.field", "partition"),
                          ("offset.field", "offset"), ("timestamp.field", "timestamp"),
                          ("static.field", "static data")):
            d.define(name, ConfigType.STRING, None, Importance.MEDIUM,
                     f"Field name for Kafka {doc}. Suffix with ! to make this a required field, "
                     "or ? to keep it optional (the default).")
        d.define("static.value", ConfigType.STRING, None, Importance.MEDIUM,
                 "Static field value, if field name configured.")
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        get = self.settings.get
        self.topic, self.partition = _InsertSpec(get("topic.field")), _InsertSpec(get("partition.field"))
        self.offset, self.timestamp = _InsertSpec(get("offset.field")), _InsertSpec(get("timestamp.field"))
        self.static, self.static_value = _InsertSpec(get("static.field")), get("static.value")
        self.replace_null = bool(get(REPLACE_NULL_WITH_DEFAULT))

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        value = self.operating_value(record)
        if value is None:
            return record
        schema = self.operating_schema(record)
        if schema is None:
            return self._schemaless(record, value)
        return self._with_schema(record, require_struct(value, self.PURPOSE))

    def _inserted(self, record: ConnectRecord) -> list[tuple[_InsertSpec, Schema, Any]]:
        offset = record.kafka_offset if isinstance(record, SinkRecord) else None
        if self.offset.name and offset is None and not self.offset.optional:
            raise DataError(f"Only SinkRecord supported for [{self.PURPOSE}], found: "
                            + type(record).__name__)
        ts = None if record.timestamp is None else from_epoch_millis(record.timestamp)
        return [
            (self.topic, OPTIONAL_STRING_SCHEMA if self.topic.optional else STRING_SCHEMA, record.topic),
            (self.partition, OPTIONAL_INT32_SCHEMA if self.partition.optional else INT32_SCHEMA,
             record.kafka_partition),
            (self.offset, OPTIONAL_INT64_SCHEMA if self.offset.optional else INT64_SCHEMA, offset),
            (self.timestamp, timestamp_schema(self.timestamp.optional), ts),
            (self.static, OPTIONAL_STRING_SCHEMA if self.static.optional else STRING_SCHEMA,
             self.static_value),
        ]

    def _schemaless(self, record: ConnectRecord, value: Any) -> ConnectRecord:
        updated = dict(require_map(value, self.PURPOSE))
        for spec, _schema, inserted in self._inserted(record):
            if spec.name is not None and not (spec is self.offset and inserted is None):
                updated[spec.name] = inserted
        return self.new_record(record, None, updated)

    def _with_schema(self, record: ConnectRecord, value: Struct) -> ConnectRecord:
        inserts = [(spec, s, v) for spec, s, v in self._inserted(record) if spec.name is not None]
        builder = copy_schema_basics(value.schema, SchemaBuilder.struct())
        for f in value.schema.fields:
            builder.field(f.name, f.schema)
        for spec, field_schema, _ in inserts:
            builder.field(str(spec.name), field_schema)
        schema = builder.build()
        updated = Struct(schema)
        for f in value.schema.fields:
            updated.put(f.name, field_value(value, f.name, self.replace_null))
        for spec, _, inserted in inserts:
            updated.put(str(spec.name), inserted)
        return self.new_record(record, schema, updated)


class InsertFieldKey(InsertField):
    is_key = True


class InsertFieldValue(InsertField):
    is_key = False


# --- ReplaceField --------------------------------------------------------------------------


class ReplaceField(KeyOrValue):
    """Keep (`include`), drop (`exclude`) and rename (`renames=old:new,...`) fields."""

    PURPOSE = "field replacement"

    def config(self) -> ConfigDef:
        d = (ConfigDef()
             .define("exclude", ConfigType.LIST, "", Importance.MEDIUM, "Fields to exclude.")
             .define("include", ConfigType.LIST, "", Importance.MEDIUM, "Fields to include.")
             .define("renames", ConfigType.LIST, "", Importance.MEDIUM,
                     "Field rename mappings.", validator=_check_renames))
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        merged = dict(configs)
        for old, new in (("blacklist", "exclude"), ("whitelist", "include")):
            if old in merged and new not in merged:
                merged[new] = merged.pop(old)
        super().configure({k: v for k, v in merged.items() if k not in ("blacklist", "whitelist")})
        self.exclude = set(self.settings.get_list("exclude"))
        self.include = set(self.settings.get_list("include"))
        self.renames = dict(pair.split(":", 1) for pair in self.settings.get_list("renames"))
        self.reverse = {new: old for old, new in self.renames.items()}
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def _keep(self, name: str) -> bool:
        return name not in self.exclude and (not self.include or name in self.include)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        value = self.operating_value(record)
        if value is None:
            return record
        schema = self.operating_schema(record)
        if schema is None:
            original = require_map(value, self.PURPOSE)
            return self.new_record(record, None, {self.renames.get(k, k): v for k, v in original.items()
                                                  if self._keep(k)})
        struct = require_struct(value, self.PURPOSE)
        builder = copy_schema_basics(schema, SchemaBuilder.struct())
        kept = [f for f in schema.fields if self._keep(f.name)]
        for f in kept:
            builder.field(self.renames.get(f.name, f.name), f.schema)
        new_schema = builder.build()
        updated = Struct(new_schema)
        for f in kept:
            updated.put(self.renames.get(f.name, f.name), field_value(struct, f.name, self.replace_null))
        return self.new_record(record, new_schema, updated)


def _check_renames(name: str, value: Any) -> None:
    for pair in value or []:
        parts = pair.split(":")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(name, value, "Invalid rename mapping: " + pair)


class ReplaceFieldKey(ReplaceField):
    is_key = True


class ReplaceFieldValue(ReplaceField):
    is_key = False


# --- MaskField -----------------------------------------------------------------------------

_EMPTY_BY_TYPE: dict[Type, Any] = {
    Type.BOOLEAN: False, Type.INT8: 0, Type.INT16: 0, Type.INT32: 0, Type.INT64: 0,
    Type.FLOAT32: 0.0, Type.FLOAT64: 0.0, Type.STRING: "", Type.ARRAY: [], Type.MAP: {},
}


def _empty_for_value(value: Any) -> Any:
    if isinstance(value, bool):
        return False
    if isinstance(value, decimal.Decimal):
        return decimal.Decimal(0)
    if isinstance(value, datetime.datetime | datetime.date):
        return from_epoch_millis(0)
    for kind, empty in ((int, 0), (float, 0.0), (str, ""), (list, []), (dict, {})):
        if isinstance(value, kind):
            return type(empty)()
    raise DataError("Cannot mask value of type: " + type(value).__name__)


class MaskField(KeyOrValue):
    """Replace the listed fields with the type's empty value or `replacement`."""

    PURPOSE = "mask fields"

    def config(self) -> ConfigDef:
        d = (ConfigDef()
             .define("fields", ConfigType.LIST, importance=Importance.HIGH,
                     documentation="Names of fields to mask.")
             .define("replacement", ConfigType.STRING, None, Importance.LOW,
                     "Custom value replacement, that will be applied to all 'fields' values."))
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.fields = set(self.settings.get_list("fields"))
        self.replacement = self.settings.get("replacement")
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def _masked(self, value: Any) -> Any:
        if value is None:
            return None
        if self.replacement is None:
            return _empty_for_value(value)
        return _replacement_for(value, self.replacement)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        value = self.operating_value(record)
        if value is None:
            return record
        if self.operating_schema(record) is None:
            original = require_map(value, self.PURPOSE)
            return self.new_record(record, None, {k: self._masked(v) if k in self.fields else v
                                                  for k, v in original.items()})
        struct = require_struct(value, self.PURPOSE)
        updated = Struct(struct.schema)
        for f in struct.schema.fields:
            current = field_value(struct, f.name, self.replace_null)
            updated.put(f.name, self._masked(current) if f.name in self.fields else current)
        return self.new_record(record, struct.schema, updated)


def _replacement_for(value: Any, replacement: str) -> Any:
    try:
        if isinstance(value, bool | datetime.date | list | dict):
            raise DataError("Cannot mask value of type " + type(value).__name__
                            + " with custom replacement.")
        if isinstance(value, int):
            return int(replacement)
        if isinstance(value, float):
            return float(replacement)
        if isinstance(value, decimal.Decimal):
            return decimal.Decimal(replacement)
    except (ValueError, decimal.InvalidOperation) as exc:
        raise DataError(f"Unable to convert {replacement} ({type(replacement).__name__}) "
                        f"to number") from exc
    return replacement


class MaskFieldKey(MaskField):
    is_key = True


class MaskFieldValue(MaskField):
    is_key = False


# --- ValueToKey ----------------------------------------------------------------------------


class ValueToKey(KeyOrValue):
    """Replace the key with a struct (or map) of the listed value fields."""

    PURPOSE = "copying fields from value to key"
    is_key = False  # reads the value, writes the key; a plugin of its own, not a $Key/$Value pair

    def config(self) -> ConfigDef:
        d = ConfigDef().define("fields", ConfigType.LIST, importance=Importance.HIGH,
                               documentation="Field names on the record value to extract as the record key.")
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.fields = self.settings.get_list("fields")
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        if record.value_schema is None:
            original = require_map(record.value, self.PURPOSE)
            plain_key = {name: original.get(name) for name in self.fields}
            return record.new_record(record.topic, record.kafka_partition, None, plain_key, None,
                                     record.value, record.timestamp)
        struct = require_struct(record.value, self.PURPOSE)
        builder = SchemaBuilder.struct()
        for name in self.fields:
            found = struct.schema.field(name)
            if found is None:
                raise DataError("Field does not exist: " + name)
            builder.field(name, found.schema)
        key_schema = builder.build()
        key = Struct(key_schema)
        for name in self.fields:
            key.put(name, field_value(struct, name, self.replace_null))
        return record.new_record(record.topic, record.kafka_partition, key_schema, key,
                                 record.value_schema, record.value, record.timestamp)


# --- ExtractField / HoistField ---------------------------------------------------------------


class ExtractField(KeyOrValue):
    """Replace the key or value with one of its fields (`field`; dotted paths with
    `field.syntax.version=V2`, KIP-821)."""

    PURPOSE = "field extraction"

    def config(self) -> ConfigDef:
        d = (ConfigDef()
             .define("field", ConfigType.STRING, importance=Importance.MEDIUM,
                     documentation="Field name to extract.")
             .define("field.syntax.version", ConfigType.STRING, "V1", Importance.HIGH,
                     "Defines the version of the syntax to access fields."))
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        name = self.settings.get_string("field")
        nested = self.settings.get_string("field.syntax.version").upper() == "V2"
        self.path = name.split(".") if nested else [name]
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        value, schema = self.operating_value(record), self.operating_schema(record)
        if schema is None:
            for step in self.path:
                value = None if value is None else require_map(value, self.PURPOSE).get(step)
            return self.new_record(record, None, value)
        for step in self.path:
            if schema is None or schema.type is not Type.STRUCT:
                raise DataError(f"Unknown field: {step}")
            found = schema.field(step)
            if found is None:
                raise DataError(f"Unknown field: {step}")
            value = None if value is None else field_value(
                require_struct(value, self.PURPOSE), step, self.replace_null)
            schema = found.schema
        return self.new_record(record, schema, value)


class ExtractFieldKey(ExtractField):
    is_key = True


class ExtractFieldValue(ExtractField):
    is_key = False


class HoistField(KeyOrValue):
    """Wrap the key or value in a struct (or map) with one field named `field`."""

    def config(self) -> ConfigDef:
        return ConfigDef().define("field", ConfigType.STRING, importance=Importance.MEDIUM,
                                  documentation="Field name for the single field that will be "
                                                "created in the resulting Struct or Map.")

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.field = self.settings.get_string("field")

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        schema, value = self.operating_schema(record), self.operating_value(record)
        if schema is None:
            return self.new_record(record, None, {self.field: value})
        hoisted = SchemaBuilder.struct().field(self.field, schema).build()
        struct = Struct(hoisted).put(self.field, value)
        return self.new_record(record, hoisted, struct)


class HoistFieldKey(HoistField):
    is_key = True


class HoistFieldValue(HoistField):
    is_key = False

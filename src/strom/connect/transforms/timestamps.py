"""TimestampConverter: between unix epochs (`unix.precision`), formatted strings (Java
`format` patterns) and the Date/Time/Timestamp logical types; `field` names a field, empty
means the whole key or value.
"""

from __future__ import annotations

import datetime
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance, one_of
from strom.connect.api.errors import ConfigError, DataError
from strom.connect.api.records import ConnectRecord
from strom.connect.data.schema import (
    DATE_NAME,
    EPOCH,
    TIME_NAME,
    TIMESTAMP_NAME,
    Schema,
    SchemaBuilder,
    Type,
    date_schema,
    epoch_millis,
    from_epoch_millis,
    time_schema,
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
from strom.connect.transforms.javatime import format_java, parse_java, tokens

TARGETS = ("string", "unix", "Date", "Time", "Timestamp")
_PRECISION = {"seconds": 1000, "milliseconds": 1, "microseconds": 1 / 1000, "nanoseconds": 1 / 1_000_000}
_DAY_MS = 86_400_000


class TimestampConverter(KeyOrValue):
    """Kafka's TimestampConverter$Key / $Value."""

    PURPOSE = "converting timestamp formats"

    def config(self) -> ConfigDef:
        d = (ConfigDef()
             .define("field", ConfigType.STRING, "", Importance.HIGH,
                     "The field containing the timestamp, or empty if the entire value is a timestamp")
             .define("target.type", ConfigType.STRING, importance=Importance.HIGH,
                     documentation="The desired timestamp representation: string, unix, Date, Time, "
                                   "or Timestamp", validator=one_of(*TARGETS))
             .define("format", ConfigType.STRING, "", Importance.MEDIUM,
                     "A SimpleDateFormat-compatible format for the timestamp.")
             .define("unix.precision", ConfigType.STRING, "milliseconds", Importance.LOW,
                     "The desired Unix precision for the timestamp.", validator=one_of(*_PRECISION)))
        return define_replace_null(d)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.field = self.settings.get_string("field")
        self.target = self.settings.get_string("target.type")
        self.format = self.settings.get_string("format")
        if self.format:
            tokens(self.format)
        elif self.target == "string":
            raise ConfigError("TimestampConverter requires format option to be specified when using "
                              "string timestamps")
        self.precision = _PRECISION[self.settings.get_string("unix.precision")]
        self.replace_null = self.settings.get_bool(REPLACE_NULL_WITH_DEFAULT)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        schema, value = self.operating_schema(record), self.operating_value(record)
        if value is None and not self.field:
            return self.new_record(record, None if schema is None else self._schema(schema), None)
        if value is None:
            return record
        if not self.field:
            new_schema = None if schema is None else self._schema(schema)
            return self.new_record(record, new_schema, self._convert(value, schema))
        if schema is None:
            original = dict(require_map(value, self.PURPOSE))
            original[self.field] = self._convert(original.get(self.field), None)
            return self.new_record(record, None, original)
        return self._struct(record, schema, require_struct(value, self.PURPOSE))

    def _struct(self, record: ConnectRecord, schema: Schema, value: Struct) -> ConnectRecord:
        builder = copy_schema_basics(schema, SchemaBuilder.struct())
        for f in schema.fields:
            builder.field(f.name, self._schema(f.schema) if f.name == self.field else f.schema)
        new_schema = builder.build()
        updated = Struct(new_schema)
        for f in schema.fields:
            current = field_value(value, f.name, self.replace_null)
            updated.put(f.name, self._convert(current, f.schema) if f.name == self.field else current)
        return self.new_record(record, new_schema, updated)

    def _schema(self, source: Schema) -> Schema:
        optional = source.optional
        if self.target == "string":
            return SchemaBuilder.of(Type.STRING).optional().build() if optional else \
                SchemaBuilder.of(Type.STRING).build()
        if self.target == "unix":
            return Schema(Type.INT64, optional)
        maker = {"Date": date_schema, "Time": time_schema, "Timestamp": timestamp_schema}[self.target]
        return maker(optional)

    def _millis(self, value: Any, schema: Schema | None) -> int:
        name = schema.name if schema is not None else None
        if name == DATE_NAME or (name is None and type(value) is datetime.date):
            return (value - EPOCH.date()).days * _DAY_MS
        if name == TIME_NAME or isinstance(value, datetime.time):
            return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000
        if name == TIMESTAMP_NAME or isinstance(value, datetime.datetime):
            return epoch_millis(value)
        if isinstance(value, str):
            if not self.format:
                raise DataError("TimestampConverter requires format option to be specified when "
                                "using string timestamps")
            return epoch_millis(parse_java(value, self.format))
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value * self.precision)
        raise DataError(f"Expected timestamp to be a Long, String, or Date, but found {type(value).__name__}")

    def _convert(self, value: Any, schema: Schema | None) -> Any:
        if value is None:
            return None
        millis = self._millis(value, schema)
        if self.target == "string":
            return format_java(from_epoch_millis(millis), self.format)
        if self.target == "unix":
            return int(millis / self.precision) if self.precision != 1 else millis
        if self.target == "Date":
            return from_epoch_millis(millis - millis % _DAY_MS).date()
        if self.target == "Time":
            return from_epoch_millis(millis % _DAY_MS).time()
        return from_epoch_millis(millis)


class TimestampConverterKey(TimestampConverter):
    is_key = True


class TimestampConverterValue(TimestampConverter):
    is_key = False

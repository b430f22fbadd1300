"""The connector-facing model: schemas and structs, ConfigDef parsing and validate's JSON
shape, and the JSON/string/bytes converters (bytes pinned from Kafka's JsonConverter)."""

from __future__ import annotations

import datetime
import decimal
import re

import pytest

from strom.connect.api.config import ConfigDef, ConfigType, Importance, at_least, config_infos
from strom.connect.api.errors import ConfigError, DataError
from strom.connect.converters import ByteArrayConverter, JsonConverter, StringConverter
from strom.connect.data.schema import (
    INT32_SCHEMA,
    OPTIONAL_STRING_SCHEMA,
    STRING_SCHEMA,
    SchemaBuilder,
    decimal_schema,
    timestamp_schema,
)
from strom.connect.data.struct import Struct

PERSON = (SchemaBuilder.struct().name("p").field("name", STRING_SCHEMA).field("age", INT32_SCHEMA)
          .field("nick", OPTIONAL_STRING_SCHEMA).build())


def converter(**props: str) -> JsonConverter:
    c = JsonConverter()
    c.configure(props, False)
    return c


def test_struct_put_checks_the_field_schema() -> None:
    person = Struct(PERSON).put("name", "ada").put("age", 36)
    with pytest.raises(DataError):
        person.put("age", "36")
    with pytest.raises(DataError):
        person.put("age", 2**31)
    with pytest.raises(DataError, match=re.escape("not a valid field name")):
        person.put("height", 1)
    person.validate()
    with pytest.raises(DataError, match=re.escape("null used for required field")):
        Struct(PERSON).put("age", 1).validate()


def test_json_envelope_bytes_are_kafkas() -> None:
    # bytes written by Kafka 4.4's JsonConverter for the same data
    person = Struct(PERSON).put("name", "ada").put("age", 36)
    assert converter().from_connect_data("t", PERSON, person) == (
        b'{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"name"},'
        b'{"type":"int32","optional":false,"field":"age"},{"type":"string","optional":true,'
        b'"field":"nick"}],"optional":false,"name":"p"},"payload":{"name":"ada","age":36,"nick":null}}')
    assert converter(**{"schemas.enable": "false"}).from_connect_data("t", None, {"x": 1e10}) == \
        b'{"x":1.0E10}'


def test_json_round_trip_of_logical_types() -> None:
    schema = (SchemaBuilder.struct().field("price", decimal_schema(2))
              .field("at", timestamp_schema()).build())
    value = Struct(schema).put("price", decimal.Decimal("-12.34")).put(
        "at", datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC))
    c = converter()
    raw = c.from_connect_data("t", schema, value)
    assert raw is not None and b'"price":"+y4="' in raw and b'"at":1704164645678' in raw
    back = c.to_connect_data("t", raw)
    assert back.schema == schema and back.value == value


def test_json_envelope_required_when_schemas_enabled() -> None:
    with pytest.raises(DataError, match=re.escape('requires "schema" and "payload"')):
        converter().to_connect_data("t", b'{"a":1}')
    assert converter(**{"schemas.enable": "false"}).to_connect_data("t", b'{"a":1}').value == {"a": 1}
    assert converter().to_connect_data("t", None).value is None


def test_string_and_bytes_converters() -> None:
    s = StringConverter()
    s.configure({}, False)
    assert s.from_connect_data("t", None, True) == b"true"
    assert s.to_connect_data("t", "é".encode()).value == "é"
    b = ByteArrayConverter()
    assert b.from_connect_data("t", None, b"\x00\x01") == b"\x00\x01"
    with pytest.raises(DataError, match=re.escape("not compatible")):
        b.from_connect_data("t", None, "text")


def test_config_def_parses_and_words_errors_like_kafka() -> None:
    d = (ConfigDef().define("topic", ConfigType.STRING, importance=Importance.HIGH, documentation="t")
         .define("batch.size", ConfigType.INT, 10, Importance.LOW, "b", validator=at_least(1))
         .define("topics", ConfigType.LIST, "", Importance.LOW, "l"))
    assert d.parse({"topic": "x", "topics": "a, b"}) == {"topic": "x", "batch.size": 10, "topics": ["a", "b"]}
    missing = 'Missing required configuration "topic" which has no default value.'
    with pytest.raises(ConfigError, match=re.escape(missing)):
        d.parse({})
    bad = "Invalid value x for configuration batch.size: Not a number of type INT"
    with pytest.raises(ConfigError, match=re.escape(bad)):
        d.parse({"topic": "t", "batch.size": "x"})
    infos = config_infos("C", d, d.validate({"batch.size": "0"}), [])
    assert infos["error_count"] == 2  # error messages, not keys
    first = infos["configs"][0]
    assert first["definition"] == {
        "name": "topic", "type": "STRING", "required": True, "default_value": None,
        "importance": "HIGH", "documentation": "t", "group": None, "order_in_group": -1,
        "width": "NONE", "display_name": "topic", "dependents": []}
    assert first["value"] == {"name": "topic", "value": None, "recommended_values": [],
                              "errors": [missing],
                              "visible": True}
    assert infos["configs"][1]["value"]["errors"] == [
        "Invalid value 0 for configuration batch.size: Value must be at least 1"]

"""The consume output and produce input grammars, offsets and times, without a broker."""

from __future__ import annotations

import json

import pytest

from strom.cli.common import CliError, parse_kv, parse_topic_partitions
from strom.cli.formats import (
    LineParser,
    Record,
    Renderer,
    StartOffset,
    decoder,
    parse_offset,
    parse_timestamp,
)

REC = Record("orders", 2, 41, b"k1", b"hello", [("a", b"1"), ("b", None)], 1700000000000,
             "CreateTime")


def test_kcat_format_fields_and_escapes() -> None:
    render = Renderer("%t/%p@%o %k=%v [%h] %T %K %S%%\\t|\\n")
    assert render(REC) == b"orders/2@41 k1=hello [a=1,b=] 1700000000000 2 5%\t|\n"
    assert Renderer("%s\\n")(REC) == b"hello\n"
    null = Record("t", 0, 0, None, None, None, -1, "NotAvailable")
    assert Renderer("[%k][%v] %K %S")(null) == b"[][] -1 -1"
    with pytest.raises(CliError, match="unknown field %x"):
        Renderer("%x")


def test_json_envelope() -> None:
    envelope = json.loads(Renderer("json")(REC))
    assert envelope == {"topic": "orders", "partition": 2, "offset": 41,
                        "timestamp": 1700000000000, "timestamp_type": "CreateTime",
                        "key": "k1", "value": "hello",
                        "headers": [{"key": "a", "value": "1"}, {"key": "b", "value": None}]}
    binary = Record("t", 0, 0, None, b"\xff\x00", None, 0, "CreateTime")
    envelope = json.loads(Renderer("json")(binary))
    assert envelope["value"] == "/wA=" and envelope["value_encoding"] == "base64"
    as_json = Record("t", 0, 0, b"\x00\x00\x00\x07", b'{"a": [1, 2]}', None, 0, "CreateTime")
    envelope = json.loads(Renderer("json", key_decoder="int", value_decoder="json")(as_json))
    assert envelope["key"] == 7 and envelope["value"] == {"a": [1, 2]}


def test_decoders() -> None:
    assert decoder("auto")(b"plain") == b"plain"
    assert decoder("auto")(b"\x00\xffa") == b"\\x00\\xffa"
    assert decoder("raw")(b"\x00") == b"\x00"
    assert decoder("hex")(b"\x01\xab") == b"01ab"
    assert decoder("base64")(b"hi") == b"aGk="
    assert decoder("json")(b'{"a":1}') == b'{"a": 1}'
    assert decoder("json", pretty=True)(b'{"a":1}') == b'{\n  "a": 1\n}'
    assert decoder("json")(b"not json") == b"not json"
    assert decoder("int")(b"\xff\xff\xff\xfe") == b"-2"
    assert decoder("text")(b"a\xffb") == "a\ufffdb".encode()
    with pytest.raises(CliError):
        decoder("yaml")


def test_line_parser_layouts() -> None:
    plain = LineParser()
    assert plain(b"just a value", 1).value == b"just a value"
    keyed = LineParser(key_delimiter="::")
    item = keyed(b"k::v::w", 1)
    assert (item.key, item.value) == (b"k", b"v::w")
    assert keyed(b"no delimiter", 2).key is None
    nulls = LineParser(key_delimiter=":", null_empty=True)
    assert nulls(b":v", 1).key is None
    pattern = LineParser("%T|%p|%k|%h|%v\\n")
    item = pattern(b"17|2|key|a=1,b=2|value|with|bars", 1)
    assert (item.timestamp, item.partition, item.key, item.value) == (17, 2, b"key",
                                                                      b"value|with|bars")
    assert item.headers == [("a", b"1"), ("b", b"2")]
    with pytest.raises(CliError, match="line 3 does not match"):
        pattern(b"no bars", 3)
    with pytest.raises(CliError, match="must be an integer"):
        pattern(b"x|2|k||v", 4)
    with pytest.raises(CliError, match="no %v"):
        LineParser("%k")
    with pytest.raises(CliError, match="either"):
        LineParser("%k %v", key_delimiter=":")


def test_json_input_reads_the_consume_envelope_back() -> None:
    envelope = Renderer("json", value_decoder="json")(
        Record("t", 1, 5, b"\xff", b'{"x": 1}', [("h", b"v")], 9, "CreateTime"))
    item = LineParser("json")(envelope.rstrip(b"\n"), 1)
    assert item.key == b"\xff" and json.loads(item.value or b"") == {"x": 1}
    assert item.headers == [("h", b"v")] and item.partition == 1 and item.timestamp == 9
    with pytest.raises(CliError, match="not JSON"):
        LineParser("json")(b"{", 1)


def test_offsets_and_times() -> None:
    assert parse_offset("beginning") == (StartOffset("beginning"), None)
    assert parse_offset("end") == (StartOffset("end"), None)
    assert parse_offset("42") == (StartOffset("offset", 42), None)
    assert parse_offset("-5") == (StartOffset("tail", 5), None)
    assert parse_offset("+5") == (StartOffset("from_start", 5), None)
    assert parse_offset("s@1700000000000") == (StartOffset("timestamp", 1700000000000), None)
    assert parse_offset("e@1700000000000") == (None, 1700000000000)
    with pytest.raises(CliError):
        parse_offset("soon")
    now = 1_700_000_000_000
    assert parse_timestamp("-15m", now) == now - 900_000
    assert parse_timestamp("-2h", now) == now - 7_200_000
    assert parse_timestamp("now", now) == now
    assert parse_timestamp("2023-11-14T22:13:20Z") == now
    assert parse_timestamp("2023-11-14T23:13:20+01:00") == now
    with pytest.raises(CliError):
        parse_timestamp("yesterday-ish")


def test_argument_parsers() -> None:
    assert parse_kv(["a=1", "b=x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(CliError):
        parse_kv(["novalue"])
    assert parse_topic_partitions(["t", "u:0,2,2"]) == {"t": None, "u": [0, 2]}
    with pytest.raises(CliError):
        parse_topic_partitions(["u:x"])

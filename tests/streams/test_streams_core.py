"""Layer 1: serdes, topology model, Processor API and punctuation, through the test driver."""

from __future__ import annotations

import struct

import pytest

from strom.streams.errors import InvalidTimestampError, SerializationError, TopologyError
from strom.streams.processor import Processor, PunctuationType
from strom.streams.record import Record
from strom.streams.serdes import (
    DoubleSerde,
    IntegerSerde,
    JsonSerde,
    LongSerde,
    SchemaRegistrySerde,
    Serdes,
    SessionWindowedSerde,
    StringSerde,
    TimeWindowedSerde,
)
from strom.streams.testing import TopologyTestDriver
from strom.streams.timestamps import (
    LogAndSkipOnInvalidTimestamp,
    UsePartitionTimeOnInvalidTimestamp,
)
from strom.streams.topology import Topology
from strom.streams.windows import Window, Windowed

S = Serdes.String


# --- serdes -----------------------------------------------------------------------------

def test_streams_numbers_are_big_endian_like_kafka() -> None:
    assert IntegerSerde().serialize("t", 1) == b"\x00\x00\x00\x01"
    assert IntegerSerde().serialize("t", -2) == b"\xff\xff\xff\xfe"
    assert LongSerde().serialize("t", 258) == b"\x00" * 6 + b"\x01\x02"
    assert LongSerde().deserialize("t", b"\xff" * 8) == -1
    assert DoubleSerde().serialize("t", 1.5) == struct.pack(">d", 1.5)
    with pytest.raises(SerializationError, match="is not 8"):
        LongSerde().deserialize("t", b"\x00\x01")


def test_streams_none_is_a_tombstone_both_ways() -> None:
    for serde in (IntegerSerde(), LongSerde(), StringSerde(), JsonSerde(), Serdes.Bytes):
        assert serde.serialize("t", None) is None
        assert serde.deserialize("t", None) is None


def test_streams_json_and_string_serdes() -> None:
    assert JsonSerde().serialize("t", {"a": [1, 2]}) == b'{"a":[1,2]}'
    assert JsonSerde().deserialize("t", b'{"x":1}') == {"x": 1}
    assert StringSerde().serialize("t", "ü") == "ü".encode()
    with pytest.raises(SerializationError):
        StringSerde().serialize("t", 5)  # type: ignore[arg-type]
    with pytest.raises(SerializationError):
        JsonSerde().deserialize("t", b"{nope")


class _Registry:
    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, int] = {}

    def register(self, subject: str, schema: str) -> int:
        schema_id = self.subjects.setdefault(subject, 100 + len(self.subjects))
        self.schemas[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> str:
        return self.schemas[schema_id]


class _JsonCodec:
    def encode(self, schema: str, value: object) -> bytes:
        return JsonSerde().to_bytes(value)

    def decode(self, schema: str, payload: bytes) -> object:
        return JsonSerde().from_bytes(payload)


def test_streams_schema_registry_hook_writes_confluent_wire_format() -> None:
    registry = _Registry()
    serde = SchemaRegistrySerde(registry, _JsonCodec(), '{"type":"record"}')
    data = serde.serialize("orders", {"id": 1})
    assert data is not None and data[:5] == b"\x00\x00\x00\x00\x64"
    assert registry.subjects == {"orders-value": 100}
    assert serde.deserialize("orders", data) == {"id": 1}
    with pytest.raises(SerializationError, match="magic"):
        serde.deserialize("orders", b"\x01abcd")


def test_streams_windowed_key_serdes_match_kafka_layout() -> None:
    tw = TimeWindowedSerde(S, 100)
    data = tw.serialize("t", Windowed("k", Window(200, 300)))
    assert data == b"k" + struct.pack(">q", 200)
    assert tw.deserialize("t", data) == Windowed("k", Window(200, 300))
    sw = SessionWindowedSerde(S)
    data = sw.serialize("t", Windowed("k", Window(5, 9)))
    assert data == b"k" + struct.pack(">qq", 9, 5)
    assert sw.deserialize("t", data) == Windowed("k", Window(5, 9))


# --- topology ---------------------------------------------------------------------------

class Upper(Processor):
    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(record.value.upper()))


def test_streams_topology_rejects_bad_graphs() -> None:
    t = Topology().add_source("src", "in")
    with pytest.raises(TopologyError, match="already exists"):
        t.add_source("src", "other")
    with pytest.raises(TopologyError, match="already read"):
        t.add_source("src2", "in")
    with pytest.raises(TopologyError, match="does not exist"):
        t.add_processor("p", Upper, "missing")
    t.add_sink("out", "o", "src")
    with pytest.raises(TopologyError, match="has no children"):
        t.add_processor("p", Upper, "out")


def test_streams_subtopologies_split_at_topics_and_describe() -> None:
    t = (Topology()
         .add_source("a", "in-a").add_processor("pa", Upper, "a").add_sink("sa", "mid", "pa")
         .add_source("b", "mid").add_processor("pb", Upper, "b").add_sink("sb", "out", "pb"))
    subs = t.subtopologies()
    assert [s.nodes for s in subs] == [["a", "pa", "sa"], ["b", "pb", "sb"]]
    assert subs[0].source_topics == ["in-a"] and subs[1].sink_topics == ["out"]
    text = t.describe()
    assert "Sub-topology: 1" in text
    assert "    Source: b (topics: [mid])\n      --> pb" in text
    assert "      <-- b" in text


def test_streams_processor_forwards_with_metadata_and_headers() -> None:
    seen: list[Record] = []

    class Spy(Processor):
        def process(self, record: Record) -> None:
            seen.append(record)
            self.context.forward(record.with_headers([*record.headers, ("seen", b"1")]))

    t = (Topology().add_source("src", "in", key_serde=S, value_serde=S)
         .add_processor("up", Upper, "src").add_processor("spy", Spy, "up")
         .add_sink("out", "out", "spy", key_serde=S, value_serde=S))
    with TopologyTestDriver(t) as driver:
        driver.create_input_topic("in", S, S).pipe_input("k", "hello", 42, [("h", b"x")])
        (out,) = driver.create_output_topic("out", S, S).read_records_to_list()
    assert (out.key, out.value, out.timestamp) == ("k", "HELLO", 42)
    assert list(out.headers) == [("h", b"x"), ("seen", b"1")]
    assert (seen[0].topic, seen[0].partition, seen[0].offset) == ("in", 0, 0)


def test_streams_forward_to_one_named_child() -> None:
    class Router(Processor):
        def process(self, record: Record) -> None:
            self.context.forward(record, to="even" if int(record.value) % 2 == 0 else "odd")

    t = (Topology().add_source("src", "in", value_serde=S).add_processor("r", Router, "src")
         .add_sink("even", "evens", "r", value_serde=S).add_sink("odd", "odds", "r", value_serde=S))
    with TopologyTestDriver(t) as driver:
        driver.create_input_topic("in", S, S).pipe_value_list(["1", "2", "3"])
        assert driver.create_output_topic("evens", S, S).read_values_to_list() == ["2"]
        assert driver.create_output_topic("odds", S, S).read_values_to_list() == ["1", "3"]


class Ticker(Processor):
    """Emits the punctuation times it sees, of both kinds."""

    def init(self, context):  # type: ignore[no-untyped-def]
        super().init(context)
        context.schedule(10, PunctuationType.STREAM_TIME, self._emit("stream"))
        self.wall = context.schedule(100, PunctuationType.WALL_CLOCK_TIME, self._emit("wall"))

    def _emit(self, kind: str):  # type: ignore[no-untyped-def]
        return lambda now: self.context.forward(Record(kind, str(now), now))

    def process(self, record: Record) -> None:
        if record.value == "stop-wall":
            self.wall.cancel()


def _ticker_driver() -> TopologyTestDriver:
    t = (Topology().add_source("src", "in", value_serde=S).add_processor("tick", Ticker, "src")
         .add_sink("out", "out", "tick", key_serde=S, value_serde=S))
    return TopologyTestDriver(t, initial_wall_clock_ms=1000)


def test_streams_stream_time_punctuation_follows_record_timestamps() -> None:
    with _ticker_driver() as driver:
        inp, out = driver.create_input_topic("in", S, S), driver.create_output_topic("out", S, S)
        inp.pipe_input(None, "x", 3)    # first record: due at 0 -> fires at 3, next 10
        inp.pipe_input(None, "x", 9)    # not due
        inp.pipe_input(None, "x", 35)   # due at 10; missed 20, 30 -> fires once, next 40
        inp.pipe_input(None, "x", 20)   # out of order: stream time stays 35
        inp.pipe_input(None, "x", 40)
        assert out.read_key_values_to_list() == [("stream", "3"), ("stream", "35"), ("stream", "40")]


def test_streams_wall_clock_punctuation_follows_the_mock_clock() -> None:
    with _ticker_driver() as driver:
        inp, out = driver.create_input_topic("in", S, S), driver.create_output_topic("out", S, S)
        driver.advance_wall_clock_time(99)
        assert out.is_empty()
        driver.advance_wall_clock_time(1)
        driver.advance_wall_clock_time(250)
        assert out.read_key_values_to_list() == [("wall", "1100"), ("wall", "1350")]
        inp.pipe_input(None, "stop-wall", 1)
        out.read_records_to_list()
        driver.advance_wall_clock_time(1000)
        assert out.is_empty()


def test_streams_negative_timestamps_fail_skip_or_take_partition_time() -> None:
    t = (Topology().add_source("src", "in", value_serde=S)
         .add_sink("out", "out", "src", value_serde=S))
    with TopologyTestDriver(t) as driver, pytest.raises(InvalidTimestampError):
        driver.create_input_topic("in", S, S).pipe_input(None, "x", -5)
    with TopologyTestDriver(t, timestamp_extractor=LogAndSkipOnInvalidTimestamp()) as driver:
        inp = driver.create_input_topic("in", S, S)
        inp.pipe_input(None, "a", -5)
        inp.pipe_input(None, "b", 7)
        assert driver.create_output_topic("out", S, S).read_values_to_list() == ["b"]
    with TopologyTestDriver(t, timestamp_extractor=UsePartitionTimeOnInvalidTimestamp()) as driver:
        inp = driver.create_input_topic("in", S, S)
        inp.pipe_input(None, "a", 7)
        inp.pipe_input(None, "b", -1)
        out = driver.create_output_topic("out", S, S).read_records_to_list()
        assert [r.timestamp for r in out] == [7, 7]


def test_streams_bad_record_fails_or_is_skipped() -> None:
    t = (Topology().add_source("src", "in", value_serde=Serdes.Long)
         .add_sink("out", "out", "src", value_serde=Serdes.Long))
    with TopologyTestDriver(t) as driver, pytest.raises(SerializationError):
        driver.pipe_raw("in", None, b"short", 1)
    with TopologyTestDriver(t, skip_bad_records=True) as driver:
        driver.pipe_raw("in", None, b"short", 1)
        driver.pipe_raw("in", None, struct.pack(">q", 5), 2)
        assert driver.create_output_topic("out", S, Serdes.Long).read_values_to_list() == [5]


def test_streams_auto_advancing_input_topic() -> None:
    t = Topology().add_source("src", "in", value_serde=S).add_sink("out", "out", "src")
    with TopologyTestDriver(t, default_value_serde=S) as driver:
        inp = driver.create_input_topic("in", S, S, start_timestamp=100, auto_advance_ms=5)
        inp.pipe_value_list(["a", "b"])
        inp.advance_time(100)
        inp.pipe_input(None, "c")
        out = driver.create_output_topic("out", S, S).read_records_to_list()
        assert [r.timestamp for r in out] == [100, 105, 210]


def test_streams_bad_records_go_to_the_dead_letter_topic() -> None:
    class Picky(Processor):
        def process(self, record: Record) -> None:
            if record.value == 13:
                raise RuntimeError("unlucky")
            self.context.forward(record)

    t = (Topology().add_source("src", "in", value_serde=Serdes.Long)
         .add_processor("picky", Picky, "src")
         .add_sink("out", "out", "picky", value_serde=Serdes.Long))
    with TopologyTestDriver(t, dead_letter_topic="dlq",
                            continue_on_processing_error=True) as driver:
        driver.pipe_raw("in", b"k", b"short", 1)                 # cannot be deserialized
        driver.pipe_raw("in", None, struct.pack(">q", 13), 2)    # fails in the processor
        driver.pipe_raw("in", None, struct.pack(">q", 5), 3)
        assert driver.create_output_topic("out", S, Serdes.Long).read_values_to_list() == [5]
        dead = driver.create_output_topic("dlq").read_raw()
    assert [(r.key, r.value) for r in dead] == [(b"k", b"short"), (None, struct.pack(">q", 13))]
    headers = dict(dead[1].headers)
    assert headers["__streams.errors.exception"] == b"RuntimeError"
    assert headers["__streams.errors.message"] == b"unlucky"
    assert (headers["__streams.errors.topic"], headers["__streams.errors.offset"]) == (b"in", b"1")
    assert b"unlucky" in headers["__streams.errors.stacktrace"]


def test_streams_processing_errors_fail_by_default() -> None:
    class Broken(Processor):
        def process(self, record: Record) -> None:
            raise RuntimeError("boom")

    t = Topology().add_source("src", "in").add_processor("p", Broken, "src")
    with TopologyTestDriver(t) as driver, pytest.raises(RuntimeError, match="boom"):
        driver.pipe_raw("in", None, b"x", 1)

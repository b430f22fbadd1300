"""Layer 3: the DSL through the test driver: stateless operations, grouping and
aggregation with repartitioning, windows of each built kind with late records,
suppression, tables and the stream-table join."""

from __future__ import annotations

import random
import struct

import pytest

from strom.streams import (
    Grouped,
    Materialized,
    Serdes,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    Suppressed,
    TimeWindows,
    TopologyTestDriver,
    Window,
    Windowed,
)
from strom.streams.serdes import SessionWindowedSerde, TimeWindowedSerde

S, L = Serdes.String, Serdes.Long


def _word_count(builder: StreamsBuilder, store: str | None = "counts") -> None:
    (builder.stream("lines", key_serde=S, value_serde=S)
     .flat_map_values(lambda line: line.lower().split())
     .group_by(lambda _, word: word, Grouped(key_serde=S, value_serde=S))
     .count(store)
     .to_stream()
     .to("counts-out"))


def test_streams_word_count_repartitions_and_counts() -> None:
    builder = StreamsBuilder()
    _word_count(builder)
    topology = builder.build()
    assert [s.source_topics for s in topology.subtopologies()] == [["lines"],
                                                                    ["counts-repartition"]]
    with TopologyTestDriver(topology, "wc") as driver:
        lines = driver.create_input_topic("lines", S, S)
        lines.pipe_input(None, "the quick fox", 1)
        lines.pipe_input(None, "The lazy dog", 2)
        out = driver.create_output_topic("counts-out", S, L)
        assert out.read_key_values_to_list() == [("the", 1), ("quick", 1), ("fox", 1),
                                                 ("the", 2), ("lazy", 1), ("dog", 1)]
        assert driver.get_state_store("counts").get("the") == 2
        repartition = driver.create_output_topic("wc-counts-repartition").read_raw()
        changelog = driver.create_output_topic("wc-counts-changelog").read_raw()
    assert [r.key for r in repartition][:3] == [b"the", b"quick", b"fox"]
    assert changelog[3].key == b"the" and changelog[3].value == struct.pack(">q", 2)


def test_streams_unnamed_store_gets_kafka_style_generated_names() -> None:
    builder = StreamsBuilder()
    _word_count(builder, store=None)
    text = builder.build().describe()
    assert "Source: KSTREAM-SOURCE-0000000000 (topics: [lines])" in text
    assert "KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition" in text
    assert "Processor: KSTREAM-AGGREGATE-0000000004 (stores: [KSTREAM-AGGREGATE-STATE-STORE-" in text


def test_streams_no_repartition_when_the_key_is_kept() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde=S, value_serde=S).map_values(str.upper)
     .filter(lambda k, v: v != "X").group_by_key().count("c"))
    topology = builder.build()
    assert len(topology.subtopologies()) == 1 and topology.internal_topics == {}


def test_streams_stateless_operations() -> None:
    builder = StreamsBuilder()
    seen: list[tuple[str, str]] = []
    src = builder.stream("in", key_serde=S, value_serde=S)
    src.filter(lambda k, v: v.startswith("a")).to("starts-a")
    src.filter_not(lambda k, v: v.startswith("a")).peek(lambda k, v: seen.append((k, v))).to("rest")
    src.map(lambda k, v: (v, k)).to("swapped", S, S)
    src.select_key(lambda k, v: v[:1]).to("first-letter", S)
    src.flat_map(lambda k, v: [(k, c) for c in v]).to("chars", S, S)
    small, big = src.map_values(len).branch(lambda k, n: n < 3, lambda k, n: True)
    small.to("small", value_serde=Serdes.Integer)
    big.to("big", value_serde=Serdes.Integer)
    src.merge(builder.stream("in2", key_serde=S, value_serde=S)).to("merged")
    collected: list[str] = []
    src.foreach(lambda k, v: collected.append(v))
    with TopologyTestDriver(builder.build()) as driver:
        inp = driver.create_input_topic("in", S, S)
        inp.pipe_input("k1", "abc", 1)
        inp.pipe_input("k2", "xy", 2)
        driver.create_input_topic("in2", S, S).pipe_input("k3", "zz", 3)

        def read(topic: str, value_serde=S):  # type: ignore[no-untyped-def]
            return driver.create_output_topic(topic, S, value_serde).read_key_values_to_list()

        assert read("starts-a") == [("k1", "abc")]
        assert read("rest") == [("k2", "xy")] and seen == [("k2", "xy")]
        assert read("swapped") == [("abc", "k1"), ("xy", "k2")]
        assert read("first-letter") == [("a", "abc"), ("x", "xy")]
        assert read("chars") == [("k1", "a"), ("k1", "b"), ("k1", "c"), ("k2", "x"), ("k2", "y")]
        assert read("small", Serdes.Integer) == [("k2", 2)]
        assert read("big", Serdes.Integer) == [("k1", 3)]
        assert read("merged") == [("k1", "abc"), ("k2", "xy"), ("k3", "zz")]
        assert collected == ["abc", "xy"]


def test_streams_reduce_and_aggregate_keep_latest_timestamp_and_skip_nulls() -> None:
    builder = StreamsBuilder()
    grouped = builder.stream("in", key_serde=S, value_serde=Serdes.Long).group_by_key()
    grouped.reduce(lambda a, b: a + b, "sum").to_stream().to("sums")
    grouped.aggregate(list, lambda k, v, agg: [*agg, v],
                      Materialized.as_("lists", value_serde=Serdes.Json)).to_stream().to("lists")
    with TopologyTestDriver(builder.build()) as driver:
        inp = driver.create_input_topic("in", S, Serdes.Long)
        inp.pipe_input("a", 5, 10)
        inp.pipe_input("a", 7, 4)
        inp.pipe_input("a", None, 20)   # null value: skipped
        inp.pipe_input(None, 1, 21)     # null key: skipped
        sums = driver.create_output_topic("sums", S, Serdes.Long).read_records_to_list()
        lists = driver.create_output_topic("lists", S, Serdes.Json).read_values_to_list()
    assert [(r.value, r.timestamp) for r in sums] == [(5, 10), (12, 10)]
    assert lists == [[5], [5, 7]]


def _windowed_count_topology(suppress: bool) -> StreamsBuilder:
    builder = StreamsBuilder()
    table = (builder.stream("clicks", key_serde=S, value_serde=S).group_by_key()
             .windowed_by(TimeWindows.of(10, grace_ms=5)).count("per-window"))
    if suppress:
        table = table.suppress(Suppressed.until_window_closes())
    table.to_stream().to("out")
    return builder


def _pipe(driver: TopologyTestDriver, topic: str, records: list[tuple[str, int]]) -> None:
    inp = driver.create_input_topic(topic, S, S)
    for key, ts in records:
        inp.pipe_input(key, "x", ts)


CLICKS = [("a", 1), ("a", 12), ("a", 3), ("a", 20), ("a", 4), ("b", 30)]


def test_streams_tumbling_window_count_with_grace_drops_late_records() -> None:
    with TopologyTestDriver(_windowed_count_topology(False).build(), "w") as driver:
        _pipe(driver, "clicks", CLICKS)
        out = driver.create_output_topic("out", TimeWindowedSerde(S, 10), L)
        got = [(r.key, r.value, r.timestamp) for r in out.read_records_to_list()]
        store = driver.get_state_store("per-window")
        # retention = size + grace = 15 behind the newest window start (30): as in Kafka,
        # older windows are gone from every read
        assert store.fetch_range("a", 0, 100) == [(20, 1)]
        changelog = driver.create_output_topic("w-per-window-changelog").read_raw()
    assert got == [(Windowed("a", Window(0, 10)), 1, 1), (Windowed("a", Window(10, 20)), 1, 12),
                   (Windowed("a", Window(0, 10)), 2, 3), (Windowed("a", Window(20, 30)), 1, 20),
                   (Windowed("b", Window(30, 40)), 1, 30)]
    assert changelog[2].key == b"a" + struct.pack(">qi", 0, 0)
    assert (changelog[2].value, changelog[2].timestamp) == (struct.pack(">q", 2), 3)


def test_streams_hopping_windows_update_every_window_of_a_record() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde=S, value_serde=S).group_by_key()
     .windowed_by(TimeWindows.of(10).advance_by(5)).count().to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        _pipe(driver, "in", [("k", 7)])
        out = driver.create_output_topic("out", TimeWindowedSerde(S, 10), L)
        assert [r.key.window for r in out.read_records_to_list()] == [Window(0, 10), Window(5, 15)]


def test_streams_suppress_emits_only_final_window_results() -> None:
    with TopologyTestDriver(_windowed_count_topology(True).build()) as driver:
        _pipe(driver, "clicks", CLICKS)
        out = driver.create_output_topic("out", TimeWindowedSerde(S, 10), L)
        got = [(r.key, r.value, r.timestamp) for r in out.read_records_to_list()]
    assert got == [(Windowed("a", Window(0, 10)), 2, 3), (Windowed("a", Window(10, 20)), 1, 12)]


def test_streams_session_windows_merge_and_retract() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde=S, value_serde=S).group_by_key()
     .windowed_by(SessionWindows.with_inactivity_gap(10)).count("sessions")
     .to_stream().to("out"))
    with TopologyTestDriver(builder.build(), "s") as driver:
        _pipe(driver, "in", [("u", 0), ("u", 5), ("u", 30), ("u", 20), ("u", 2)])
        out = driver.create_output_topic("out", SessionWindowedSerde(S), L)
        got = [(r.key.window, r.value, r.timestamp) for r in out.read_records_to_list()]
        store = driver.get_state_store("sessions")
        # retention = gap + grace = 10 behind the newest session end (30): [0, 5] expired
        assert [(w.window, v) for w, v in store.fetch("u")] == [(Window(20, 30), 2)]
        changelog = driver.create_output_topic("s-sessions-changelog").read_raw()
    assert got == [(Window(0, 0), 1, 0), (Window(0, 0), None, 0), (Window(0, 5), 2, 5),
                   (Window(30, 30), 1, 30), (Window(30, 30), None, 30), (Window(20, 30), 2, 30)]
    assert changelog[-1].key == b"u" + struct.pack(">qq", 30, 20)


def _sliding_windows_by_brute_force(times: list[int], d: int) -> dict[Window, int]:
    """The windows KIP-450 defines over `times` and how many records each holds."""
    starts = set()
    for t in times:
        starts.add(max(0, t - d))  # left window; records before D share [0, D]
        if any(t < u <= t + d for u in times):
            starts.add(t + 1)  # right window, once a later record falls into it
    return {Window(s, s + d): sum(1 for u in times if s <= u <= s + d) for s in starts}


@pytest.mark.parametrize("seed", range(6))
def test_streams_sliding_windows_hold_exactly_the_records_within_them(seed: int) -> None:
    rng = random.Random(seed)
    times = sorted(rng.sample(range(0, 120), 25))
    if seed % 2:
        rng.shuffle(times)  # out of order, within the grace
    builder = StreamsBuilder()
    (builder.stream("in", key_serde=S, value_serde=S).group_by_key()
     .windowed_by(SlidingWindows.of(10, grace_ms=1000)).count("sliding")
     .to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        _pipe(driver, "in", [("k", t) for t in times])
        got = {w.window: n for w, n in driver.get_state_store("sliding").all()}
        out = driver.create_output_topic("out", TimeWindowedSerde(S, 10), L).read_records_to_list()
    assert got == _sliding_windows_by_brute_force(times, 10)
    assert {r.key.window: r.value for r in out} == got  # the last update of each is final


def test_streams_sliding_window_output_for_a_small_input() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde=S, value_serde=S).group_by_key()
     .windowed_by(SlidingWindows.of(10)).count().to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        _pipe(driver, "in", [("k", 20), ("k", 25), ("k", 50)])
        out = driver.create_output_topic("out", TimeWindowedSerde(S, 10), L)
        got = [(r.key.window, r.value, r.timestamp) for r in out.read_records_to_list()]
    assert got == [(Window(10, 20), 1, 20),                          # 20's left window
                   (Window(21, 31), 1, 25), (Window(15, 25), 2, 25),  # 20's right, 25's left
                   (Window(40, 50), 1, 50)]                          # 25's right stays empty


def test_streams_table_filter_emits_tombstones_and_to_table() -> None:
    builder = StreamsBuilder()
    table = builder.table("prices", S, Serdes.Long, materialized="prices-store")
    table.filter(lambda k, v: v > 10).to_stream().to("expensive")
    table.map_values(lambda v: v * 2, value_serde=Serdes.Long).to_stream().to("doubled")
    builder.stream("updates", key_serde=S, value_serde=S).to_table("latest").to_stream().to("latest")
    with TopologyTestDriver(builder.build(), "t") as driver:
        prices = driver.create_input_topic("prices", S, Serdes.Long)
        prices.pipe_input("a", 20, 1)
        prices.pipe_input("a", 5, 2)
        prices.pipe_input("b", 3, 3)
        prices.pipe_input("a", None, 4)
        driver.create_input_topic("updates", S, S).pipe_input("x", "1", 5)
        expensive = driver.create_output_topic("expensive", S, Serdes.Long)
        assert expensive.read_key_values_to_list() == [("a", 20), ("a", None), ("b", None),
                                                       ("a", None)]
        doubled = driver.create_output_topic("doubled", S, Serdes.Long)
        assert doubled.read_key_values_to_list() == [("a", 40), ("a", 10), ("b", 6), ("a", None)]
        assert driver.get_state_store("prices-store").all() == [("b", 3)]
        assert driver.create_output_topic("latest", S, S).read_key_values_to_list() == [("x", "1")]
        assert "t-prices-store-changelog" in driver.produced_topics()


def test_streams_stream_table_join_inner_and_left() -> None:
    builder = StreamsBuilder()
    customers = builder.table("customers", S, S)
    orders = builder.stream("orders", key_serde=S, value_serde=Serdes.Long)
    orders.join(customers, lambda amount, name: f"{name}:{amount}").to("joined", value_serde=S)
    orders.left_join(customers, lambda amount, name: f"{name}:{amount}").to("left", value_serde=S)
    topology = builder.build()
    assert len(topology.subtopologies()) == 1  # the table's store ties both into one task
    with TopologyTestDriver(topology) as driver:
        driver.create_input_topic("customers", S, S).pipe_input("c1", "ann", 1)
        o = driver.create_input_topic("orders", S, Serdes.Long)
        o.pipe_input("c1", 10, 2)
        o.pipe_input("c2", 20, 3)
        assert driver.create_output_topic("joined", S, S).read_values_to_list() == ["ann:10"]
        assert driver.create_output_topic("left", S, S).read_values_to_list() == ["ann:10",
                                                                                 "None:20"]


def test_streams_group_by_then_window_repartitions_by_new_key() -> None:
    builder = StreamsBuilder()
    (builder.stream("orders", key_serde=S, value_serde=Serdes.Json)
     .group_by(lambda k, order: order["customer"], Grouped("by-customer", S, Serdes.Json))
     .windowed_by(TimeWindows.of(100))
     .aggregate(lambda: 0, lambda k, order, total: total + order["amount"],
                Materialized.as_("totals", value_serde=Serdes.Long))
     .to_stream().map(lambda wk, total: (wk.key, total)).to("totals", S, Serdes.Long))
    topology = builder.build()
    assert "by-customer-repartition" in topology.internal_topics
    with TopologyTestDriver(topology) as driver:
        inp = driver.create_input_topic("orders", S, Serdes.Json)
        inp.pipe_input("o1", {"customer": "c1", "amount": 5}, 10)
        inp.pipe_input("o2", {"customer": "c2", "amount": 7}, 20)
        inp.pipe_input("o3", {"customer": "c1", "amount": 1}, 150)
        inp.pipe_input("o4", {"customer": "c1", "amount": 2}, 160)
        out = driver.create_output_topic("totals", S, Serdes.Long).read_key_values_to_list()
    assert out == [("c1", 5), ("c2", 7), ("c1", 1), ("c1", 3)]

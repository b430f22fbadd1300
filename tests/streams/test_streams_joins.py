"""Joins and table re-grouping through the test driver: stream-stream windowed joins
(inner, left, outer: unmatched records wait until their window closes), table-table
joins (inner, left, outer) and `Table.group_by` with a subtractor."""

from __future__ import annotations

import pytest

from strom.streams import Grouped, Serdes, StreamsBuilder, TopologyError, TopologyTestDriver
from strom.streams.dsl.change import Change, ChangeSerde
from strom.streams.windows import JoinWindows

S = Serdes.String


def _stream_join(kind: str) -> TopologyTestDriver:
    builder = StreamsBuilder()
    left = builder.stream("l", key_serde=S, value_serde=S)
    right = builder.stream("r", key_serde=S, value_serde=S)
    joined = getattr(left, kind)(right, lambda a, b: f"{a}+{b}", JoinWindows.of(10))
    joined.to("out", S, S)
    topology = builder.build()
    assert len(topology.subtopologies()) == 1  # both sides' stores tie them to one task
    return TopologyTestDriver(topology, "j")


def _pipe_join_input(driver: TopologyTestDriver, extra: list[tuple[str, str, str, int]]) -> None:
    topics = {"l": driver.create_input_topic("l", S, S), "r": driver.create_input_topic("r", S, S)}
    records = [("l", "a", "L1", 0), ("r", "a", "R1", 5), ("r", "a", "R2", 20),
               ("l", "a", "L2", 15), ("l", "b", "L3", 16), *extra]
    for topic, key, value, ts in records:
        topics[topic].pipe_input(key, value, ts)


def _out(driver: TopologyTestDriver) -> list[tuple[str, str, int]]:
    return [(r.key, r.value, r.timestamp)
            for r in driver.create_output_topic("out", S, S).read_records_to_list()]


MATCHES = [("a", "L1+R1", 5), ("a", "L2+R1", 15), ("a", "L2+R2", 20)]


def test_streams_stream_stream_inner_join_within_the_window() -> None:
    with _stream_join("join") as driver:
        _pipe_join_input(driver, [("l", "c", "L4", 40)])
        assert _out(driver) == MATCHES


def test_streams_stream_stream_left_join_emits_unmatched_after_the_window() -> None:
    with _stream_join("left_join") as driver:
        _pipe_join_input(driver, [])
        assert _out(driver) == MATCHES  # L3 waits: its window is still open
        driver.create_input_topic("l", S, S).pipe_input("c", "L4", 40)
        assert _out(driver) == [("b", "L3+None", 16)]
        assert driver.get_state_store("KSTREAM-OUTERSHARED-0000000004-store").all() != []


def test_streams_stream_stream_outer_join_emits_both_sides() -> None:
    with _stream_join("outer_join") as driver:
        _pipe_join_input(driver, [("r", "d", "R3", 18), ("l", "c", "L4", 40)])
        assert _out(driver) == [*MATCHES, ("b", "L3+None", 16), ("d", "None+R3", 18)]


def test_streams_stream_stream_join_needs_windows() -> None:
    builder = StreamsBuilder()
    left, right = builder.stream("l"), builder.stream("r")
    with pytest.raises(TopologyError, match="JoinWindows"):
        left.join(right, lambda a, b: a)


def _table_join(kind: str) -> list[tuple[str, str | None]]:
    builder = StreamsBuilder()
    a, b = builder.table("a", S, S), builder.table("b", S, S)
    getattr(a, kind)(b, lambda x, y: f"{x}-{y}").to_stream().to("out", S, S)
    with TopologyTestDriver(builder.build()) as driver:
        ta, tb = driver.create_input_topic("a", S, S), driver.create_input_topic("b", S, S)
        ta.pipe_input("k1", "x", 1)
        tb.pipe_input("k1", "y", 2)
        ta.pipe_input("k1", "x2", 3)
        tb.pipe_input("k1", None, 4)
        return driver.create_output_topic("out", S, S).read_key_values_to_list()


def test_streams_table_table_joins() -> None:
    assert _table_join("join") == [("k1", "x-y"), ("k1", "x2-y"), ("k1", None)]
    assert _table_join("left_join") == [("k1", "x-None"), ("k1", "x-y"), ("k1", "x2-y"),
                                        ("k1", "x2-None")]
    assert _table_join("outer_join") == [("k1", "x-None"), ("k1", "x-y"), ("k1", "x2-y"),
                                         ("k1", "x2-None")]


def test_streams_table_group_by_adds_and_subtracts() -> None:
    builder = StreamsBuilder()
    (builder.table("users", S, S)
     .group_by(lambda user, region: (region, region), Grouped("by-region", S, S))
     .count("per-region").to_stream().to("out", S, Serdes.Long))
    with TopologyTestDriver(builder.build(), "g") as driver:
        users = driver.create_input_topic("users", S, S)
        users.pipe_input("u1", "eu", 1)
        users.pipe_input("u2", "eu", 2)
        users.pipe_input("u1", "us", 3)
        users.pipe_input("u2", None, 4)
        out = driver.create_output_topic("out", S, Serdes.Long).read_key_values_to_list()
        raw = driver.create_output_topic("g-by-region-repartition").read_raw()
    assert out == [("eu", 1), ("eu", 2), ("eu", 1), ("us", 1), ("eu", 0)]
    assert [r.value for r in raw][:3] == [b"eu\x01", b"eu\x01", b"eu\x00"]


def test_streams_change_serde_matches_kafka_changed_serializer() -> None:
    serde = ChangeSerde(S)
    assert serde.serialize("t", Change("ab", "c")) == b"\x00\x00\x00\x02abc\x02"
    assert serde.deserialize("t", b"\x00\x00\x00\x02abc\x02") == Change("ab", "c")
    assert serde.deserialize("t", b"x\x00") == Change(None, "x")


def test_streams_stream_global_table_join_by_selected_key() -> None:
    builder = StreamsBuilder()
    customers = builder.global_table("customers", S, S, materialized="customers-store")
    orders = builder.stream("orders", key_serde=S, value_serde=Serdes.Json)
    orders.join(customers, lambda order, name: f"{name}:{order['amount']}",
                key_selector=lambda _, order: order["customer"]).to("joined", S, S)
    orders.left_join(customers, lambda order, name: f"{name}:{order['amount']}",
                     key_selector=lambda _, order: order["customer"]).to("left", S, S)
    topology = builder.build()
    assert "Global store: customers-store (topic: customers)" in topology.describe()
    with TopologyTestDriver(topology) as driver:
        driver.create_input_topic("customers", S, S).pipe_input("c1", "ann", 1)
        o = driver.create_input_topic("orders", S, Serdes.Json)
        o.pipe_input("o1", {"customer": "c1", "amount": 3}, 2)
        o.pipe_input("o2", {"customer": "c9", "amount": 4}, 3)
        assert driver.create_output_topic("joined", S, S).read_key_values_to_list() == [
            ("o1", "ann:3")]
        assert driver.create_output_topic("left", S, S).read_values_to_list() == ["ann:3",
                                                                                 "None:4"]
        assert driver.get_state_store("customers-store").get("c1") == "ann"


def _fk_join(kind: str) -> list[tuple[str, str | None]]:
    builder = StreamsBuilder()
    orders = builder.table("orders", S, Serdes.Json)
    customers = builder.table("customers", S, S)
    joined = getattr(orders, kind)(customers, lambda order, name: f"{name}:{order['amount']}",
                                   foreign_key=lambda order: order["customer"])
    joined.to_stream().to("out", S, S)
    topology = builder.build()
    subs = topology.subtopologies()
    assert [s.source_topics[0] for s in subs] == ["orders", "customers"]  # no repartition
    assert any(t.endswith("-subscription-registration-topic") for t in topology.internal_topics)
    with TopologyTestDriver(topology, "fk") as driver:
        o = driver.create_input_topic("orders", S, Serdes.Json)
        c = driver.create_input_topic("customers", S, S)
        c.pipe_input("c1", "ann", 1)
        o.pipe_input("o1", {"customer": "c1", "amount": 5}, 2)
        o.pipe_input("o2", {"customer": "c2", "amount": 7}, 3)
        c.pipe_input("c2", "bob", 4)
        c.pipe_input("c1", "anna", 5)
        o.pipe_input("o1", {"customer": "c2", "amount": 5}, 6)   # moves to another customer
        c.pipe_input("c1", "x", 7)                                 # nobody subscribes to c1
        o.pipe_input("o2", None, 8)
        c.pipe_input("c2", None, 9)
        return driver.create_output_topic("out", S, S).read_key_values_to_list()


def test_streams_foreign_key_inner_join() -> None:
    assert _fk_join("join") == [("o1", "ann:5"), ("o2", "bob:7"), ("o1", "anna:5"),
                                ("o1", "bob:5"), ("o2", None), ("o1", None)]


def test_streams_foreign_key_left_join() -> None:
    assert _fk_join("left_join") == [("o1", "ann:5"), ("o2", "None:7"), ("o2", "bob:7"),
                                     ("o1", "anna:5"), ("o1", "bob:5"), ("o2", None),
                                     ("o1", "None:5")]

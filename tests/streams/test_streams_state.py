"""Layer 2: key-value, window and session stores, in memory and on RocksDB, and their
changelog records in Kafka Streams' byte layouts."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strom.streams.errors import TopologyError
from strom.streams.processor import Processor
from strom.streams.record import Record
from strom.streams.serdes import Serdes
from strom.streams.state.stores import Stores, StoreSpec
from strom.streams.testing import TopologyTestDriver
from strom.streams.topology import Topology
from strom.streams.windows import Window, Windowed

S, L = Serdes.String, Serdes.Long


def _driver(spec: StoreSpec, action: Callable[[Any, Record], None], *, connect: bool = True,
            state_dir: Path | None = None) -> TopologyTestDriver:
    class Act(Processor):
        def process(self, record: Record) -> None:
            action(self.context.get_state_store(spec.name), record)

    t = Topology().add_source("src", "in", key_serde=S, value_serde=S)
    t.add_processor("act", Act, "src")
    if connect:
        t.add_state_store(spec, "act")
    else:
        t.store_builders[spec.name] = spec
    return TopologyTestDriver(t, "app", state_dir=state_dir)


def _kv_action(store: Any, record: Record) -> None:
    if record.value == "del":
        store.delete(record.key)
    else:
        store.put(record.key, int(record.value))


@pytest.mark.parametrize("persistent", [False, True], ids=["memory", "rocksdb"])
def test_streams_kv_store_reads_and_logs_like_kafka(persistent: bool) -> None:
    spec = Stores.key_value("counts", S, L, persistent=persistent)
    with _driver(spec, _kv_action) as driver:
        inp = driver.create_input_topic("in", S, S)
        inp.pipe_input("b", "2", 10)
        inp.pipe_input("a", "1", 11)
        inp.pipe_input("c", "3", 12)
        inp.pipe_input("b", "del", 13)
        store = driver.get_state_store("counts")
        assert store.get("a") == 1 and store.get("b") is None
        assert store.get_with_timestamp("c") == (3, 12)
        assert store.all() == [("a", 1), ("c", 3)]
        assert store.range("a", "b") == [("a", 1)]
        changelog = driver.create_output_topic("app-counts-changelog").read_raw()
    assert [(r.key, r.value, r.timestamp, r.partition) for r in changelog] == [
        (b"b", struct.pack(">q", 2), 10, 0), (b"a", struct.pack(">q", 1), 11, 0),
        (b"c", struct.pack(">q", 3), 12, 0), (b"b", None, 13, 0)]


def test_streams_store_must_be_connected() -> None:
    spec = Stores.key_value("s", S, L, persistent=False)
    with _driver(spec, _kv_action, connect=False) as driver, pytest.raises(TopologyError):
        driver.create_input_topic("in", S, S).pipe_input("a", "1", 1)


def test_streams_logging_disabled_writes_no_changelog() -> None:
    spec = Stores.key_value("quiet", S, L, persistent=False, logging=False)
    with _driver(spec, _kv_action) as driver:
        driver.create_input_topic("in", S, S).pipe_input("a", "1", 1)
        assert driver.produced_topics() == []


def test_streams_rocksdb_store_survives_a_restart(tmp_path: Path) -> None:
    spec = Stores.key_value("durable", S, L)
    with _driver(spec, _kv_action, state_dir=tmp_path) as driver:
        driver.create_input_topic("in", S, S).pipe_input("a", "7", 1)
    assert (tmp_path / "0_0" / "rocksdb" / "durable").is_dir()
    with _driver(spec, _kv_action, state_dir=tmp_path) as driver:
        assert driver.get_state_store("durable").get("a") == 7


def test_streams_restore_rebuilds_a_store_from_changelog_entries() -> None:
    spec = Stores.key_value("r", S, L, persistent=False)
    with _driver(spec, _kv_action) as driver:
        store = driver.get_state_store("r")
        store.restore([(b"x", struct.pack(">q", 5), 100), (b"y", struct.pack(">q", 6), 101),
                       (b"x", None, 102)])
        assert store.all() == [("y", 6)]
        assert store.get_with_timestamp("y") == (6, 101)
        assert driver.produced_topics() == []  # restoring does not log again


def _window_action(store: Any, record: Record) -> None:
    start = record.timestamp - record.timestamp % 100
    store.put(record.key, int(record.value), start)


@pytest.mark.parametrize("persistent", [False, True], ids=["memory", "rocksdb"])
def test_streams_window_store_keys_are_kafka_window_key_schema(persistent: bool) -> None:
    spec = Stores.window("w", S, L, retention_ms=1000, window_size_ms=100, persistent=persistent)
    with _driver(spec, _window_action) as driver:
        inp = driver.create_input_topic("in", S, S)
        for key, value, ts in [("k", "1", 5), ("k", "2", 150), ("kk", "9", 160), ("k", "3", 420)]:
            inp.pipe_input(key, value, ts)
        store = driver.get_state_store("w")
        assert store.fetch("k", 100) == 2
        assert store.fetch_range("k", 0, 400) == [(0, 1), (100, 2), (400, 3)]
        assert store.fetch_range("k", 50, 399) == [(100, 2)]
        assert store.fetch_all(100, 100) == [(Windowed("k", Window(100, 200)), 2),
                                             (Windowed("kk", Window(100, 200)), 9)]
        inp.pipe_input("k", "4", 2000)  # windows before 1000 expire at the next flush
        store.flush()
        assert store.fetch_range("k", 0, 5000) == [(2000, 4)]
        store.put("k", 8, 200, timestamp=2000)  # expired: not written
        assert store.fetch("k", 200) is None
        changelog = driver.create_output_topic("app-w-changelog").read_raw()
    first = changelog[0]
    assert first.key == b"k" + struct.pack(">qi", 0, 0)
    assert (first.value, first.timestamp) == (struct.pack(">q", 1), 5)
    assert changelog[2].key == b"kk" + struct.pack(">qi", 100, 0)


def test_streams_window_store_with_duplicates_numbers_them() -> None:
    spec = Stores.window("d", S, L, retention_ms=1000, window_size_ms=100, retain_duplicates=True,
                         persistent=False)
    with _driver(spec, lambda store, r: store.put(r.key, int(r.value), r.timestamp)) as driver:
        inp = driver.create_input_topic("in", S, S)
        inp.pipe_input("k", "1", 10)
        inp.pipe_input("k", "2", 10)
        assert driver.get_state_store("d").fetch_range("k", 0, 100) == [(10, 1), (10, 2)]
        keys = [r.key for r in driver.create_output_topic("app-d-changelog").read_raw()]
    assert keys == [b"k" + struct.pack(">qi", 10, 1), b"k" + struct.pack(">qi", 10, 2)]


def _session_action(store: Any, record: Record) -> None:
    start, end = (int(x) for x in record.value.split("-"))
    store.put(Windowed(record.key, Window(start, end)), end - start)


@pytest.mark.parametrize("persistent", [False, True], ids=["memory", "rocksdb"])
def test_streams_session_store_keys_are_kafka_session_key_schema(persistent: bool) -> None:
    spec = Stores.session("s", S, L, retention_ms=10_000, persistent=persistent)
    with _driver(spec, _session_action) as driver:
        inp = driver.create_input_topic("in", S, S)
        for key, value in [("u", "0-10"), ("u", "50-70"), ("uu", "5-6"), ("u", "200-200")]:
            inp.pipe_input(key, value, 1)
        store = driver.get_state_store("s")
        assert [w.window for w, _ in store.find_sessions("u", 8, 60)] == [Window(0, 10),
                                                                         Window(50, 70)]
        assert store.find_sessions("u", 71, 300) == [(Windowed("u", Window(200, 200)), 0)]
        assert store.fetch_session("u", 50, 70) == 20
        store.remove(Windowed("u", Window(0, 10)))
        assert [w.window for w, _ in store.fetch("u")] == [Window(50, 70), Window(200, 200)]
        changelog = driver.create_output_topic("app-s-changelog").read_raw()
    assert changelog[0].key == b"u" + struct.pack(">qq", 10, 0)
    assert changelog[0].value == struct.pack(">q", 10)
    assert (changelog[-1].key, changelog[-1].value) == (b"u" + struct.pack(">qq", 10, 0), None)


def test_streams_changelog_configs_follow_kafka_defaults() -> None:
    assert Stores.key_value("a").changelog_config() == {"cleanup.policy": "compact"}
    cfg = Stores.window("w", retention_ms=1000, window_size_ms=10).changelog_config()
    assert cfg == {"cleanup.policy": "compact,delete", "retention.ms": str(1000 + 86_400_000)}


def test_streams_versioned_store_answers_as_of_a_time() -> None:
    from strom.streams.state.versioned import LATEST, NOT_PUT

    spec = Stores.versioned("v", S, S, history_retention_ms=50, persistent=False)
    codes: list[int] = []

    def action(store: Any, record: Record) -> None:
        codes.append(store.put(record.key, record.value, record.timestamp))

    with _driver(spec, action) as driver:
        inp = driver.create_input_topic("in", S, S)
        for value, ts in [("a", 10), ("c", 30), ("b", 20), (None, 40), ("z", 100), ("old", 45)]:
            inp.pipe_input("k", value, ts)
        store = driver.get_state_store("v")
        assert codes == [LATEST, LATEST, 30, LATEST, LATEST, NOT_PUT]
        assert store.get("k") == ("z", 100)
        assert store.get("k", as_of=55) is None  # deleted at 40
        assert store.get("k", as_of=49) is None  # older than the history (100 - 50)
        assert store.get("k", as_of=75) is None  # still deleted until 100
        changelog = driver.create_output_topic("app-v-changelog").read_raw()
    assert [(r.key, r.value, r.timestamp) for r in changelog] == [
        (b"k", b"a", 10), (b"k", b"c", 30), (b"k", b"b", 20), (b"k", None, 40), (b"k", b"z", 100)]

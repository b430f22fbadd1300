"""Oracle tests: the same topologies, fed the same timestamped records, through Kafka
Streams 4.4's own TopologyTestDriver (Java, `oracle/StreamsOracle.java`) and through
Strom Streams' driver; the output topics must match record for record (key, value,
timestamp, order), with record caches off on both sides.

Kafka's jars (kafka-streams-test-utils and its dependencies) come from Maven Central
through `oracle/pom.xml` into the cache `tools/kafka_dist.py` uses; the tests skip only
when no JDK is installed, as the interop suite does.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strom.streams import (
    Grouped,
    JoinWindows,
    Materialized,
    Serdes,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    Suppressed,
    TimeWindows,
    TopologyTestDriver,
    Windowed,
)
from support.interop import kafka_dist

pytestmark = pytest.mark.interop

ORACLE = Path(__file__).parent / "oracle"
S = Serdes.String
Rec = tuple[str, str | None, str | None, int]  # topic, key, value, timestamp
OUTPUTS = ("out", "out2", "out3")


def _n(value: Any) -> str:
    return "null" if value is None else str(value)


def _join(a: Any, b: Any) -> str:
    return f"{_n(a)}+{_n(b)}"


def _win(key: Windowed, value: Any) -> tuple[str, str | None]:
    return f"{key.key}@{key.window.start}/{key.window.end}", None if value is None else str(value)


def _counted(stream: Any) -> None:
    stream.to_stream().map(_win).to("out", S, S)


def _in(b: StreamsBuilder, topic: str = "in") -> Any:
    return b.stream(topic, key_serde=S, value_serde=S)


def wordcount(b: StreamsBuilder) -> None:
    (_in(b).flat_map_values(lambda v: v.split(" ")).group_by(lambda k, w: w, Grouped(None, S, S))
     .count().to_stream().map_values(str).to("out", S, S))


def tumbling(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(TimeWindows.of(10, grace_ms=5)).count())


def hopping(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(TimeWindows.of(10).advance_by(5)).count())


def session(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(SessionWindows.with_inactivity_gap(10)).count())


def sliding(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(SlidingWindows.of(10, grace_ms=30)).count())


def suppress(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(TimeWindows.of(10, grace_ms=5)).count()
             .suppress(Suppressed.until_window_closes()))


def stream_table_join(b: StreamsBuilder) -> None:
    table, stream = b.table("t", S, S), _in(b)
    stream.join(table, _join).to("out", S, S)
    stream.left_join(table, _join).to("out2", S, S)


def table_table_join(b: StreamsBuilder) -> None:
    a, c = b.table("a", S, S), b.table("c", S, S)
    a.join(c, _join).to_stream().to("out", S, S)
    a.left_join(c, _join).to_stream().to("out2", S, S)
    a.outer_join(c, _join).to_stream().to("out3", S, S)


def session_grace(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(SessionWindows.with_inactivity_gap(10, grace_ms=7))
             .reduce(lambda x, y: f"{x},{y}"))


def stream_stream_join(b: StreamsBuilder, windows: JoinWindows | None = None) -> None:
    left, right = _in(b, "l"), _in(b, "r")
    windows = windows or JoinWindows.of(10)
    left.join(right, _join, windows).to("out", S, S)
    left.left_join(right, _join, windows).to("out2", S, S)
    left.outer_join(right, _join, windows).to("out3", S, S)


def stream_stream_join_asymmetric(b: StreamsBuilder) -> None:
    stream_stream_join(b, JoinWindows.of(10, grace_ms=5).before(3))


def fk_join(b: StreamsBuilder) -> None:
    orders, customers = b.table("orders", S, S), b.table("customers", S, S)

    def fk(order: str) -> str:
        return order.split(":")[0]

    orders.join(customers, lambda o, c: f"{_n(c)}:{o}", foreign_key=fk).to_stream().to("out", S, S)
    orders.left_join(customers, lambda o, c: f"{_n(c)}:{o}",
                     foreign_key=fk).to_stream().to("out2", S, S)


def table_ops(b: StreamsBuilder) -> None:
    table = b.table("t", S, S)
    table.filter(lambda k, v: v > "v3").to_stream().to("out", S, S)
    table.map_values(lambda v: v + "!").to_stream().to("out2", S, S)
    _in(b).to_table().to_stream().to("out3", S, S)


def session_suppress(b: StreamsBuilder) -> None:
    _counted(_in(b).group_by_key().windowed_by(SessionWindows.with_inactivity_gap(10, grace_ms=4))
             .count().suppress(Suppressed.until_window_closes()))


def reduce_aggregate(b: StreamsBuilder) -> None:
    stream = _in(b)
    stream.group_by_key().reduce(lambda x, y: f"{x},{y}").to_stream().to("out", S, S)
    (stream.group_by_key().aggregate(lambda: "", lambda k, v, agg: agg + str(len(v)),
                                     Materialized.as_(None, value_serde=S))
     .to_stream().to("out2", S, S))
    (stream.filter(lambda k, v: v.endswith("1")).select_key(lambda k, v: v)
     .group_by_key(Grouped(None, S, S)).count().to_stream().map_values(str).to("out3", S, S))


def versioned_join(b: StreamsBuilder) -> None:
    table = b.table("t", S, S, materialized=Materialized.as_("versioned", versioned_history_ms=50))
    stream = _in(b)
    stream.join(table, _join).to("out", S, S)
    stream.left_join(table, _join).to("out2", S, S)
    table.to_stream().to("out3", S, S)


def table_groupby(b: StreamsBuilder) -> None:
    (b.table("users", S, S).group_by(lambda u, r: (r, r), Grouped(None, S, S)).count()
     .to_stream().map_values(str).to("out", S, S))


WINDOW_INPUT: list[Rec] = [("in", k, "x", t) for k, t in [
    ("a", 1), ("a", 12), ("a", 3), ("a", 20), ("a", 4), ("b", 30), ("a", 15), ("b", 31),
    ("a", 26), ("b", 45), ("a", 9)]]

SCENARIOS: dict[str, tuple[Callable[[StreamsBuilder], None], list[Rec]]] = {
    "wordcount": (wordcount, [("in", None, "a b a", 1), ("in", None, "b c", 2),
                              ("in", "k", "c c a", 5)]),
    "tumbling": (tumbling, WINDOW_INPUT),
    "hopping": (hopping, [("in", "k", "x", t) for t in (7, 12, 3, 30, 14)]),
    "session": (session, [("in", k, "x", t) for k, t in [
        ("u", 0), ("u", 5), ("u", 30), ("u", 20), ("u", 2), ("v", 1), ("u", 14), ("u", 60),
        ("u", 45)]]),
    "sliding": (sliding, [("in", k, "x", t) for k, t in [
        ("k", 20), ("k", 25), ("k", 50), ("k", 22), ("k", 5), ("k", 8), ("j", 3), ("k", 31),
        ("k", 31), ("k", 70), ("k", 44)]]),
    "suppress": (suppress, WINDOW_INPUT),
    "stream_table_join": (stream_table_join, [
        ("t", "c1", "ann", 1), ("in", "c1", "o1", 2), ("in", "c2", "o2", 3),
        ("t", "c2", "bob", 4), ("in", "c2", "o3", 5), ("t", "c1", None, 6),
        ("in", "c1", "o4", 7)]),
    "table_table_join": (table_table_join, [
        ("a", "k1", "x", 1), ("c", "k1", "y", 2), ("a", "k1", "x2", 3), ("c", "k1", None, 4),
        ("a", "k2", "z", 5), ("c", "k3", "w", 6), ("a", "k2", None, 7), ("c", "k1", "y2", 8)]),
    "stream_stream_join": (stream_stream_join, [
        ("l", "a", "L1", 0), ("r", "a", "R1", 5), ("r", "a", "R2", 20), ("l", "a", "L2", 15),
        ("l", "b", "L3", 16), ("r", "d", "R3", 18), ("l", "c", "L4", 40), ("r", "c", "R4", 45),
        ("l", "e", "L5", 70)]),
    "fk_join": (fk_join, [
        ("customers", "c1", "ann", 1), ("orders", "o1", "c1:5", 2), ("orders", "o2", "c2:7", 3),
        ("customers", "c2", "bob", 4), ("customers", "c1", "anna", 5),
        ("orders", "o1", "c2:5", 6), ("customers", "c1", "x", 7), ("orders", "o2", None, 8),
        ("customers", "c2", None, 9)]),
    "table_groupby": (table_groupby, [
        ("users", "u1", "eu", 1), ("users", "u2", "eu", 2), ("users", "u1", "us", 3),
        ("users", "u2", None, 4), ("users", "u3", "us", 5)]),
}


def _random_records(seed: int, topics: tuple[str, ...], count: int = 60) -> list[Rec]:
    """Keys from a small set, timestamps drifting forward with jumps back (late and
    out-of-order records), values naming their position."""
    rng = random.Random(seed)
    records, now = [], 0
    for i in range(count):
        now += rng.choice((0, 1, 2, 3, 5, 8, 13))
        ts = max(0, now - rng.choice((0, 0, 0, 4, 9, 20, 40)))
        records.append((rng.choice(topics), rng.choice("abc"), f"v{i}", ts))
    return records


SCENARIOS["session_grace"] = (session_grace, SCENARIOS["session"][1])
SCENARIOS["session_suppress"] = (session_suppress, SCENARIOS["session"][1])
SCENARIOS["table_ops"] = (table_ops, [("t", k, v, ts) for k, v, ts in [
    ("a", "v5", 1), ("b", "v1", 2), ("a", "v2", 3), ("b", "v9", 4), ("a", None, 5),
    ("c", None, 6)]] + [("in", "x", "1", 7), ("in", "x", None, 8)])
SCENARIOS["reduce_aggregate"] = (reduce_aggregate, WINDOW_INPUT)
SCENARIOS["versioned_join"] = (versioned_join, [
    ("t", "k", "t10", 10), ("t", "k", "t30", 30), ("in", "k", "s5", 5), ("in", "k", "s15", 15),
    ("in", "k", "s35", 35), ("t", "k", "t20", 20), ("in", "k", "s25", 25), ("t", "k", None, 40),
    ("in", "k", "s45", 45), ("in", "k", "s22", 22), ("t", "k", "t100", 100),
    ("in", "k", "s60", 60), ("in", "k", "s40", 40), ("t", "k", "t45", 45)])
SCENARIOS["stream_stream_join_asymmetric"] = (stream_stream_join_asymmetric,
                                              SCENARIOS["stream_stream_join"][1])
for _seed in range(4):
    for _name, _topics in (("tumbling", ("in",)), ("hopping", ("in",)), ("session", ("in",)),
                           ("session_grace", ("in",)), ("sliding", ("in",)),
                           ("suppress", ("in",)), ("stream_stream_join", ("l", "r")),
                           ("stream_stream_join_asymmetric", ("l", "r")),
                           ("table_table_join", ("a", "c")), ("stream_table_join", ("t", "in")),
                           ("session_suppress", ("in",)), ("table_ops", ("t", "in")),
                           ("reduce_aggregate", ("in",)), ("versioned_join", ("t", "in")),
                           ("fk_join", ("orders", "customers"))):
        SCENARIOS[f"{_name}:random-{_seed}"] = (SCENARIOS[_name][0],
                                                _random_records(_seed, _topics))


def _field(value: str | None) -> str:
    return "\\N" if value is None else value


def _parse(value: str) -> str | None:
    return None if value == "\\N" else value


@pytest.fixture(scope="module")
def kafka_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[Any]]]:
    """Every scenario through Kafka Streams, in one JVM."""
    if not (kafka_dist.java_available() and kafka_dist.javac_available()):
        pytest.skip("no JDK: the oracle needs java and javac")
    lib = _oracle_jars()
    classes = tmp_path_factory.mktemp("oracle-classes")
    compiled = subprocess.run(["javac", "-d", str(classes), "-cp", str(lib / "*"),
                               str(ORACLE / "StreamsOracle.java")],
                              capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stderr
    lines = []
    for name, (_, records) in SCENARIOS.items():
        lines.append(f"#scenario {name}")
        lines.extend("\t".join([topic, _field(k), _field(v), str(ts)])
                     for topic, k, v, ts in records)
    run = subprocess.run(["java", *kafka_dist.TOOL_JVM_OPTS, "-cp", f"{classes}:{lib}/*",
                          "StreamsOracle"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    found: dict[str, dict[str, list[Any]]] = {}
    current: dict[str, list[Any]] = {}
    for line in run.stdout.splitlines():
        if line.startswith("#scenario "):
            current = found.setdefault(line.split(" ", 1)[1], {t: [] for t in OUTPUTS})
        elif line:
            topic, key, value, ts = line.split("\t")
            current[topic].append((_parse(key), _parse(value), int(ts)))
    return found


def _oracle_jars() -> Path:
    lib = kafka_dist.cache_root() / f"streams-oracle-{kafka_dist.KAFKA_VERSION}" / "lib"
    if (lib / ".complete").exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        pytest.skip("mvn is not installed (apt-get install -y maven)")
    result = subprocess.run([mvn, "-q", "-B", "-f", str(ORACLE / "pom.xml"),
                             f"-Dkafka.version={kafka_dist.KAFKA_VERSION}",
                             "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (lib / ".complete").write_text(kafka_dist.KAFKA_VERSION + "\n")
    return lib


def _strom_outputs(name: str) -> dict[str, list[Any]]:
    build, records = SCENARIOS[name]
    builder = StreamsBuilder()
    build(builder)
    with TopologyTestDriver(builder.build(), f"oracle-{name.replace(':', '-')}") as driver:
        inputs = {}
        for topic, key, value, ts in records:
            if topic not in inputs:
                inputs[topic] = driver.create_input_topic(topic, S, S)
            inputs[topic].pipe_input(key, value, ts)
        return {topic: [(r.key, r.value, r.timestamp) for r in
                        driver.create_output_topic(topic, S, S).read_records_to_list()]
                for topic in OUTPUTS}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_streams_output_matches_kafka_streams(
        name: str, kafka_outputs: dict[str, dict[str, list[Any]]]) -> None:
    assert _strom_outputs(name) == kafka_outputs[name]

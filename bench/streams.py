"""Strom Streams against Quix Streams and Kafka Streams: four workloads, one broker, one machine.

Workloads (issue 13's four), each on a 3-partition input topic filled beforehand with the
same records for every framework:

- `stateless`: filter + map_values (upper case), to an output topic;
- `word count`: lines of five words, split, re-keyed by word (a repartition topic), counted
  in a persistent store with a changelog, every count update to the output topic;
- `tumbling window count`: 1,000 keys, one-second tumbling windows of event time, counted
  (window store with a changelog), every update to the output topic as `key@start -> n`;
- `stream-table join`: a 1,000-row table topic joined by each stream record (`v|row`).

Frameworks, each a child process of this script so each is measured the same way:

- Strom Streams (`strom.streams`, this repository);
- Quix Streams (`pip install quixstreams`, the `bench` extra; it pins confluent-kafka below
  2.13, so `--quix-python` may name a virtualenv's interpreter that has it);
- Apache Kafka Streams 4.4 (`bench/java/StromBenchStreams.java`, compiled against the jars
  `tools/kafka_dist.py` keeps; JVM options as Kafka's perf tools: G1, -Xmx512m).

All three: one processing thread, at-least-once, commit interval 1 s, no record caches
(every update is an output record), String keys and values, `auto.offset.reset=earliest`.

Measured: wall time from spawning the process until (a) the output topic holds every
expected record and (b) the group's committed offsets reach the end of every partition it
commits (input and repartition topics), so start-up (interpreter or JVM), the group join
and the last commit are included; CPU is the child's user + system time read from
/proc/<pid>/stat at that moment (all its threads: Python, librdkafka, the JVM's JIT and GC),
not the broker's. Then the output is read back and checked against what the input implies
(value multisets, final counts per word and per window), so a broken workload cannot look
fast. Runs take /tmp/bench-lock (and wait while /tmp/suite-running exists), one workload
set at a time. Writes docs/benchmarks/streams-<broker>-<records>.json and prints the table
that docs/benchmarks/streams.md quotes. Never part of the suite.

    python bench/streams.py [--records 100000] [--frameworks strom,quix,kafka-streams]
                            [--broker strom|kafka] [--quix-python /path/to/python]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import kafka_dist  # noqa: E402

OUT_DIR = ROOT / "docs" / "benchmarks"
JAVA_SOURCE = ROOT / "bench" / "java" / "StromBenchStreams.java"
PARTITIONS = 3
KEYS = 1000
WORDS_PER_LINE = 5
WORKLOADS = ("stateless", "word count", "tumbling window count", "stream-table join")
FRAMEWORKS = ("strom", "quix", "kafka-streams")
TITLES = {"strom": "Strom Streams", "quix": "Quix Streams", "kafka-streams": "Kafka Streams"}
LOCK = Path("/tmp/bench-lock")
SUITE = Path("/tmp/suite-running")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the workloads in Strom Streams and Quix Streams (run in the child) -------------------

def strom_child(workload: str, bootstrap: str, prefix: str, state_dir: str) -> None:
    """Run one workload in Strom Streams until SIGTERM."""
    from strom.streams import Grouped, Serdes, StreamsBuilder, TimeWindows
    from strom.streams.runtime.app import StreamsApp

    s = Serdes.String
    b = StreamsBuilder()
    stream = b.stream(f"{prefix}-in", key_serde=s, value_serde=s)
    out = f"{prefix}-out"
    if workload == "stateless":
        stream.filter(lambda k, v: not v.startswith("#")).map_values(str.upper).to(out, s, s)
    elif workload == "word count":
        (stream.flat_map_values(str.split).group_by(lambda k, w: w, Grouped("words", s, s))
         .count("counts").to_stream().map_values(str).to(out, s, s))
    elif workload == "tumbling window count":
        (stream.group_by_key().windowed_by(TimeWindows.of(1000)).count("windows").to_stream()
         .map(lambda wk, n: (f"{wk.key}@{wk.window.start}", str(n))).to(out, s, s))
    else:
        table = b.table(f"{prefix}-table", s, s, materialized="rows")
        stream.join(table, lambda v, row: f"{v}|{row}").to(out, s, s)
    app = StreamsApp(b.build(), prefix, bootstrap, state_dir=state_dir, commit_interval_ms=1000)
    stop = _stop_flag()
    app.start()
    while not stop and app.error is None:
        time.sleep(0.1)
    app.close()


def quix_child(workload: str, bootstrap: str, prefix: str, state_dir: str) -> None:
    """Run one workload in Quix Streams until SIGTERM (Quix stops itself on it)."""
    import logging

    from quixstreams import Application  # type: ignore[import-not-found]
    from quixstreams.models.serializers import Serializer  # type: ignore[import-not-found]

    class PairValue(Serializer):
        """Writes the second item of a (key, value) pair: Quix's to_topic keys by value."""

        def __call__(self, value: Any, ctx: Any) -> bytes:
            return str(value[1]).encode()

    app = Application(broker_address=bootstrap, consumer_group=prefix,
                      auto_offset_reset="earliest", commit_interval=1.0, state_dir=state_dir,
                      loglevel=logging.WARNING, auto_create_topics=True)
    source = app.topic(f"{prefix}-in", key_deserializer="str", value_deserializer="str")
    sdf = app.dataframe(source)
    if workload == "stateless":
        out = app.topic(f"{prefix}-out", key_serializer="str", value_serializer="str")
        sdf.filter(lambda v: not v.startswith("#")).apply(str.upper).to_topic(out)
    elif workload == "word count":
        out = app.topic(f"{prefix}-out", key_serializer="str", value_serializer=PairValue())
        words = sdf.apply(str.split, expand=True).group_by(lambda w: w, name="words")
        words.apply(_quix_count, stateful=True).to_topic(out, key=lambda pair: pair[0])
    elif workload == "tumbling window count":
        out = app.topic(f"{prefix}-out", key_serializer="str", value_serializer=PairValue())
        counts = sdf.tumbling_window(1000).count().current()
        counts.apply(lambda w, key, ts, headers: (f"{key}@{w['start']}", w["value"]),
                     metadata=True).to_topic(out, key=lambda pair: pair[0])
    else:
        out = app.topic(f"{prefix}-out", key_serializer="str", value_serializer="str")
        rows = app.dataframe(app.topic(f"{prefix}-table", key_deserializer="str",
                                       value_deserializer="str"))
        sdf.join_asof(rows, how="inner", on_merge=lambda v, row: f"{v}|{row}").to_topic(out)
    app.run()


def _quix_count(word: str, state: Any) -> tuple[str, int]:
    n: int = state.get("n", 0) + 1
    state.set("n", n)
    return word, n


def _stop_flag() -> list[bool]:
    """A list that becomes truthy on SIGTERM: the Strom child's stop signal."""
    flag: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: flag.append(True))
    return flag


# --- broker, topics, input --------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_up(bootstrap: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=1)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError("the broker did not start")


@contextlib.contextmanager
def broker(kind: str, work: Path) -> Iterator[str]:
    """A fresh Strom server (or Apache Kafka 4.4) on loopback for the whole run."""
    if kind == "kafka":
        with kafka_dist.KafkaBroker(work / "kafka",
                                    overrides={"group.initial.rebalance.delay.ms": "0"}) as kb:
            yield kb.bootstrap
        return
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "server", "--override", f"log.dirs={work / 'data'}",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}", "--override",
         "group.initial.rebalance.delay.ms=0", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"127.0.0.1:{port}", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(60)


def create(bootstrap: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
        future.result(30)


def fill(bootstrap: str, topic: str, records: list[tuple[str, str, int]]) -> None:
    # idempotent: a retried batch (a topic just created may answer NOT_LEADER at first)
    # must not land after later ones, or event time would run backwards in a partition
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "enable.idempotence": True, "partitioner": "murmur2_random",
                         "queue.buffering.max.messages": 500000})
    for key, value, ts in records:
        while True:
            try:
                producer.produce(topic, value.encode(), key.encode(), timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def inputs(workload: str, count: int, base_ms: int) -> list[tuple[str, str, int]]:
    """The same (key, value, timestamp) records for every framework, a millisecond apart
    from `base_ms` (recent: records older than the topic's retention.ms would be deleted
    by the broker's retention while a run reads them, on Strom as on Kafka)."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(KEYS)]
    if workload == "word count":
        return [(f"k{i}", " ".join(rng.choice(words) for _ in range(WORDS_PER_LINE)),
                 base_ms + i) for i in range(count)]
    return [(f"k{rng.randrange(KEYS)}", f"value-{i}", base_ms + i) for i in range(count)]


def table_rows(base_ms: int) -> list[tuple[str, str, int]]:
    return [(f"k{i}", f"row-{i}", base_ms - 1) for i in range(KEYS)]


# --- expected output and its check -------------------------------------------------------

def expected(workload: str, records: list[tuple[str, str, int]]) -> Counter[str]:
    """What the output must hold: value multiset, or final count per word / window."""
    if workload == "stateless":
        return Counter(v.upper() for _, v, _ in records)
    if workload == "stream-table join":
        return Counter(f"{v}|row-{k[1:]}" for k, v, _ in records)
    if workload == "word count":
        return Counter(w for _, line, _ in records for w in line.split())
    return Counter(f"{k}@{ts // 1000 * 1000}" for k, _, ts in records)


def expected_outputs(workload: str, count: int) -> int:
    return count * (WORDS_PER_LINE if workload == "word count" else 1)


def read_output(bootstrap: str, topic: str) -> list[tuple[str, str]]:
    """Every record of the output topic as (key, value) strings."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)}
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out: list[tuple[str, str]] = []
    seen = dict.fromkeys(ends, 0)
    deadline = time.monotonic() + 120
    while any(seen[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        for msg in consumer.consume(10000, 1.0):
            if msg.error() is None:
                seen[msg.partition() or 0] = (msg.offset() or 0) + 1
                out.append(((msg.key() or b"").decode(), (msg.value() or b"").decode()))
    consumer.close()
    return out


def verify(workload: str, want: Counter[str], out: list[tuple[str, str]]) -> str | None:
    """None if the output is right, else what is wrong."""
    if workload in ("stateless", "stream-table join"):
        got = Counter(v for _, v in out)
        return None if got == want else f"value multiset differs ({len((got - want) + (want - got))} values)"
    finals: dict[str, int] = {}
    for key, value in out:
        finals[key] = max(finals.get(key, 0), int(value))
    wrong = [k for k in want.keys() | finals.keys() if finals.get(k) != want.get(k)]
    return None if not wrong else f"{len(wrong)} final counts differ, e.g. {wrong[0]}"


# --- one run of one framework --------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system time of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def done(admin: AdminClient, probe: Consumer, group: str, inputs_topic: str,
         out_topic: str, outputs: int) -> bool:
    """Every expected output written, every committed offset of the group at its end."""
    if sum(probe.get_watermark_offsets(TopicPartition(out_topic, p), timeout=10)[1]
           for p in range(PARTITIONS)) < outputs:
        return False
    from confluent_kafka import ConsumerGroupTopicPartitions

    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = result[group].result(10).topic_partitions
    if {tp.partition for tp in committed if tp.topic == inputs_topic} != set(range(PARTITIONS)):
        return False
    return all(tp.offset >= probe.get_watermark_offsets(tp, timeout=10)[1] for tp in committed)


def command(framework: str, workload: str, bootstrap: str, prefix: str, state: Path,
            opts: argparse.Namespace) -> list[str]:
    if framework == "kafka-streams":
        lib = kafka_dist.ensure_jars()
        return ["java", *kafka_dist.PERF_JVM_OPTS,
                f"-Dlog4j2.configurationFile={lib.parent / 'tools-log4j2.properties'}",
                "-cp", f"{opts.java_classes}:{lib / '*'}", "StromBenchStreams", bootstrap,
                workload.replace(" ", "-"), prefix, str(state)]
    python = opts.quix_python if framework == "quix" else sys.executable
    return [python, str(Path(__file__).resolve()), "--child", framework, "--workload", workload,
            "--bootstrap", bootstrap, "--prefix", prefix, "--state-dir", str(state)]


def run_one(framework: str, workload: str, bootstrap: str, records: list[tuple[str, str, int]],
            opts: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-{framework}-{workload.replace(' ', '-')}-{int(time.time())}"
    create(bootstrap, f"{prefix}-in", f"{prefix}-out", f"{prefix}-table")
    fill(bootstrap, f"{prefix}-in", records)
    if workload == "stream-table join":
        fill(bootstrap, f"{prefix}-table", table_rows(records[0][2]))
    outputs = expected_outputs(workload, len(records))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}-probe"})
    log = opts.work / f"{prefix}.log"
    cmd = command(framework, workload, bootstrap, prefix, opts.work / prefix, opts)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    stalled = None
    try:
        while not done(admin, probe, prefix, f"{prefix}-in", f"{prefix}-out", outputs):
            if proc.poll() is not None or time.perf_counter() - t0 > opts.timeout:
                stalled = f"stopped or timed out, see {log}"
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) if proc.poll() is None else 0.0
    finally:
        probe.close()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    out = read_output(bootstrap, f"{prefix}-out")
    problem = stalled or verify(workload, expected(workload, records), out)
    return {"framework": framework, "workload": workload, "records": len(records),
            "outputs": len(out), "verified": problem is None, "problem": problem,
            "seconds": round(elapsed, 2), "records_per_s": round(len(records) / elapsed),
            "cpu_s": round(cpu, 2), "cpu_s_per_million": round(cpu / len(records) * 1e6, 1)}


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """/tmp/bench-lock while one workload set runs; never while the suite runs."""
    while SUITE.exists() or LOCK.exists():
        time.sleep(5)
    LOCK.write_text(f"bench/streams.py {os.getpid()}\n")
    try:
        yield
    finally:
        LOCK.unlink(missing_ok=True)


# --- report --------------------------------------------------------------------------------

def _cell(r: dict[str, Any] | None, base: dict[str, Any] | None) -> str:
    if r is None:
        return "not run"
    if not r["verified"]:
        return f"wrong output ({r['problem']})"
    text = f"{r['records_per_s']:,} rec/s, {r['cpu_s_per_million']} CPU-s/M"
    if base is not None and r is not base and base["verified"]:
        text += (f" (Strom {base['records_per_s'] / r['records_per_s']:.2f}x the rate, "
                 f"{base['cpu_s_per_million'] / r['cpu_s_per_million']:.2f}x the CPU)")
    return text


def table_lines(results: list[dict[str, Any]], broker_kind: str) -> list[str]:
    lines = [f"### On {'Apache Kafka 4.4' if broker_kind == 'kafka' else 'Strom'}", "",
             "| workload | records | " + " | ".join(TITLES.values()) + " |",
             "|---|---:|" + "---|" * len(TITLES)]
    for workload in WORKLOADS:
        rows = {r["framework"]: r for r in results if r["workload"] == workload}
        if not rows:
            continue
        base = rows.get("strom")
        count = next(iter(rows.values()))["records"]
        cells = [_cell(rows.get(f), base) for f in FRAMEWORKS]
        lines.append(f"| {workload} | {count:,} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write(results: list[dict[str, Any]], opts: argparse.Namespace) -> None:
    machine = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
               "platform": platform.platform()}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"streams-{opts.broker}-{opts.records}.json"
    path.write_text(json.dumps({"machine": machine, "broker": opts.broker,
                                "results": results}, indent=2) + "\n")
    print("\n".join(table_lines(results, opts.broker)))


# --- entry points --------------------------------------------------------------------------

def child_main(opts: argparse.Namespace) -> None:
    runner: Callable[[str, str, str, str], None] = (
        strom_child if opts.child == "strom" else quix_child)
    runner(opts.workload, opts.bootstrap, opts.prefix, opts.state_dir)


def compile_java(work: Path) -> Path:
    classes = work / "java-classes"
    classes.mkdir()
    subprocess.run(["javac", "-d", str(classes), "-cp", str(kafka_dist.ensure_jars() / "*"),
                    str(JAVA_SOURCE)], check=True, capture_output=True, timeout=300)
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--broker", choices=("strom", "kafka"), default="strom")
    parser.add_argument("--quix-python", default=sys.executable)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each framework per workload, interleaved; the table "
                             "keeps each one's fastest (a shared machine's load varies)")
    for name in ("--child", "--workload", "--bootstrap", "--prefix", "--state-dir"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child_main(opts)
        return
    opts.work = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    frameworks = opts.frameworks.split(",")
    if "kafka-streams" in frameworks:
        opts.java_classes = compile_java(opts.work)
    results = []
    with broker(opts.broker, opts.work) as bootstrap:
        for workload in opts.workloads.split(","):
            base_ms = (int(time.time() * 1000) - opts.records) // 1000 * 1000
            records = inputs(workload, opts.records, base_ms)
            with bench_lock():
                runs = [run_one(framework, workload, bootstrap, records, opts)
                        for _ in range(opts.repeat) for framework in frameworks]
            for run in runs:
                print(json.dumps(run), flush=True)
            results += [best(runs, framework) for framework in frameworks]
    write(results, opts)


def best(runs: list[dict[str, Any]], framework: str) -> dict[str, Any]:
    """A framework's fastest verified run of a workload, with how many runs it had."""
    mine = [r for r in runs if r["framework"] == framework]
    good = [r for r in mine if r["verified"]] or mine
    chosen = dict(max(good, key=lambda r: r["records_per_s"]))
    chosen["runs"] = len(mine)
    chosen["all_records_per_s"] = [r["records_per_s"] for r in mine]
    chosen["all_cpu_s_per_million"] = [r["cpu_s_per_million"] for r in mine]
    return chosen


if __name__ == "__main__":
    main()

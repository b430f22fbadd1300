"""Strom Streams throughput: four workloads against a fresh `strom server`, one run.

Workloads (the issue's four), each on a 3-partition input topic filled beforehand:

- `stateless`: filter + map_values, to an output topic;
- `word count`: lines of five words, flat_map_values, group_by (repartition), count
  (RocksDB store, changelog), to an output topic;
- `tumbling window count`: 1,000 keys, one-second tumbling windows of event time, count
  (window store, changelog), to an output topic;
- `stream-table join`: a 1,000-row table (RocksDB) joined by each stream record.

For each: wall time from `StreamsApp.start()` until the group's committed offsets reach
the end of every input and repartition topic (so start-up, the group join and the last
commit are included), records/s of input, and the application's CPU seconds per million
input records (this process: Python plus librdkafka's threads; the broker runs in its own
process and is not counted). At-least-once, commit interval 1 s, record caches absent.

Quix Streams and Kafka Streams columns are not measured yet (issue 13: a later session
adds them on the same broker and machine). Writes docs/benchmarks/streams.json and
streams.md. Never part of the test suite.

    python bench/streams.py [--records 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.streams import Grouped, Serdes, StreamsBuilder, TimeWindows
from strom.streams.runtime.app import StreamsApp

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "docs" / "benchmarks"
S = Serdes.String
PARTITIONS = 3
KEYS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_broker(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "server", "--override", f"log.dirs={data_dir}",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}", "--override",
         "group.initial.rebalance.delay.ms=0", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=1)
            return proc, bootstrap
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the broker did not start")


def create(bootstrap: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    for future in futures.values():
        future.result(30)


def fill(bootstrap: str, topic: str, records: list[tuple[str, str, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": 1,
                         "partitioner": "murmur2_random", "queue.buffering.max.messages": 500000})
    for key, value, ts in records:
        while True:
            try:
                producer.produce(topic, value.encode(), key.encode(), timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def group_done(bootstrap: str, group: str, topics: list[str]) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        committed = {(tp.topic, tp.partition): tp.offset
                     for tp in consumer.committed(tps, timeout=10)}
        for tp in tps:
            high = consumer.get_watermark_offsets(tp, timeout=10)[1]
            if high > 0 and committed[(tp.topic, tp.partition)] < high:
                return False
        return True
    finally:
        consumer.close()


Topics = dict[str, str]


def output_count(bootstrap: str, topic: str) -> int:
    """Records in the output topic: a check that the run did all its work."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-check"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(PARTITIONS))
    finally:
        consumer.close()


def stateless(b: StreamsBuilder, t: Topics) -> None:
    (b.stream(t["in"], key_serde=S, value_serde=S).filter(lambda k, v: not v.startswith("#"))
     .map_values(str.upper).to(t["out"], S, S))


def word_count(b: StreamsBuilder, t: Topics) -> None:
    (b.stream(t["in"], key_serde=S, value_serde=S).flat_map_values(str.split)
     .group_by(lambda k, w: w, Grouped("words", S, S)).count("counts")
     .to_stream().map_values(str).to(t["out"], S, S))


def window_count(b: StreamsBuilder, t: Topics) -> None:
    (b.stream(t["in"], key_serde=S, value_serde=S).group_by_key()
     .windowed_by(TimeWindows.of(1000)).count("windows")
     .to_stream().map(lambda wk, n: (wk.key, str(n))).to(t["out"], S, S))


def table_join(b: StreamsBuilder, t: Topics) -> None:
    table = b.table(t["table"], S, S, materialized="rows")
    (b.stream(t["in"], key_serde=S, value_serde=S).join(table, lambda v, row: v + row)
     .to(t["out"], S, S))


def inputs(kind: str, count: int) -> list[tuple[str, str, int]]:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(KEYS)]
    if kind == "word count":
        return [(f"k{i}", " ".join(rng.choice(words) for _ in range(5)), 1_000_000 + i)
                for i in range(count)]
    return [(f"k{rng.randrange(KEYS)}", f"value-{i}", 1_000_000 + i) for i in range(count)]


WORKLOADS: dict[str, Callable[[StreamsBuilder, Topics], None]] = {
    "stateless": stateless, "word count": word_count, "tumbling window count": window_count,
    "stream-table join": table_join,
}


def run_workload(name: str, build: Callable[[StreamsBuilder, Topics], None], bootstrap: str,
                 count: int, work: Path) -> dict[str, Any]:
    slug = name.replace(" ", "-")
    prefix = f"bench-{slug}-{int(time.time())}"
    topics = {t: f"{prefix}-{t}" for t in ("in", "out", "table")}
    create(bootstrap, *topics.values())
    fill(bootstrap, topics["in"], inputs(name, count))
    if name == "stream-table join":
        fill(bootstrap, topics["table"], [(f"k{i}", f"row-{i}", 1) for i in range(KEYS)])
    builder = StreamsBuilder()
    build(builder, topics)
    topology = builder.build()
    app_id = prefix
    app = StreamsApp(topology, app_id, bootstrap, state_dir=work / slug, commit_interval_ms=1000)
    cpu0, t0 = time.process_time(), time.perf_counter()
    app.start()
    watched = [topics["in"]] + [f"{app_id}-{t}" for t in topology.internal_topics]
    while not group_done(bootstrap, app_id, watched):
        if app.error is not None:
            raise RuntimeError(f"{name}: {app.error}")
        time.sleep(0.25)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    app.close()
    produced = output_count(bootstrap, topics["out"])
    expected = count * (5 if name == "word count" else 1)
    if produced < expected:
        raise RuntimeError(f"{name}: {produced} output records, expected {expected}")
    return {"workload": name, "records": count, "outputs": produced, "seconds": round(elapsed, 2),
            "records_per_s": round(count / elapsed), "cpu_s": round(cpu, 2),
            "cpu_s_per_million": round(cpu / count * 1e6, 1)}


def write(results: list[dict[str, Any]], count: int) -> None:
    machine = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
               "platform": platform.platform()}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "streams.json").write_text(json.dumps({"machine": machine, "results": results},
                                                     indent=2) + "\n")
    lines = [
        "# Strom Streams throughput",
        "",
        f"`python bench/streams.py --records {count}` on {machine['cpus']} CPUs, Python "
        f"{machine['python']}, against a fresh `strom server` on the same machine. Wall time "
        "from `StreamsApp.start()` until the group's committed offsets reach the end of the "
        "input and repartition topics (start-up, group join and last commit included); CPU "
        "is the application process's (Python and librdkafka), not the broker's. "
        "At-least-once, commit interval 1 s, three partitions, one stream thread. Word count's "
        "records are lines of five words (five times as many words through the repartition "
        "topic, the store and the output).",
        "",
        "| workload | records | seconds | records/s | CPU-s per million | Quix Streams | "
        "Kafka Streams |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['workload']} | {r['records']:,} | {r['seconds']} | "
                     f"{r['records_per_s']:,} | {r['cpu_s_per_million']} | not measured yet | "
                     "not measured yet |")
    lines += ["", "Quix Streams and Kafka Streams on the same broker and machine are the "
              "next step (issue 13)."]
    (OUT_DIR / "streams.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    proc, bootstrap = start_broker(work / "data")
    results = []
    try:
        for name, build in WORKLOADS.items():
            result = run_workload(name, build, bootstrap, args.records, work)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        proc.terminate()
        proc.wait(60)
    write(results, args.records)


if __name__ == "__main__":
    main()

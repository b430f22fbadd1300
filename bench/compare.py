"""Strom and Apache Kafka side by side: same workloads, same clients, same machine, one run.

For each broker in turn (Strom first, then Kafka from the jars `tools/kafka_dist.py`
fetches) on a fresh data directory:

- start: process spawn to the first acknowledged produce; idle RSS two seconds later;
- produce throughput, 100 B / 1 KiB / 16 KiB records, acks=1 and acks=all, one partition,
  with confluent-kafka (librdkafka) and with kafka-producer-perf-test (ProducerPerformance,
  Java client defaults besides acks);
- consume throughput from the pre-filled topics, with confluent-kafka (assigned, from
  offset 0) and with kafka-consumer-perf-test (ConsumerPerformance, fetch rate excluding
  the group join);
- end-to-end latency p50/p99/p99.9: 1 KiB records at a fixed 5,000 records/s, acks=all,
  linger 1 ms, one consumer reading the same partition (confluent-kafka in both threads);
- RSS after those workloads ("loaded");
- partitions: 1,000 and 10,000 partitions, as topics of 1,000 partitions each (Kafka's
  controller refuses one operation of more than 10,000 records) — create time (requests
  one topic at a time, each until all its partitions are led in metadata), Metadata request
  time for those topics (raw v1 request, median of 10), and produce throughput of 100 B
  records spread round-robin over all of them.

Writes docs/benchmarks/compare.json, compare.md (with the Strom/Kafka ratio per row and
whether the issue's floors hold) and compare_*.png charts (matplotlib). Never part of the
test suite. A full run takes about 10-15 minutes on 2 cores; `--quick` about 4.

    python bench/compare.py [--quick] [--only strom|kafka]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import kafka_dist  # noqa: E402

from bench.single_node import free_port, rss_mib  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
SIZES = (100, 1024, 16384)
ACKS = ("1", "all")
PARTITIONS_PER_TOPIC = 1000
PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


@dataclass
class Plan:
    counts: dict[int, int]
    latency_rate: int = 5000
    latency_seconds: float = 12.0
    partitions: tuple[int, ...] = (1000, 10000)
    spread_records: int = 200_000

    @classmethod
    def full(cls) -> Plan:
        return cls({100: 1_000_000, 1024: 300_000, 16384: 30_000})

    @classmethod
    def quick(cls) -> Plan:
        return cls({100: 200_000, 1024: 60_000, 16384: 6_000}, latency_seconds=5.0,
                   partitions=(1000,), spread_records=50_000)


# ---------------------------------------------------------------------------- brokers


def first_produce(bootstrap: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Produce one record, retrying until the broker acknowledges it."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 0,
                         "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50,
                         "retry.backoff.ms": 10, "retry.backoff.max.ms": 50,
                         "topic.metadata.refresh.interval.ms": 100, "message.timeout.ms": 2000,
                         "log_level": 0})
    deadline = time.monotonic() + timeout
    acked: list[bool] = []
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} during start")
        acked.clear()
        producer.produce("bench-start", b"x", on_delivery=lambda err, _m: acked.append(err is None))
        while not acked and time.monotonic() < deadline:
            producer.poll(0.005)
        if acked and acked[0]:
            return
    raise RuntimeError("broker never acknowledged a produce")


@dataclass
class Running:
    name: str
    bootstrap: str
    pid: int
    start_s: float
    stop: Callable[[], None]
    version: str = ""


def start_strom(work: Path) -> Running:
    port = free_port()
    log = open(work / "strom.log", "wb")  # noqa: SIM115 - the child writes it
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "server", "--override", f"log.dirs={work / 'data'}",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
         "--override", "group.initial.rebalance.delay.ms=0", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    bootstrap = f"127.0.0.1:{port}"
    first_produce(bootstrap, proc)
    start_s = time.perf_counter() - t0

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    from importlib.metadata import version
    return Running("strom", bootstrap, proc.pid, start_s, stop, version("strom"))


def start_kafka(work: Path) -> Running:
    broker = kafka_dist.KafkaBroker(work / "kafka")
    broker.prepare()  # storage format: a one-time install step, not part of start-up
    t0 = time.perf_counter()
    proc = broker.launch()
    first_produce(broker.bootstrap, proc)
    start_s = time.perf_counter() - t0
    return Running("kafka", broker.bootstrap, proc.pid, start_s, lambda: broker.stop(),
                   kafka_dist.KAFKA_VERSION)


# ---------------------------------------------------------------------------- workloads


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, topic: str, partitions: int = 1, timeout: float = 300) -> float:
    """Create a topic and wait until metadata shows every partition with a leader."""
    client = admin(bootstrap)
    t0 = time.perf_counter()
    client.create_topics([NewTopic(topic, partitions, 1)], request_timeout=timeout)[topic].result(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = client.list_topics(topic, timeout=30).topics.get(topic)
        if (md is not None and md.error is None and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values())):
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise RuntimeError(f"{topic} not ready after {timeout}s")


def produce_confluent(bootstrap: str, topic: str, size: int, count: int, acks: str,
                      spread: list[tuple[str, int]] | None = None) -> dict[str, float]:
    """Produce `count` records of `size` bytes; with `spread`, round-robin over those
    (topic, partition) pairs instead of to `topic`."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 2_000_000, "compression.type": "none",
                         "message.timeout.ms": 120_000})
    value = os.urandom(size)
    failed: list[object] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    t0 = time.perf_counter()
    for i in range(count):
        while True:
            try:
                if spread:
                    t, p = spread[i % len(spread)]
                    producer.produce(t, value, partition=p, on_delivery=on_delivery)
                else:
                    producer.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.001)
    if producer.flush(300) != 0 or failed:
        raise KafkaException(f"produce to {topic} did not finish: {failed[:3]}")
    elapsed = time.perf_counter() - t0
    return {"records_per_s": count / elapsed, "mb_per_s": count * size / elapsed / 1e6,
            "seconds": elapsed, "records": count}


def produce_perf_tool(bootstrap: str, topic: str, size: int, count: int, acks: str
                      ) -> dict[str, float]:
    result = kafka_dist.run_tool(
        "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(count),
        "--record-size", str(size), "--throughput", "-1",
        "--command-property", f"bootstrap.servers={bootstrap}", f"acks={acks}", timeout=600,
        jvm_opts=kafka_dist.PERF_JVM_OPTS)
    matches = [m for m in map(PERF_LINE.search, result.stdout.splitlines()) if m]
    if result.returncode != 0 or not matches:
        raise RuntimeError(f"ProducerPerformance failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    m = matches[-1]
    rps = float(m.group(2))
    return {"records_per_s": rps, "mb_per_s": rps * size / 1e6, "records": int(m.group(1)),
            "avg_latency_ms": float(m.group(4)), "p99_latency_ms": float(m.group(8))}


def consume_confluent(bootstrap: str, topic: str, size: int, count: int) -> dict[str, float]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                         "max.partition.fetch.bytes": 10_485_760})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    t0 = time.perf_counter()
    while got < count:
        # consume() waits for its full count or the timeout: never ask for more than is left
        batch = consumer.consume(min(10_000, count - got), timeout=10)
        if not batch:
            raise RuntimeError(f"consumer stalled at {got}/{count}")
        got += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - t0
    consumer.close()
    return {"records_per_s": got / elapsed, "mb_per_s": got * size / elapsed / 1e6,
            "seconds": elapsed, "records": got}


def consume_perf_tool(bootstrap: str, topic: str, size: int, count: int) -> dict[str, float]:
    result = kafka_dist.run_tool(
        "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
        "--topic", topic, "--num-records", str(count), "--timeout", "30000", timeout=600,
        jvm_opts=kafka_dist.PERF_JVM_OPTS)
    lines = [line for line in result.stdout.splitlines() if "," in line]
    if result.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"ConsumerPerformance failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    stats = dict(zip([h.strip() for h in lines[-2].split(",")],
                     [v.strip() for v in lines[-1].split(",")], strict=True))
    rps = float(stats["fetch.nMsg.sec"])
    return {"records_per_s": rps, "mb_per_s": rps * size / 1e6,
            "records": int(stats["data.consumed.in.nMsg"]),
            "rebalance_ms": float(stats["rebalance.time.ms"])}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def end_to_end_latency(bootstrap: str, topic: str, rate: int, seconds: float,
                       size: int = 1024) -> dict[str, float]:
    """Produce `rate` records/s for `seconds`; the consumer records now - send time per record."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-lat-{topic}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 500,
                         "fetch.min.bytes": 1})
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    # let the consumer resolve the end offset and start long-polling before producing
    for _ in range(20):
        consumer.poll(0.05)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                         "compression.type": "none"})
    pad = os.urandom(size - 8)
    total = int(rate * seconds)
    done = threading.Event()

    def produce() -> None:
        t0 = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                producer.produce(topic, struct.pack(">q", time.time_ns()) + pad)
                sent += 1
            producer.poll(0)
            time.sleep(0.0005)
        producer.flush(60)
        done.set()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds + 60
    while len(latencies) < total and time.monotonic() < deadline:
        # poll() returns as soon as one record is there; consume(n) would wait for n of them
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is None:
            latencies.append((time.time_ns() - struct.unpack_from(">q", msg.value())[0]) / 1e6)
    thread.join(60)
    consumer.close()
    warm = latencies[int(rate * 1.0):]  # drop the first second
    warm.sort()
    return {"p50_ms": percentile(warm, 0.50), "p99_ms": percentile(warm, 0.99),
            "p999_ms": percentile(warm, 0.999), "max_ms": warm[-1] if warm else float("nan"),
            "records": len(latencies), "expected": total}


def metadata_request_ms(bootstrap: str, topics: list[str], repeats: int = 10) -> float:
    """Median wall time of a Metadata v1 request for these topics, over a raw socket."""
    host, port = bootstrap.rsplit(":", 1)
    names = b"".join(struct.pack(">h", len(t.encode())) + t.encode() for t in topics)
    client = b"bench"
    times = []
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(repeats + 1):
            body = (struct.pack(">hhih", 3, 1, i, len(client)) + client
                    + struct.pack(">i", len(topics)) + names)
            t0 = time.perf_counter()
            s.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            recv_exact(s, size)
            if i:  # the first one warms caches
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


# ---------------------------------------------------------------------------- one broker


@dataclass
class Results:
    broker: str
    version: str = ""
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def record(self, key: str, fn: Callable[[], dict[str, Any]]) -> None:
        t0 = time.perf_counter()
        try:
            self.metrics[key] = fn()
            print(f"  {self.broker:6} {key:42} {summary(self.metrics[key])}"
                  f"  ({time.perf_counter() - t0:.1f}s)", flush=True)
        except Exception as exc:  # noqa: BLE001 - record any failure, go on with the other workloads
            self.errors[key] = f"{type(exc).__name__}: {exc}"[:2000]
            print(f"  {self.broker:6} {key:42} FAILED {self.errors[key][:300]}", flush=True)


def summary(m: dict[str, Any]) -> str:
    if "records_per_s" in m:
        return f"{m['records_per_s']:>12,.0f} rec/s {m['mb_per_s']:8.1f} MB/s"
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items())


def run_broker(name: str, plan: Plan) -> Results:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    res = Results(name)
    print(f"== {name}", flush=True)
    try:
        running = (start_strom if name == "strom" else start_kafka)(work)
    except Exception as exc:  # noqa: BLE001 - a broker that cannot start is a result, not a crash
        res.errors["start"] = f"{type(exc).__name__}: {exc}"
        shutil.rmtree(work, ignore_errors=True)
        return res
    res.version = running.version
    boot = running.bootstrap
    try:
        res.metrics["start"] = {"start_to_first_produce_s": running.start_s}
        time.sleep(2.0)
        res.metrics["start"]["idle_rss_mib"] = rss_mib(running.pid)
        print(f"  {name:6} start {running.start_s:.2f}s, idle RSS "
              f"{res.metrics['start']['idle_rss_mib']:.0f} MiB", flush=True)

        for size in SIZES:
            count = plan.counts[size]
            for acks in ACKS:
                for client in ("confluent", "perf-test"):
                    topic = f"bench-produce-{size}-{acks}-{client}"
                    create_topic(boot, topic)
                    if client == "confluent":
                        res.record(f"produce {size} acks={acks} confluent",
                                   lambda t=topic, s=size, c=count, a=acks:
                                   produce_confluent(boot, t, s, c, a))
                    else:
                        res.record(f"produce {size} acks={acks} perf-test",
                                   lambda t=topic, s=size, c=count, a=acks:
                                   produce_perf_tool(boot, t, s, c, a))
        for size in SIZES:
            topic = f"bench-produce-{size}-1-confluent"
            count = plan.counts[size]
            res.record(f"consume {size} confluent",
                       lambda t=topic, s=size, c=count: consume_confluent(boot, t, s, c))
            res.record(f"consume {size} perf-test",
                       lambda t=topic, s=size, c=count: consume_perf_tool(boot, t, s, c))

        create_topic(boot, "bench-latency")
        res.record("latency 1024 @5000/s", lambda: end_to_end_latency(
            boot, "bench-latency", plan.latency_rate, plan.latency_seconds))
        res.metrics["start"]["loaded_rss_mib"] = rss_mib(running.pid)
        print(f"  {name:6} loaded RSS {res.metrics['start']['loaded_rss_mib']:.0f} MiB", flush=True)

        for n in plan.partitions:
            # Kafka's controller refuses one operation of more than 10,000 records
            # (POLICY_VIOLATION), so N partitions are topics of at most 1,000 each
            per = min(n, PARTITIONS_PER_TOPIC)
            topics = [f"bench-partitions-{n}-{i}" for i in range(n // per)]

            def scale(topics: list[str] = topics, per: int = per) -> dict[str, Any]:
                out: dict[str, Any] = {
                    "create_s": sum(create_topic(boot, t, per, timeout=600) for t in topics)}
                out["metadata_ms"] = metadata_request_ms(boot, topics)
                spread = [(t, p) for p in range(per) for t in topics]
                produced = produce_confluent(boot, "", 100, plan.spread_records, "1", spread=spread)
                out["records_per_s"] = produced["records_per_s"]
                out["mb_per_s"] = produced["mb_per_s"]
                out["rss_mib"] = rss_mib(running.pid)
                return out

            res.record(f"partitions {n}", scale)
    finally:
        running.stop()
        shutil.rmtree(work, ignore_errors=True)
    return res


# ---------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {"cpus": len(os.sched_getaffinity(0)), "cpu": cpu, "memory_gib": round(mem_kib / 2**20, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "java": java[0] if java else "none",
            "confluent_kafka": confluent_kafka.__version__,
            "librdkafka": confluent_kafka.libversion()[0]}


@dataclass
class Row:
    section: str
    workload: str
    client: str
    metric: str
    unit: str
    strom: float | None
    kafka: float | None
    higher_is_better: bool
    floor: str = ""  # a description of the floor, when one applies

    @property
    def ratio(self) -> float | None:
        if self.strom is None or self.kafka is None or self.kafka == 0:
            return None
        return self.strom / self.kafka

    def floor_met(self) -> bool | None:
        r = self.ratio
        if self.floor == "throughput":
            return None if r is None else r >= 0.5
        if self.floor == "latency":
            return None if r is None else r <= 2.0
        if self.floor == "start":
            return None if self.strom is None else self.strom < 1.0
        if self.floor == "idle_rss":
            return None if self.strom is None else self.strom < 100.0
        return None


def rows_from(results: dict[str, Results]) -> list[Row]:
    def get(broker: str, key: str, metric: str) -> float | None:
        res = results.get(broker)
        value = res.metrics.get(key, {}).get(metric) if res else None
        return float(value) if value is not None else None

    rows: list[Row] = []

    def add(section: str, key: str, workload: str, client: str, metric: str, unit: str,
            higher: bool, floor: str = "") -> None:
        rows.append(Row(section, workload, client, metric, unit, get("strom", key, metric),
                        get("kafka", key, metric), higher, floor))

    for size in SIZES:
        for acks in ACKS:
            for client in ("confluent", "perf-test"):
                key = f"produce {size} acks={acks} {client}"
                label = f"produce {size} B, acks={acks}"
                add("produce", key, label, client, "records_per_s", "records/s", True, "throughput")
                add("produce", key, label, client, "mb_per_s", "MB/s", True)
    for size in SIZES:
        for client in ("confluent", "perf-test"):
            key = f"consume {size} {client}"
            add("consume", key, f"consume {size} B", client, "records_per_s", "records/s", True,
                "throughput")
            add("consume", key, f"consume {size} B", client, "mb_per_s", "MB/s", True)
    for metric, floor in (("p50_ms", ""), ("p99_ms", "latency"), ("p999_ms", ""), ("max_ms", "")):
        add("latency", "latency 1024 @5000/s", "end-to-end 1 KiB @ 5,000/s, acks=all", "confluent",
            metric, "ms", False, floor)
    add("resources", "start", "broker start to first produce", "confluent",
        "start_to_first_produce_s", "s", False, "start")
    add("resources", "start", "idle RSS", "-", "idle_rss_mib", "MiB", False, "idle_rss")
    add("resources", "start", "RSS after the workloads", "-", "loaded_rss_mib", "MiB", False)
    for n in sorted({n for r in results.values() for k in r.metrics if k.startswith("partitions")
                     for n in [int(k.split()[1])]}):
        key = f"partitions {n}"
        add("partitions", key, f"{n:,} partitions: create", "confluent", "create_s", "s", False)
        add("partitions", key, f"{n:,} partitions: Metadata request", "raw v1", "metadata_ms", "ms",
            False)
        add("partitions", key, f"{n:,} partitions: produce 100 B spread", "confluent",
            "records_per_s", "records/s", True, "throughput")
        add("partitions", key, f"{n:,} partitions: RSS after", "-", "rss_mib", "MiB", False)
    return rows


LABELS = {"records_per_s": "records/s", "mb_per_s": "MB/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
          "p999_ms": "p99.9 ms", "max_ms": "max ms", "metadata_ms": "ms"}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "records/s":
        return f"{value:,.0f}"
    if unit in ("MB/s", "MiB"):
        return f"{value:,.1f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def write_markdown(result: dict[str, Any], rows: list[Row]) -> str:
    m = result["machine"]
    lines = [
        "# Strom vs Apache Kafka",
        "",
        f"Generated by `python bench/compare.py{' --quick' if result['quick'] else ''}` on "
        f"{result['date']}: Strom {result['versions'].get('strom', '?')} and Apache Kafka "
        f"{result['versions'].get('kafka', '?')} (single-node KRaft, kafka-server-start's JVM "
        f"defaults: -Xmx1g -Xms1g, G1), one after the other on the same machine — "
        f"{m['cpus']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, {m['platform']}, "
        f"Python {m['python']}, {m['java']}, confluent-kafka {m['confluent_kafka']} "
        f"(librdkafka {m['librdkafka']}). Client and broker share the two cores; 1-minute load "
        f"average before/after the run: {result['loadavg_before_after']}.",
        "",
        "Produce and consume use one partition; produce rows use confluent-kafka (linger 5 ms, "
        "batch 1 MB) or `kafka-producer-perf-test` (Java client defaults but acks); consume "
        "rows read the acks=1 confluent topics back (the perf-test rate excludes the group join). "
        "Floors from issue 6: throughput ≥ ½ Kafka's, p99 ≤ 2x Kafka's, start < 1 s, "
        "idle RSS < 100 MiB.",
        "",
        "| workload | client | metric | Strom | Kafka | Strom/Kafka | floor |",
        "|---|---|---|---:|---:|---:|:---:|",
    ]
    for r in rows:
        met = r.floor_met()
        floor = "" if met is None else ("✅" if met else "❌")
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(f"| {r.workload} | {r.client} | {LABELS.get(r.metric, r.unit)} | "
                     f"{fmt(r.strom, r.unit)} | "
                     f"{fmt(r.kafka, r.unit)} | {ratio} | {floor} |")
    errors = [(b, k, e) for b, res in result["brokers"].items() for k, e in res["errors"].items()]
    if errors:
        lines += ["", "## Failed workloads", ""]
        lines += [f"- {b}, {k}: `{e[:300]}`" for b, k, e in errors]
    lines += ["", "Charts: " + ", ".join(f"[{p}]({p})" for p in CHARTS), ""]
    return "\n".join(lines)


CHARTS = ("compare_throughput.png", "compare_latency.png", "compare_resources.png",
          "compare_partitions.png")


def write_charts(rows: list[Row]) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no charts", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def bars(ax: Any, selected: list[Row], title: str, ylabel: str, log: bool = False) -> None:
        labels = [f"{r.workload}\n{r.client}".replace("produce ", "").replace("consume ", "")
                  if r.section != "latency" else LABELS[r.metric] for r in selected]
        xs = range(len(selected))
        w = 0.4
        ax.bar([x - w / 2 for x in xs], [r.strom or 0 for r in selected], w, label="Strom",
               color="#2a7ab9")
        ax.bar([x + w / 2 for x in xs], [r.kafka or 0 for r in selected], w, label="Apache Kafka",
               color="#999999")
        for x, r in zip(xs, selected, strict=True):
            if r.ratio is not None:
                top = max(r.strom or 0, r.kafka or 0)
                ax.annotate(f"{r.ratio:.2f}x", (x, top), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)

    OUT.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 1, figsize=(13, 10))
    bars(axes[0], [r for r in rows if r.section == "produce" and r.unit == "MB/s"],
         "Produce throughput (MB/s, one partition; label: Strom/Kafka)", "MB/s")
    bars(axes[1], [r for r in rows if r.section == "consume" and r.unit == "MB/s"],
         "Consume throughput (MB/s, one partition)", "MB/s")
    fig.tight_layout()
    fig.savefig(OUT / CHARTS[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    bars(ax, [r for r in rows if r.section == "latency"],
         "End-to-end latency, 1 KiB at 5,000 records/s, acks=all (ms, lower is better)", "ms",
         log=True)
    fig.tight_layout()
    fig.savefig(OUT / CHARTS[1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    bars(axes[0], [r for r in rows if r.section == "resources" and r.unit == "s"],
         "Start to first produce (s)", "s")
    bars(axes[1], [r for r in rows if r.section == "resources" and r.unit == "MiB"],
         "Resident memory (MiB)", "MiB")
    fig.tight_layout()
    fig.savefig(OUT / CHARTS[2], dpi=110)
    plt.close(fig)

    part = [r for r in rows if r.section == "partitions"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    bars(axes[0], [r for r in part if r.unit == "s"], "Create topic (s)", "s")
    bars(axes[1], [r for r in part if r.unit == "ms"], "Metadata request (ms)", "ms")
    bars(axes[2], [r for r in part if r.unit == "records/s"], "Produce spread (records/s)",
         "records/s")
    fig.tight_layout()
    fig.savefig(OUT / CHARTS[3], dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, 1,000 partitions only")
    parser.add_argument("--only", choices=("strom", "kafka"), help="run one broker (no ratios)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan.full()
    if args.only != "strom":
        if not kafka_dist.java_available():
            sys.exit("java is not installed: apt-get install -y default-jdk-headless maven")
        kafka_dist.ensure_jars()
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    results: dict[str, Results] = {}
    for name in ("strom", "kafka"):
        if args.only in (None, name):
            results[name] = run_broker(name, plan)
    rows = rows_from(results)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
        # other work on the machine skews every number: recorded, not controlled
        "loadavg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "versions": {name: res.version for name, res in results.items()},
        "plan": {"counts": plan.counts, "latency_rate": plan.latency_rate,
                 "latency_seconds": plan.latency_seconds, "partitions": plan.partitions,
                 "spread_records": plan.spread_records},
        "brokers": {name: {"metrics": res.metrics, "errors": res.errors}
                    for name, res in results.items()},
        "rows": [{**r.__dict__, "ratio": r.ratio, "floor_met": r.floor_met()} for r in rows],
    }
    md = write_markdown(result, rows)
    if not args.no_write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
        (OUT / "compare.md").write_text(md)
        write_charts(rows)
    print(md)
    print(f"total {result['seconds']:.0f}s")


if __name__ == "__main__":
    main()

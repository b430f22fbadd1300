"""Log compaction, Strom and Apache Kafka side by side: how fast one clean runs, what it
leaves, and what clients feel meanwhile.

For each broker (fresh data dir, `log.cleaner.backoff.ms=200`, the other cleaner settings
at Kafka's defaults): a compacted topic (segment.bytes 16 MiB, min.compaction.lag.ms held
at a day so nothing is cleaned while it fills) receives N records of 1 KiB over K keys
with confluent-kafka; then min.compaction.lag.ms is altered to 0 and the clock starts.
The clean is done when the log dir's `cleaner-offset-checkpoint` (both brokers write
Kafka's file) reaches the base of the active segment. Throughout, a probe does
produce + fetch round trips (raw protocol, one connection, 5 ms apart) on another topic:
its latency while idle and while the cleaner runs is the "clients keep their latency"
question.

    python bench/cleaner_bench.py [--records 200000] [--keys 20000] [--only strom|kafka]

Writes docs/benchmarks/compaction.md (and .json). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tools import kafka_dist  # noqa: E402

from bench.admin_load import Probe  # noqa: E402
from bench.single_node import free_port, rss_mib  # noqa: E402

TOPIC, PROBE_TOPIC = "compacted", "probe"
SEGMENT_BYTES = 16 * 1024 * 1024
DAY_MS = 24 * 3600 * 1000
CLEANER = {"log.cleaner.backoff.ms": "200"}


def start_strom(work: Path) -> tuple[str, subprocess.Popen[bytes], Path]:
    port = free_port()
    data = work / "data"
    args = [sys.executable, "-m", "strom", "server", "--log-level", "warning",
            "--override", f"log.dirs={data}", "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", "strom.metrics.port=-1"]
    for key, value in CLEANER.items():
        args += ["--override", f"{key}={value}"]
    with open(work / "strom.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    return f"127.0.0.1:{port}", proc, data


def wait_ready(bootstrap: str, timeout: float = 120) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=2)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"{bootstrap} did not come up")


def create_topics(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    compact = {"cleanup.policy": "compact", "segment.bytes": str(SEGMENT_BYTES),
               "min.compaction.lag.ms": str(DAY_MS)}
    futures = admin.create_topics([NewTopic(TOPIC, 1, 1, config=compact),
                                   NewTopic(PROBE_TOPIC, 1, 1)])
    for future in futures.values():
        future.result(60)


def fill(bootstrap: str, records: int, keys: int) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "1",
                         "batch.size": 512 * 1024, "compression.type": "none"})
    value = b"v" * 1000
    t0 = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(TOPIC, value, b"key-%08d" % (i % keys))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.perf_counter() - t0


def checkpointed(data: Path) -> int:
    path = data / "cleaner-offset-checkpoint"
    try:
        lines = path.read_text().split("\n")
    except OSError:
        return -1
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 3 and parts[0] == TOPIC:
            return int(parts[2])
    return -1


def log_bytes(data: Path) -> tuple[int, int]:
    """(bytes of all .log files, base offset of the active segment)."""
    logs = sorted((data / f"{TOPIC}-0").glob("*.log"))
    return sum(p.stat().st_size for p in logs), int(logs[-1].name.split(".")[0])


def trigger_clean(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource("TOPIC", TOPIC, set_config={
        "cleanup.policy": "compact", "segment.bytes": str(SEGMENT_BYTES),
        "min.compaction.lag.ms": "0"})
    for future in admin.alter_configs([resource]).values():
        future.result(60)


def latency(rts: list[float]) -> dict[str, float]:
    if not rts:
        return {"n": 0}
    ms = sorted(r * 1000 for r in rts)
    return {"n": len(ms), "p50_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max_ms": ms[-1]}


def measure(name: str, bootstrap: str, data: Path, pid: int, records: int,
            keys: int) -> dict[str, Any]:
    create_topics(bootstrap)
    probe = Probe(bootstrap, PROBE_TOPIC)
    probe.start()
    fill_s = fill(bootstrap, records, keys)
    before, active = log_bytes(data)
    idle_start = time.perf_counter()
    time.sleep(5)
    idle = probe.between(idle_start, time.perf_counter())
    start = time.perf_counter()
    trigger_clean(bootstrap)
    while checkpointed(data) < active:
        if time.perf_counter() - start > 900:
            raise RuntimeError(f"{name}: the clean did not finish in 15 minutes")
        time.sleep(0.05)
    clean_s = time.perf_counter() - start
    during = probe.between(start, time.perf_counter())
    probe.stop_event.set()
    probe.join(10)
    after, _ = log_bytes(data)
    return {"fill_s": fill_s, "clean_s": clean_s, "bytes_before": before, "bytes_after": after,
            "cleaned_mb_per_s": (before / 2**20) / clean_s, "probe_idle": latency(idle),
            "probe_cleaning": latency(during), "rss_mib": rss_mib(pid)}


def run_strom(records: int, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bootstrap, proc, data = start_strom(Path(tmp))
        try:
            wait_ready(bootstrap)
            return measure("strom", bootstrap, data, proc.pid, records, keys)
        finally:
            proc.terminate()
            proc.wait(60)


def run_kafka(records: int, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = kafka_dist.KafkaBroker(Path(tmp) / "kafka", overrides=CLEANER)
        broker.prepare()
        broker.launch()
        try:
            wait_ready(broker.bootstrap)
            return measure("kafka", broker.bootstrap, broker.log_dir, broker.pid, records, keys)
        finally:
            broker.stop()


def render(results: dict[str, dict[str, Any]], records: int, keys: int) -> str:
    lines = [
        "# Log compaction: Strom and Apache Kafka 4.4.0 side by side",
        "",
        f"`python bench/cleaner_bench.py --records {records} --keys {keys}`: one compacted "
        "partition, 1 KiB values, segment.bytes 16 MiB, cleaner defaults but "
        "log.cleaner.backoff.ms=200; one clean of the whole log triggered by altering "
        "min.compaction.lag.ms to 0; a produce+fetch probe on another topic throughout.",
        "",
        "| metric | " + " | ".join(results) + " | Strom/Kafka |",
        "|---|" + "---|" * (len(results) + 1),
    ]
    rows = [("clean time (s)", lambda r: r["clean_s"], "{:.2f}"),
            ("cleaned MiB/s", lambda r: r["cleaned_mb_per_s"], "{:.1f}"),
            ("log bytes before", lambda r: r["bytes_before"], "{:,}"),
            ("log bytes after", lambda r: r["bytes_after"], "{:,}"),
            ("probe p50 idle (ms)", lambda r: r["probe_idle"].get("p50_ms", 0), "{:.2f}"),
            ("probe p99 idle (ms)", lambda r: r["probe_idle"].get("p99_ms", 0), "{:.2f}"),
            ("probe p50 while cleaning (ms)", lambda r: r["probe_cleaning"].get("p50_ms", 0),
             "{:.2f}"),
            ("probe p99 while cleaning (ms)", lambda r: r["probe_cleaning"].get("p99_ms", 0),
             "{:.2f}"),
            ("probe max while cleaning (ms)", lambda r: r["probe_cleaning"].get("max_ms", 0),
             "{:.2f}"),
            ("RSS after (MiB)", lambda r: r["rss_mib"], "{:.0f}")]
    for label, get, fmt in rows:
        values = [get(r) for r in results.values()]
        ratio = ""
        if "strom" in results and "kafka" in results and get(results["kafka"]):
            ratio = f"{get(results['strom']) / get(results['kafka']):.2f}"
        lines.append(f"| {label} | " + " | ".join(fmt.format(v) for v in values)
                     + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--only", choices=["strom", "kafka"])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    if args.only != "kafka":
        results["strom"] = run_strom(args.records, args.keys)
        print("strom", json.dumps(results["strom"], indent=1))
    if args.only != "strom":
        results["kafka"] = run_kafka(args.records, args.keys)
        print("kafka", json.dumps(results["kafka"], indent=1))
    text = render(results, args.records, args.keys)
    print(text)
    if not args.no_write:
        out = ROOT / "docs" / "benchmarks"
        (out / "compaction.json").write_text(json.dumps(results, indent=1) + "\n")
        (out / "compaction.md").write_text(text)


if __name__ == "__main__":
    main()

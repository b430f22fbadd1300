"""First Strom benchmark: one broker, confluent-kafka, produce and consume throughput.

Measures, against a fresh `strom server` on a loopback port:
- produce records/s and MB/s for 100 B and 1 KiB values (acks=1, linger 5 ms);
- consume records/s and MB/s reading the same topic back from offset 0;
- broker start time: process spawn to the first acknowledged produce;
- idle RSS after start, and RSS after the workload.

Writes docs/benchmarks/single_node.json and single_node.md. Never part of the test
suite; the side-by-side comparison with Apache Kafka grows from this (issue 6).

    python bench/single_node.py [--records-100 N] [--records-1k N]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_broker(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """Spawn a broker and return it with the seconds until a produce was acknowledged."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "server", "--override", f"log.dirs={data_dir}",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": 1,
                         "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50,
                         "retry.backoff.ms": 10, "topic.metadata.refresh.interval.ms": 100})
    acked: list[bool] = []
    producer.produce("bench-start", b"x", on_delivery=lambda err, _m: acked.append(err is None))
    deadline = time.monotonic() + 30
    while not any(acked) and time.monotonic() < deadline:
        producer.poll(0.005)
        if acked and not acked[-1]:
            acked.clear()
            producer.produce("bench-start", b"x",
                             on_delivery=lambda err, _m: acked.append(err is None))
    if not any(acked):
        proc.kill()
        raise RuntimeError("broker never acknowledged a produce")
    return proc, time.perf_counter() - t0


def produce(bootstrap: str, topic: str, size: int, count: int) -> dict[str, float]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5,
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                         "compression.type": "none"})
    value = b"x" * size
    t0 = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.001)
    if producer.flush(120) != 0:
        raise KafkaException("produce did not finish")
    elapsed = time.perf_counter() - t0
    return {"records_per_s": count / elapsed, "mb_per_s": count * size / elapsed / 1e6,
            "seconds": elapsed}


def consume(bootstrap: str, topic: str, size: int, count: int) -> dict[str, float]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                         "max.partition.fetch.bytes": 10_485_760})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    t0 = time.perf_counter()
    while got < count:
        batch = consumer.consume(10_000, timeout=10)
        if not batch:
            raise RuntimeError(f"consumer stalled at {got}/{count}")
        got += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - t0
    consumer.close()
    return {"records_per_s": got / elapsed, "mb_per_s": got * size / elapsed / 1e6,
            "seconds": elapsed}


def run(args: argparse.Namespace) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="strom-bench-"))
    port = free_port()
    proc, start_s = start_broker(data_dir, port)
    try:
        time.sleep(1.0)
        idle_rss = rss_mib(proc.pid)
        bootstrap = f"127.0.0.1:{port}"
        rows = []
        for size, count in ((100, args.records_100), (1024, args.records_1k)):
            topic = f"bench-{size}"
            rows.append({"workload": f"produce {size} B", **produce(bootstrap, topic, size, count),
                         "records": count})
            rows.append({"workload": f"consume {size} B", **consume(bootstrap, topic, size, count),
                         "records": count})
        loaded_rss = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "machine": {"cpus": len(__import__("os").sched_getaffinity(0)),
                    "platform": platform.platform(), "python": platform.python_version()},
        "client": "confluent-kafka (librdkafka)",
        "start_to_first_produce_s": start_s,
        "idle_rss_mib": idle_rss,
        "loaded_rss_mib": loaded_rss,
        "rows": rows,
    }


def write(result: dict[str, object]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "single_node.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Strom single-node benchmark",
        "",
        f"Machine: {result['machine']}. Client: {result['client']}. "
        "Regenerate with `python bench/single_node.py`.",
        "",
        "| workload | records | records/s | MB/s |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:  # type: ignore[attr-defined]
        lines.append(f"| {row['workload']} | {row['records']:,} | {row['records_per_s']:,.0f} | "
                     f"{row['mb_per_s']:.1f} |")
    lines += [
        "",
        f"- Broker start to first acknowledged produce: {result['start_to_first_produce_s']:.2f} s",
        f"- Idle RSS: {result['idle_rss_mib']:.1f} MiB; after the workload: "
        f"{result['loaded_rss_mib']:.1f} MiB",
        "",
    ]
    (OUT / "single_node.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records-100", type=int, default=1_000_000)
    parser.add_argument("--records-1k", type=int, default=300_000)
    result = run(parser.parse_args())
    write(result)
    print((OUT / "single_node.md").read_text())


if __name__ == "__main__":
    main()

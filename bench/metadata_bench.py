"""Topic creation and Metadata requests at 1,000 and 10,000 partitions, one broker.

The partition rows of `bench/compare.py`, alone and with more samples, to measure the
Metadata fast path and cheaper log creation (issue 10) before and after:

- create: one topic of 1,000 partitions at a time (Kafka's controller refuses more than
  10,000 records per operation), each with a fresh confluent-kafka AdminClient, timed
  until metadata shows every partition with a leader (`compare.create_topic`);
- Metadata: 21 raw requests on one connection for the topics of that row (v1, as
  compare.py, and v12, the version librdkafka sends): the first answer (which fills
  Strom's per-topic cache) and the median of the 20 after it;
- RSS of the broker after each row.

The 1,000 row runs first; the 10,000 row creates ten more topics on the same broker, as
compare.py does. Which Strom runs is whatever `python -m strom` imports, so a "before"
run points PYTHONPATH at a worktree of an older commit's `src`:

    PYTHONPATH=/tmp/before/src python bench/metadata_bench.py --label before --json b.json
    python bench/metadata_bench.py --label after --json a.json
    python bench/metadata_bench.py --report b.json a.json --note "..."  # writes metadata.md

The runs behind docs/benchmarks/metadata.md are kept beside it (metadata_before.json,
metadata_after.json).

`--broker kafka` runs the same against Apache Kafka (tools/kafka_dist.py). Never part of
the test suite; a Strom run takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.compare import (  # noqa: E402
    PARTITIONS_PER_TOPIC,
    Running,
    create_topic,
    recv_exact,
    start_kafka,
    start_strom,
)
from bench.single_node import rss_mib  # noqa: E402

OUT = ROOT / "docs" / "benchmarks" / "metadata.md"
SIZES = (1000, 10000)
REPEATS = 20
CLIENT = b"bench"
KAFKA_REFERENCE = "docs/benchmarks/compare.json"


def _v1_request(correlation: int, topics: list[str]) -> bytes:
    names = b"".join(struct.pack(">h", len(t.encode())) + t.encode() for t in topics)
    return (struct.pack(">hhih", 3, 1, correlation, len(CLIENT)) + CLIENT
            + struct.pack(">i", len(topics)) + names)


def _v12_request(correlation: int, topics: list[str]) -> bytes:
    """Header v2 (legacy client id, no tags), compact topics of (zero id, name), no auto
    creation, no authorized operations."""
    body = bytearray(struct.pack(">hhih", 3, 12, correlation, len(CLIENT)) + CLIENT + b"\0")
    body.append(len(topics) + 1)  # fewer than 127 topics: a one-byte varint
    for t in topics:
        name = t.encode()
        body += bytes(16) + bytes([len(name) + 1]) + name + b"\0"
    body += b"\0\0\0"  # allow_auto_topic_creation, include_topic_authorized_operations, tags
    return bytes(body)


def metadata_times(bootstrap: str, topics: list[str], version: int) -> dict[str, float]:
    """The first answer's wall time and the median of the next REPEATS, in ms."""
    host, port = bootstrap.rsplit(":", 1)
    make = _v1_request if version == 1 else _v12_request
    times = []
    size = 0
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(REPEATS + 1):
            body = make(i, topics)
            t0 = time.perf_counter()
            s.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            recv_exact(s, size)
            times.append((time.perf_counter() - t0) * 1000)
    return {"first_ms": times[0], "median_ms": statistics.median(times[1:]),
            "max_ms": max(times[1:]), "response_bytes": size}


def run(broker: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="strom-metadata-bench-"))
    running: Running = start_kafka(work) if broker == "kafka" else start_strom(work)
    rows: dict[str, Any] = {}
    try:
        for n in SIZES:
            per = min(n, PARTITIONS_PER_TOPIC)
            topics = [f"bench-partitions-{n}-{i}" for i in range(n // per)]
            per_topic = [create_topic(running.bootstrap, t, per, timeout=600) for t in topics]
            row: dict[str, Any] = {"create_s": sum(per_topic), "create_per_topic_s": per_topic}
            for version in (1, 12):
                row[f"metadata_v{version}"] = metadata_times(running.bootstrap, topics, version)
            row["rss_mib"] = rss_mib(running.pid)
            rows[str(n)] = row
            print(f"{broker} {n:>6,} partitions: create {row['create_s']:.2f} s, Metadata v1 "
                  f"median {row['metadata_v1']['median_ms']:.2f} ms", flush=True)
    finally:
        running.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"broker": broker, "version": running.version, "rows": rows}


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "unknown")
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpus": len(os.sched_getaffinity(0)), "cpu": cpu,
            "memory_gib": round(mem_kib / 2**20, 1), "platform": platform.platform(),
            "python": platform.python_version()}


# ---------------------------------------------------------------------------- report


def _kafka_reference() -> dict[str, dict[str, float]]:
    """Kafka's partition rows from the last compare.py run (same machine kind, same
    create method, Metadata v1 median of 10)."""
    doc = json.loads((ROOT / KAFKA_REFERENCE).read_text())
    metrics = doc["brokers"]["kafka"]["metrics"]
    return {str(n): metrics.get(f"partitions {n}", {}) for n in SIZES}


def report(before_path: Path, after_path: Path, notes: list[str] | None = None) -> str:
    before, after = (json.loads(p.read_text()) for p in (before_path, after_path))
    kafka = _kafka_reference()
    m = after["machine"]
    lines = [
        "# Metadata and topic creation: before and after (issue 10)",
        "",
        f"`python bench/metadata_bench.py`, run {before['date']} (before) and {after['date']} "
        f"(after) on {m['cpus']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, "
        f"{m['platform']}, Python {m['python']}; 1-minute load average at the start: "
        f"{before['loadavg']:.2f} (before), {after['loadavg']:.2f} (after). Before is commit "
        f"`{before['commit']}` (a git worktree, PYTHONPATH at its `src`), after is "
        f"`{after['commit']}`. Client and broker share the two cores.",
        "",
        "Method: one Strom broker on a fresh data directory; topics of 1,000 partitions "
        "(replication factor 1) created one at a time with a fresh confluent-kafka "
        "AdminClient each, timed until metadata shows every partition with a leader; the "
        "10,000 row creates ten more topics on the same broker. Then 21 raw Metadata "
        "requests for that row's topics on one connection: the first answer (it fills the "
        "cache of encoded topic entries) and the median of the 20 after it. Kafka's column "
        "is Apache Kafka 4.4.0 from the last `bench/compare.py` run "
        "(`docs/benchmarks/compare.json`: same create method, Metadata v1 median of 10).",
        *[line for note in notes or () for line in ("", note)],
        "",
        "| row | metric | before | after | after/before | Kafka 4.4 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n in SIZES:
        b, a, k = before["rows"][str(n)], after["rows"][str(n)], kafka.get(str(n), {})
        lines += [
            _row(n, "create (s)", b["create_s"], a["create_s"], k.get("create_s"), "{:.2f}"),
            _row(n, "Metadata v1, median (ms)", b["metadata_v1"]["median_ms"],
                 a["metadata_v1"]["median_ms"], k.get("metadata_ms"), "{:.3g}"),
            _row(n, "Metadata v1, first (ms)", b["metadata_v1"]["first_ms"],
                 a["metadata_v1"]["first_ms"], None, "{:.3g}"),
            _row(n, "Metadata v12, median (ms)", b["metadata_v12"]["median_ms"],
                 a["metadata_v12"]["median_ms"], None, "{:.3g}"),
            _row(n, "Metadata v12, first (ms)", b["metadata_v12"]["first_ms"],
                 a["metadata_v12"]["first_ms"], None, "{:.3g}"),
            _row(n, "RSS after (MiB)", b["rss_mib"], a["rss_mib"], k.get("rss_mib"), "{:.1f}"),
        ]
    lines += ["", "Create time per 1,000-partition topic (s), in creation order:", ""]
    for label, doc in (("before", before), ("after", after)):
        per = [t for n in SIZES for t in doc["rows"][str(n)]["create_per_topic_s"]]
        lines.append(f"- {label}: " + ", ".join(f"{t:.2f}" for t in per))
    lines.append("")
    return "\n".join(lines)


def _row(n: int, metric: str, before: float, after: float, kafka: float | None,
         fmt: str) -> str:
    ratio = f"{after / before:.2g}" if before else "—"
    ref = "—" if kafka is None else fmt.format(kafka)
    return (f"| {n:,} partitions | {metric} | {fmt.format(before)} | {fmt.format(after)} | "
            f"{ratio} | {ref} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("strom", "kafka"), default="strom")
    parser.add_argument("--label", default="run")
    parser.add_argument("--json", type=Path, help="where to write this run's results")
    parser.add_argument("--report", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help=f"write {OUT.relative_to(ROOT)} from two runs' JSON and exit")
    parser.add_argument("--note", action="append", help="a paragraph for the report's method")
    args = parser.parse_args()
    if args.report:
        OUT.write_text(report(*args.report, notes=args.note))
        print(f"wrote {OUT}")
        return
    import subprocess

    import strom

    src = Path(strom.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    result = {"label": args.label, "date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit,
              "strom_src": str(src), "loadavg": os.getloadavg()[0], "machine": machine(),
              **run(args.broker)}
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Broker CPU time per record for produce and consume, one Strom broker.

Throughput on a machine shared by several engineers moves ±30% and more from run to
run (the client and the broker share two cores with whatever else runs); the CPU
seconds the broker process spends per record hardly move, so before/after comparisons
of the hot path (copies on produce and fetch, issue 10) read them here. For each record
size: one topic, confluent-kafka produces ``count`` records (acks=1, as `compare.py`),
then reads them back three times; the broker's utime+stime (``/proc/<pid>/stat``, 10 ms
ticks) is taken around each step, and the client's rate is printed beside it.

``--pin`` runs the broker's threads on CPU 0 and this client's on CPU 1, so that the
rates compare the broker rather than how the scheduler shares two cores between a
faster or slower broker and librdkafka's threads.

    PYTHONPATH=/tmp/before/src python bench/broker_cpu.py   # an export of an older commit
    python bench/broker_cpu.py --pin

Never part of the test suite; about a minute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.compare import (  # noqa: E402
    consume_confluent,
    create_topic,
    produce_confluent,
    start_strom,
)

WORKLOADS = ((100, 500_000), (1024, 300_000), (16384, 20_000))  # (record bytes, records)
READS = 3
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def pin(broker_pid: int) -> None:
    """Broker threads on CPU 0, this process (and the client threads it starts) on 1."""
    for tid in os.listdir(f"/proc/{broker_pid}/task"):
        os.sched_setaffinity(int(tid), {0})
    os.sched_setaffinity(0, {1})


def measure(bootstrap: str, pid: int, size: int, count: int) -> str:
    topic = f"cpu-{size}"
    create_topic(bootstrap, topic)
    before = cpu_seconds(pid)
    rate = produce_confluent(bootstrap, topic, size, count, "1")["records_per_s"]
    cpu = [cpu_seconds(pid) - before]
    rates = [rate]
    for _ in range(READS):
        before = cpu_seconds(pid)
        rates.append(consume_confluent(bootstrap, topic, size, count)["records_per_s"])
        cpu.append(cpu_seconds(pid) - before)
    per_read = " ".join(f"{1e6 * c / count:.2f}" for c in cpu[1:])
    reads = " ".join(f"{r / 1000:,.0f}k" for r in rates[1:])
    return (f"{size:>6} B: produce {1e6 * cpu[0] / count:.2f} µs/record ({rates[0] / 1000:,.0f}k/s),"
            f" consume {per_read} µs/record ({reads}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", action="store_true", help="broker on CPU 0, client on CPU 1")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="strom-broker-cpu-"))
    running = start_strom(work)
    try:
        if args.pin:
            pin(running.pid)
        for size, count in WORKLOADS:
            print(measure(running.bootstrap, running.pid, size, count), flush=True)
    finally:
        running.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

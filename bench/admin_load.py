"""Admin work under load: how long creates take, and what a normal client sees meanwhile.

Standalone (never part of the test suite, never run by compare.py). On a fresh broker:

1. ``1,000 partitions: create``: one topic of 1,000 partitions with confluent-kafka's
   AdminClient, timed until metadata shows every partition led (compare.py's row);
2. one CreateTopics of 1,000 single-partition topics while a second connection loops
   Produce (acks=1, one 100 B record) + Fetch on another topic; prints the create time and
   the produce/fetch round-trip p50/p99/max measured while the create was running;
3. one DeleteTopics of those 1,000 topics under the same probe.

    python bench/admin_load.py [--topics 1000] [--partitions 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.broker_process import BrokerProcess  # noqa: E402
from support.raw_client import RawClient, fetch, produce, record_batch  # noqa: E402


def create_partitions_timed(admin: AdminClient, topic: str, partitions: int) -> float:
    """compare.py's measurement: create, then poll metadata until every partition is led."""
    t0 = time.perf_counter()
    admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=600)[topic].result(600)
    while True:
        md = admin.list_topics(topic, timeout=30).topics.get(topic)
        if (md is not None and md.error is None and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values())):
            return time.perf_counter() - t0
        time.sleep(0.02)


class Probe(threading.Thread):
    """Produce + Fetch round trips on one connection, each timed, until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.client = RawClient(bootstrap, timeout=600)
        self.topic = topic
        self.samples: list[tuple[float, float]] = []  # (start time, round trip seconds)
        self.stop_event = threading.Event()

    def run(self) -> None:
        batch = record_batch([b"x" * 100])
        offset = 0
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            produce(self.client, self.topic, batch)
            t1 = time.perf_counter()
            fetch(self.client, self.topic, offset)
            t2 = time.perf_counter()
            offset += 1
            self.samples += [(t0, t1 - t0), (t1, t2 - t1)]
            time.sleep(0.005)

    def between(self, start: float, end: float) -> list[float]:
        """Round trips that overlapped [start, end] (one stuck across it counts whole)."""
        return [rt for t, rt in self.samples if t <= end and t + rt >= start]


def summary(name: str, elapsed: float, rts: list[float]) -> str:
    if not rts:
        return f"{name}: {elapsed:.2f} s, NO produce/fetch answered meanwhile"
    ms = sorted(r * 1000 for r in rts)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"{name}: {elapsed:.2f} s; {len(ms)} produce/fetch round trips meanwhile: "
            f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")


def timed_under_probe(probe: Probe, work: object) -> tuple[float, list[float]]:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    end = time.perf_counter()
    return end - start, probe.between(start, end)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            took = create_partitions_timed(admin, "wide", args.partitions)
            print(f"{args.partitions:,} partitions: create: {took:.2f} s")
            create_partitions_timed(admin, "probe", 1)
            probe = Probe(broker.bootstrap, "probe")
            probe.start()
            time.sleep(0.5)
            names = [f"t{i:05d}" for i in range(args.topics)]

            def create() -> None:
                futures = admin.create_topics([NewTopic(n, 1, 1) for n in names],
                                              request_timeout=600, operation_timeout=600)
                for f in futures.values():
                    f.result(600)

            def delete() -> None:
                futures = admin.delete_topics(names, request_timeout=600, operation_timeout=600)
                for f in futures.values():
                    f.result(600)

            print(summary(f"CreateTopics of {args.topics:,} topics", *timed_under_probe(probe, create)))
            time.sleep(0.5)
            print(summary(f"DeleteTopics of {args.topics:,} topics", *timed_under_probe(probe, delete)))
            probe.stop_event.set()
            probe.join(30)
            idle = probe.between(0, float("inf"))
            print(summary("all probe samples", 0.0, idle))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()

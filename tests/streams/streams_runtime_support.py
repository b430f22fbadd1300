"""Helpers for the Streams runtime tests: the example apps as child processes, and reading
what they wrote and committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from support.broker_process import wait_until
from support.clients import confluent_consumer, end_offsets

REPO = Path(__file__).resolve().parents[2]


class App:
    """An example script running as its own process (so it can be SIGKILLed)."""

    started: list[App] = []  # every one, for `kill_leftovers` after each test

    def __init__(self, script: str, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "examples" / "streams" / script), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        App.started.append(self)

    @classmethod
    def kill_leftovers(cls) -> None:
        """SIGKILL the apps a failed test left running."""
        for app in cls.started:
            if app.alive():
                app.proc.kill()
                app.proc.wait(30)
        cls.started.clear()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self._log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None


def produce(bootstrap: str, topic: str, records: Iterable[tuple[str | None, str, int | None]]
            ) -> None:
    # keys partitioned as Kafka's Java producer does (murmur2), as Streams expects of its
    # input: librdkafka's default (CRC32) would put a key elsewhere than a repartition does
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "partitioner": "murmur2_random"})
    for key, value, ts in records:
        kwargs: dict[str, Any] = {} if ts is None else {"timestamp": ts}
        producer.produce(topic, value=value.encode(), key=None if key is None else key.encode(),
                         **kwargs)
    assert producer.flush(30) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                   timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def wait_caught_up(bootstrap: str, group: str, topic: str, partitions: int, app: App,
                   timeout: float = 120) -> None:
    """Until the group's committed offsets reach the topic's end (all of it processed,
    its output flushed)."""
    ends = end_offsets(bootstrap, topic, range(partitions))

    def done() -> bool:
        assert app.alive(), f"the app died:\n{app.log_text()}"
        got = committed(bootstrap, group, topic, partitions)
        return all(end == 0 or got.get(p, -1) >= end for p, end in ends.items())

    wait_until(done, timeout, f"{group} caught up on {topic}", interval=0.3,
               detail=lambda: f"{committed(bootstrap, group, topic, partitions)} vs {ends}")


def read_all(bootstrap: str, topic: str, partitions: int, *, committed_only: bool = False
             ) -> list[tuple[str, str]]:
    """Every record of the topic, per partition in offset order (`committed_only`: as a
    read_committed consumer sees it)."""
    ends = end_offsets(bootstrap, topic, range(partitions))
    found: list[tuple[str, str]] = []
    isolation = "read_committed" if committed_only else "read_uncommitted"
    with confluent_consumer(bootstrap, **{"isolation.level": isolation}) as consumer:
        tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
        consumer.assign(tps)
        deadline = time.monotonic() + 60
        while True:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    found.append((msg.key().decode(), msg.value().decode()))
            positions = {tp.partition: tp.offset for tp in consumer.position(tps)}
            if all(positions[p] >= end for p, end in ends.items() if end > 0):
                return found
            assert time.monotonic() < deadline, f"could not read {topic} to {ends}: {positions}"


def latest(records: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in records:
        result[key] = value
    return result


def latest_json(records: list[tuple[str, str]], *fields: str) -> dict[tuple[Any, ...], Any]:
    result: dict[tuple[Any, ...], Any] = {}
    for _, value in records:
        doc = json.loads(value)
        result[tuple(doc[f] for f in fields)] = doc
    return result

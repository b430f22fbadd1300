"""`strom cluster up`: a local ZooKeeper and three brokers that work, then stop on SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.broker_process import free_port, wait_for_port

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]


def test_cluster_up_serves_replicated_topics_and_stops_cleanly(tmp_path: Path) -> None:
    zk, first = free_port(), free_port()
    ports = [first, first + 1, first + 2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "cluster", "up", "--dir", str(tmp_path / "c"),
         "--zookeeper-port", str(zk), "--first-port", str(first)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        for port in ports:
            wait_for_port(port, 60)
        bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
        deadline = time.monotonic() + 60
        info: dict[str, object] = {}
        while time.monotonic() < deadline:
            out = subprocess.run([sys.executable, "-m", "strom", "cluster", "info", "-b", bootstrap,
                                  "--format", "json"], capture_output=True, text=True)
            if out.returncode == 0:
                info = json.loads(out.stdout)
                if len(info["brokers"]) == 3:  # type: ignore[arg-type]
                    break
            time.sleep(0.5)
        assert sorted(b["id"] for b in info["brokers"]) == [1, 2, 3]  # type: ignore[union-attr]
        created = subprocess.run([sys.executable, "-m", "strom", "topic", "create", "up-t", "-p", "2",
                                  "-r", "3", "-b", bootstrap], capture_output=True, text=True)
        assert created.returncode == 0, created.stdout + created.stderr
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(100):
            producer.produce("up-t", str(i).encode(), partition=i % 2)
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "up-check"})
        consumer.assign([TopicPartition("up-t", p, 0) for p in (0, 1)])
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 100 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.add(int(msg.value()))
        consumer.close()
        assert seen == set(range(100))
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=90)[0].decode()
    assert proc.returncode == 0, output
    assert "3 broker(s)" in output

"""Exactly-once source (KIP-618) in Strom Connect's distributed mode, on a real Strom
broker with transactions: two worker processes with exactly.once.source.support=enabled;
a FileStreamSource task writes each poll's lines and its file position in one transaction;
the worker running it is SIGKILLed mid-stream (mid-transaction, most likely), the task
moves, its new producer fences the old one, and a read_committed consumer sees every line
exactly once and in order. Without transactions the task would resume from the offsets
flushed up to 5 s earlier and write those lines twice."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from connect_support import read_topic, wait_for, write_properties

from strom.testing import StromBroker, free_port

pytestmark = pytest.mark.slow


def start_worker(tmp: Path, name: str, bootstrap: str, port: int, group: str,
                 extra: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
    worker = write_properties(tmp / f"{name}.properties", {
        "bootstrap.servers": bootstrap, "group.id": group,
        "config.storage.topic": f"{group}-configs", "offset.storage.topic": f"{group}-offsets",
        "status.storage.topic": f"{group}-status",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "config.storage.replication.factor": 1, "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1, "offset.storage.partitions": 5,
        "offset.flush.interval.ms": 5000, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
        "scheduled.rebalance.max.delay.ms": 0, "listeners": f"http://127.0.0.1:{port}",
        "exactly.once.source.support": "enabled", "consumer.isolation.level": "read_committed",
        **(extra or {})})
    log = open(tmp / f"{name}.log", "ab")  # noqa: SIM115 - the child writes it until it exits
    command = [sys.executable, "-m", "strom.cli.main", "connect", "distributed", str(worker)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def answers(client: httpx.Client) -> bool:
    try:
        return client.get("/connectors").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def eos_cluster(tmp_path: Path, strom_broker: StromBroker) -> Iterator[dict[str, Any]]:
    with workers(tmp_path, strom_broker.bootstrap_servers) as cluster:
        yield cluster


@contextlib.contextmanager
def workers(tmp_path: Path, bootstrap: str, count: int = 2, prefix: str = "eos",
            extra: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """`count` exactly-once worker processes (w1, w2, ...) of one new group on
    `bootstrap`, `extra` added to their worker properties."""
    group = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ports = {f"w{i}": free_port() for i in range(1, count + 1)}
    procs = {name: start_worker(tmp_path, name, bootstrap, port, group, extra)
             for name, port in ports.items()}
    clients = {name: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
               for name, port in ports.items()}
    try:
        for client in clients.values():
            wait_for(lambda c=client: answers(c), "a worker's REST API", timeout=60)
        yield {"procs": procs, "clients": clients, "ports": ports, "group": group}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=90)


def committed_values(bootstrap: str, topic: str) -> list[str]:
    """Every committed record of a one-partition topic, read with read_committed up to
    its last stable offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        found: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:  # end of partition (the last stable offset)
                if consumer.position([TopicPartition(topic, 0)])[0].offset >= end:
                    break
                continue
            found.append((message.value() or b"").decode())
        return found
    finally:
        consumer.close()


def source_owner(client: httpx.Client, name: str) -> str | None:
    status = client.get(f"/connectors/{name}/status").json()
    tasks = status.get("tasks") or []
    return tasks[0]["worker_id"] if tasks and tasks[0]["state"] == "RUNNING" else None


def append_lines(path: Path, start: int, stop: int, pause_s: float) -> None:
    for first in range(start, stop, 100):
        with path.open("a", encoding="utf-8") as out:
            out.write("".join(f"line-{i}\n" for i in range(first, min(first + 100, stop))))
        time.sleep(pause_s)


def test_a_killed_source_worker_leaves_every_line_exactly_once(
        tmp_path: Path, strom_broker: StromBroker, eos_cluster: dict[str, Any]) -> None:
    kill_mid_stream(tmp_path, strom_broker.bootstrap_servers, eos_cluster)


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the answer arrives
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def kill_mid_stream(tmp_path: Path, bootstrap: str, cluster: dict[str, Any]) -> None:
    """Lines appended to a file while its source task runs; the task's worker SIGKILLed;
    at the end every line is in the topic once and in order (read_committed)."""
    total, topic, name = 6000, f"{cluster['group']}-lines", "eos-source"
    create_topic(bootstrap, topic)
    source_file = tmp_path / "in.txt"
    append_lines(source_file, 0, 1000, 0)
    w1 = cluster["clients"]["w1"]
    config = {"connector.class": "FileStreamSource", "file": str(source_file), "topic": topic,
              "batch.size": "50", "exactly.once.support": "required", "transaction.boundary": "poll"}
    assert w1.put(f"/connectors/{name}/config", json=config).status_code == 201
    # bounds, not timings: a loaded machine takes 6-12 s to apply one assignment
    owner = wait_for(lambda: source_owner(w1, name), "the source task running", 180)
    wait_for(lambda: len(committed_values(bootstrap, topic)) >= 500, "the first lines committed",
             180)

    writer = threading.Thread(target=append_lines, args=(source_file, 1000, total, 0.05))
    writer.start()
    time.sleep(1)  # lines flowing, transactions open and closing
    victim = next(n for n, p in cluster["ports"].items() if owner == f"127.0.0.1:{p}")
    survivor = next(n for n in cluster["ports"] if n != victim)
    cluster["procs"][victim].send_signal(signal.SIGKILL)
    cluster["procs"][victim].wait(timeout=30)
    writer.join()

    alive = cluster["clients"][survivor]
    wait_for(lambda: source_owner(alive, name) == f"127.0.0.1:{cluster['ports'][survivor]}",
             "the task on the surviving worker", 240)
    wait_for(lambda: len(committed_values(bootstrap, topic)) >= total, "every line committed", 240)
    values = committed_values(bootstrap, topic)
    assert values == [f"line-{i}" for i in range(total)]  # each once, in order

    # the fencing round's marker and the task's offsets, in Kafka's formats
    records = read_topic(bootstrap, f"{cluster['group']}-configs", 50, timeout=10)
    counts = [json.loads(r.value()) for r in records if r.key() == f"tasks-count-{name}".encode()]
    assert counts and counts[-1] == {"task-count": 1}
    offsets = alive.get(f"/connectors/{name}/offsets").json()["offsets"]
    assert offsets == [{"partition": {"filename": str(source_file)},
                        "offset": {"position": source_file.stat().st_size}}]


def test_exactly_once_config_is_checked_and_fencing_is_signed(eos_cluster: dict[str, Any]) -> None:
    w1 = eos_cluster["clients"]["w1"]
    generator = {"connector.class": "strom.connect.connectors.generator.OrderGeneratorSourceConnector",
                 "topic": "eos-orders", "exactly.once.support": "required"}
    answer = w1.put("/connectors/eos-generator/config", json=generator)
    assert answer.status_code == 400
    assert "does not implement the API required for preflight validation of exactly-once" in \
        answer.json()["message"]
    validated = w1.put("/connector-plugins/FileStreamSource/config/validate", json={
        "name": "eos-check", "connector.class": "FileStreamSource", "file": "x", "topic": "t",
        "transaction.boundary": "connector"})
    errors = {c["value"]["name"]: c["value"]["errors"] for c in validated.json()["configs"]}
    assert errors["transaction.boundary"] and validated.json()["error_count"] == 1

    file_source = {"connector.class": "FileStreamSource", "file": "/dev/null", "topic": "eos-null"}
    assert w1.put("/connectors/eos-null/config", json=file_source).status_code == 201
    answer = w1.put("/connectors/eos-null/fence", content=b"",
                    headers={"X-Connect-Authorization": "AAAA",
                             "X-Connect-Request-Signature-Algorithm": "HmacSHA256"})
    assert answer.status_code == 403

"""`strom connect distributed`: two worker processes share a Connect cluster on a real
Strom broker; a file flows source -> topic -> sink with the work divided between them;
one worker is SIGKILLed, its connector and task move to the other, and no line is lost
(at-least-once: duplicates are allowed)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from connect_support import lines, wait_for, write_properties

from strom.testing import StromBroker, free_port

pytestmark = pytest.mark.slow
TOPICS = {"config.storage.topic": "dist-configs", "offset.storage.topic": "dist-offsets",
          "status.storage.topic": "dist-status"}


def start_worker(tmp: Path, name: str, bootstrap: str, port: int) -> subprocess.Popen[bytes]:
    worker = write_properties(tmp / f"{name}.properties", {
        "bootstrap.servers": bootstrap, "group.id": "dist-cluster", **TOPICS,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "config.storage.replication.factor": 1, "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1, "offset.storage.partitions": 5,
        "offset.flush.interval.ms": 500, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
        "scheduled.rebalance.max.delay.ms": 0, "listeners": f"http://127.0.0.1:{port}"})
    log = open(tmp / f"{name}.log", "ab")  # noqa: SIM115 - the child writes it until it exits
    command = [sys.executable, "-m", "strom.cli.main", "connect", "distributed", str(worker)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def cluster(tmp_path: Path, strom_broker: StromBroker) -> Iterator[dict[str, Any]]:
    ports = {"w1": free_port(), "w2": free_port()}
    procs = {name: start_worker(tmp_path, name, strom_broker.bootstrap_servers, port)
             for name, port in ports.items()}
    clients = {name: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
               for name, port in ports.items()}
    try:
        for client in clients.values():
            wait_for(lambda c=client: _answers(c), "a worker's REST API", timeout=60)
        yield {"procs": procs, "clients": clients, "ports": ports}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=90)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/connectors").status_code == 200
    except httpx.TransportError:
        return False


def states(client: httpx.Client, name: str) -> list[tuple[str, str]]:
    status = client.get(f"/connectors/{name}/status").json()
    if "connector" not in status:
        return []
    parts = [status["connector"], *status["tasks"]]
    return [(p["state"], p["worker_id"]) for p in parts] if status["tasks"] else []


def test_work_is_shared_and_moves_when_a_worker_dies(tmp_path: Path, strom_broker: StromBroker,
                                                      cluster: dict[str, Any]) -> None:
    strom_broker.create_topic("dist-lines", partitions=2)
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    source_file.write_text("".join(f"line-{i}\n" for i in range(200)), encoding="utf-8")
    w1, w2 = cluster["clients"]["w1"], cluster["clients"]["w2"]
    source = {"connector.class": "FileStreamSource", "file": str(source_file), "topic": "dist-lines"}
    sink = {"connector.class": "FileStreamSink", "file": str(sink_file), "topics": "dist-lines"}
    assert w1.put("/connectors/dist-source/config", json=source).status_code == 201
    assert w2.put("/connectors/dist-sink/config", json=sink).status_code == 201
    assert w2.get("/connectors").json() == ["dist-sink", "dist-source"]  # one cluster, one config
    wait_for(lambda: len(set(lines(sink_file))) >= 200, "the first 200 lines through both connectors", 90)

    def running_on() -> set[str]:
        found = [s for name in ("dist-source", "dist-sink") for s in states(w1, name)]
        return {worker for state, worker in found} if found and all(s == "RUNNING" for s, _ in found) \
            else set()

    workers = wait_for(running_on, "everything running")
    assert workers == {f"127.0.0.1:{port}" for port in cluster["ports"].values()}  # the work is shared

    cluster["procs"]["w2"].send_signal(signal.SIGKILL)
    cluster["procs"]["w2"].wait(timeout=30)
    with source_file.open("a", encoding="utf-8") as more:
        more.write("".join(f"line-{i}\n" for i in range(200, 300)))
    survivor = {f"127.0.0.1:{cluster['ports']['w1']}"}
    wait_for(lambda: running_on() == survivor, "all work on the surviving worker", 90)
    wait_for(lambda: len(set(lines(sink_file))) >= 300, "all 300 lines after the failover", 90)
    assert set(lines(sink_file)) == {f"line-{i}" for i in range(300)}  # nothing lost

"""One Connect cluster of two implementations: an Apache Kafka Connect 4.4 worker (Java)
and a Strom Connect worker share a group, its three topics and the `sessioned` protocol.
Connectors created on either worker are forwarded to whichever is the leader, the work is
divided between the two, and the follower's task configs reach the leader in requests
signed with the leader's session key, Java verifying Strom's signature or Strom Java's.
What the runtimes cannot share is a task: task configs name the task class of the runtime
whose connector wrote them (a JVM cannot load a Python class), so the test checks
connectors and task configs, not task states. Real broker, real JVM, real HTTP."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from connect_oracle import compile_conformance_connectors, kafka_connect_command, running_kafka_connect
from connect_support import wait_for, write_properties
from test_connect_distributed_forwarding import RunningWorker, start_worker

from strom.testing import StromBroker, free_port

pytestmark = [pytest.mark.interop, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")]
CONVERTERS = {"key.converter": "org.apache.kafka.connect.storage.StringConverter",
              "value.converter": "org.apache.kafka.connect.storage.StringConverter"}


@pytest.fixture
def mixed(tmp_path: Path, strom_broker: StromBroker) -> Iterator[dict[str, Any]]:
    suffix = uuid.uuid4().hex[:8]
    group = f"mixed-{suffix}"
    topics = {"config.storage.topic": f"{group}-configs", "offset.storage.topic": f"{group}-offsets",
              "status.storage.topic": f"{group}-status"}
    classes = compile_conformance_connectors(tmp_path / "classes")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(Path(__file__).parent / "conformance_plugins.py", plugins / "conformance_plugins.py")
    port = free_port()
    java_props = write_properties(tmp_path / "java-worker.properties", {
        "bootstrap.servers": strom_broker.bootstrap_servers, "group.id": group, **topics, **CONVERTERS,
        "config.storage.replication.factor": 1, "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1, "offset.storage.partitions": 3,
        "status.storage.partitions": 3, "offset.flush.interval.ms": 500,
        "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000, "scheduled.rebalance.max.delay.ms": 0,
        "listeners": f"http://127.0.0.1:{port}", "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": port})
    with running_kafka_connect(kafka_connect_command("ConnectDistributed", java_props, classes), port,
                               tmp_path / "java-worker.log") as java:
        strom = start_worker(strom_broker.bootstrap_servers, group, topics, {"plugin.path": str(plugins)})
        try:
            yield {"java": java, "strom": strom, "java_id": f"127.0.0.1:{port}"}
        finally:
            strom.server.should_exit = True
            strom.thread.join(30)
            strom.client.close()
            strom.herder.stop()


def _connector_on(client: httpx.Client, name: str) -> str | None:
    """The worker running the connector once it runs and has its task configs."""
    answer = client.get(f"/connectors/{name}/status")
    if answer.status_code != 200:
        return None
    status = answer.json()
    running = status["connector"]["state"] == "RUNNING" and status["tasks"]
    return str(status["connector"]["worker_id"]) if running else None


def _tasks(client: httpx.Client, name: str) -> list[dict[str, str]]:
    return [{k: v for k, v in t["config"].items() if k != "task.class"}
            for t in client.get(f"/connectors/{name}/tasks").json()]


def test_a_java_worker_and_a_strom_worker_share_one_cluster(mixed: dict[str, Any]) -> None:
    java, strom = mixed["java"], mixed["strom"]
    worker: RunningWorker = strom
    wait_for(lambda: worker.herder.joined.is_set() and worker.herder.leader_url
             and not worker.herder.rejoin_needed, "the Strom worker in the group", 90)
    names = [f"mixed-{i}" for i in range(4)]
    for number, name in enumerate(names):
        client = java if number % 2 == 0 else strom.client
        config = {"connector.class": "CountingSource", "topic": f"mixed-count-{number}"}
        answer = client.put(f"/connectors/{name}/config", json=config)
        assert answer.status_code == 201, answer.text

    # connectors run on both workers, and each has its task configs: those of the
    # follower's connectors reached the leader in a signed request across runtimes
    both = {mixed["java_id"], worker.herder.worker_id}

    def shared() -> bool:
        owners = [_connector_on(java, n) for n in names]
        return None not in owners and set(owners) == both
    wait_for(shared, "every connector running with its tasks, on both workers", 120)
    assert java.get("/connectors").json() == sorted(names) == strom.client.get("/connectors").json()
    for name in names:  # task.class names the runtime's own class: Java's or Python's
        wait_for(lambda n=name: _tasks(java, n) == _tasks(strom.client, n) == [
            {"connector.class": "CountingSource", "name": n, "topic": f"mixed-count-{n[-1]}"}],
            f"the same task configs of {name} on both workers", 60)
    assert worker.herder.configs.session_key is not None

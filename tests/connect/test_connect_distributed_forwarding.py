"""Distributed mode, three workers: config writes made on any worker are forwarded to the
leader, every worker answers the same, task configs reach the config topic only through
the leader in requests signed with the session key (KIP-507), and a request with a bad
signature is refused with Kafka's 403. Real broker, real workers (in this process, each
with its REST API on loopback TCP), real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from connect_support import read_topic, wait_for

from strom.testing import StromBroker, free_port

pytestmark = pytest.mark.slow


@dataclass
class RunningWorker:
    herder: Any
    server: Any
    thread: threading.Thread
    client: httpx.Client
    url: str


def start_worker(bootstrap: str, group: str, topics: dict[str, str],
                 extra: dict[str, str] | None = None) -> RunningWorker:
    import uvicorn

    from strom.connect.rest.app import build_app
    from strom.connect.runtime.distributed.run import build
    from strom.connect.runtime.standalone import RestServer

    port = free_port()
    distributed = build({
        "bootstrap.servers": bootstrap, "group.id": group, **topics,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "config.storage.replication.factor": 1, "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1, "offset.storage.partitions": 3,
        "status.storage.partitions": 3, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
        "scheduled.rebalance.max.delay.ms": 0, "listeners": f"http://127.0.0.1:{port}", **(extra or {})})
    distributed.herder.start()
    server = RestServer(uvicorn.Config(build_app(distributed.herder), host="127.0.0.1", port=port,
                                       log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "a worker's REST server")
    url = f"http://127.0.0.1:{port}"
    return RunningWorker(distributed.herder, server, thread, httpx.Client(base_url=url, timeout=60), url)


@pytest.fixture
def workers(strom_broker: StromBroker) -> Iterator[list[RunningWorker]]:
    suffix = uuid.uuid4().hex[:8]
    topics = {"config.storage.topic": f"fwd-configs-{suffix}",
              "offset.storage.topic": f"fwd-offsets-{suffix}",
              "status.storage.topic": f"fwd-status-{suffix}"}
    started: list[RunningWorker] = []
    try:
        for _ in range(3):
            started.append(start_worker(strom_broker.bootstrap_servers, f"fwd-{suffix}", topics))
        wait_for(lambda: _stable(started), "three workers in one generation with one leader", 90)
        yield started
    finally:
        for worker in started:
            worker.server.should_exit = True
            worker.thread.join(30)
            worker.client.close()
        for worker in started:
            worker.herder.stop()


def _stable(workers: list[RunningWorker]) -> bool:
    herders = [w.herder for w in workers]
    generations = {h.generation for h in herders}
    leaders = [h for h in herders if h.is_leader()]
    return len(generations) == 1 and len(leaders) == 1 and all(
        h.joined.is_set() and not h.rejoin_needed and h.configs.session_key for h in herders)


def _leader(workers: list[RunningWorker]) -> RunningWorker:
    return next(w for w in workers if w.herder.is_leader())


def _followers(workers: list[RunningWorker]) -> list[RunningWorker]:
    return [w for w in workers if not w.herder.is_leader()]


def _same_everywhere(workers: list[RunningWorker], path: str) -> Any:
    """The answer every worker gives to GET `path`, once they all give the same one."""
    def agreed() -> Any:
        answers = [w.client.get(path) for w in workers]
        bodies = [(a.status_code, a.json()) for a in answers]
        return bodies[0] if all(b == bodies[0] for b in bodies) else None
    return wait_for(agreed, f"every worker to answer the same to GET {path}", 60)


def _states(worker: RunningWorker, name: str) -> list[str]:
    status = worker.client.get(f"/connectors/{name}/status").json()
    return [status["connector"]["state"], *(t["state"] for t in status.get("tasks", []))] \
        if status.get("tasks") else []


def test_writes_on_any_worker_reach_the_leader_and_every_worker_agrees(
        tmp_path: Path, workers: list[RunningWorker]) -> None:
    leader, (first, second) = _leader(workers), _followers(workers)
    names = [f"fwd-source-{i}" for i in range(3)]
    for number, (name, worker) in enumerate(zip(names, [first, second, leader], strict=True)):
        source = tmp_path / f"in-{number}.txt"
        source.write_text("a\nb\n", encoding="utf-8")
        config = {"connector.class": "FileStreamSource", "file": str(source), "topic": f"fwd-lines-{number}"}
        answer = worker.client.post("/connectors", json={"name": name, "config": config})
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == name
    assert first.client.post("/connectors", json={"name": names[0], "config": {
        "connector.class": "FileStreamSource", "file": "x", "topic": "t"}}).status_code == 409

    assert _same_everywhere(workers, "/connectors") == (200, sorted(names))
    # each worker runs one connector (round robin over three), and every connector got its
    # task: followers' task configs went to the leader in signed requests
    for name in names:
        wait_for(lambda n=name: _states(leader, n) == ["RUNNING", "RUNNING"], f"{name} running", 60)
        status, info = _same_everywhere(workers, f"/connectors/{name}")
        assert status == 200 and info["tasks"] == [{"connector": name, "task": 0}]
    owners = {leader.client.get(f"/connectors/{n}/status").json()["connector"]["worker_id"] for n in names}
    assert len(owners) == 3

    assert second.client.put(f"/connectors/{names[0]}/pause").status_code == 202
    wait_for(lambda: _states(first, names[0]) == ["PAUSED", "PAUSED"], "the connector paused", 60)
    assert first.client.put(f"/connectors/{names[0]}/resume").status_code == 202
    wait_for(lambda: _states(second, names[0]) == ["RUNNING", "RUNNING"], "the connector resumed", 60)
    answer = second.client.put(f"/connectors/{names[1]}/config", json={
        "connector.class": "FileStreamSource", "file": str(tmp_path / "in-1.txt"), "topic": "fwd-other"})
    assert answer.status_code == 200
    assert _same_everywhere(workers, f"/connectors/{names[1]}/config")[1]["topic"] == "fwd-other"
    assert first.client.put(f"/connectors/{names[2]}/stop").status_code == 204
    assert _same_everywhere(workers, f"/connectors/{names[2]}/tasks") == (200, [])
    assert first.client.delete(f"/connectors/{names[2]}").status_code == 204
    assert _same_everywhere(workers, "/connectors") == (200, sorted(names[:2]))


def test_a_request_forwarded_twice_already_is_a_conflict(workers: list[RunningWorker]) -> None:
    follower = _followers(workers)[0]
    answer = follower.client.post("/connectors?forward=false", json={"name": "fwd-conflict", "config": {
        "connector.class": "FileStreamSource", "file": "/dev/null", "topic": "fwd-conflict"}})
    assert answer.status_code == 409
    assert answer.json() == {"error_code": 409, "message": "Cannot complete request because of a "
                             "conflicting operation (e.g. worker rebalance)"}


def test_task_configs_need_the_session_keys_signature(strom_broker: StromBroker,
                                                      workers: list[RunningWorker], tmp_path: Path) -> None:
    leader, follower = _leader(workers), _followers(workers)[0]
    name = "fwd-signed"
    config = {"connector.class": "FileStreamSource", "file": str(tmp_path / "none.txt"),
              "topic": "fwd-signed"}
    assert follower.client.put(f"/connectors/{name}/config", json=config).status_code == 201
    wait_for(lambda: _states(leader, name) == ["RUNNING", "RUNNING"], "the connector running", 60)

    # the session key as Kafka's config topic holds it
    config_topic = leader.herder.config_log.topic
    records = read_topic(strom_broker.bootstrap_servers, config_topic, 100, timeout=10)
    keys = [json.loads(r.value()) for r in records if r.key() == b"session-key"]
    assert keys and set(keys[-1]) == {"key", "algorithm", "creation-timestamp"}
    assert keys[-1]["algorithm"] == "HmacSHA256"
    key = base64.b64decode(keys[-1]["key"])
    assert len(key) == 32

    body = json.dumps([{"file": "/tmp/forged", "topic": "fwd-signed", "task.class": "x"}]).encode()
    forged = base64.b64encode(hmac.new(b"not the key", body, hashlib.sha256).digest()).decode()
    headers = {"Content-Type": "application/json", "X-Connect-Request-Signature-Algorithm": "HmacSHA256"}
    for worker in (leader, follower):
        answer = worker.client.post(f"/connectors/{name}/tasks", content=body,
                                   headers={**headers, "X-Connect-Authorization": forged})
        assert answer.status_code == 403
        assert answer.json() == {"error_code": 403,
                                 "message": "Internal request contained invalid signature."}
        answer = worker.client.post(f"/connectors/{name}/tasks", content=body,
                                   headers={"Content-Type": "application/json"})
        assert answer.status_code == 400
        assert answer.json()["message"] == "Internal request missing required signature"
    assert _same_everywhere(workers, f"/connectors/{name}/tasks")[1][0]["config"]["file"] == config["file"]

    # signed with the real key, through a follower: the leader writes the new task set
    signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    answer = follower.client.post(f"/connectors/{name}/tasks", content=body,
                                 headers={**headers, "X-Connect-Authorization": signature})
    assert answer.status_code == 204, answer.text

    def forged_everywhere() -> bool:
        answers = [w.client.get(f"/connectors/{name}/tasks").json() for w in workers]
        return all([t["config"]["file"] for t in a] == ["/tmp/forged"] for a in answers)
    wait_for(forged_everywhere, "the signed task configs on every worker", 60)


def test_a_compatible_worker_makes_the_group_compatible_and_unsigned(
        strom_broker: StromBroker, tmp_path: Path) -> None:
    """`sessioned` also offers `compatible` (as Kafka's workers do): with a worker that
    speaks only `compatible`, the group picks it, and internal requests are not signed."""
    suffix = uuid.uuid4().hex[:8]
    topics = {"config.storage.topic": f"cmp-configs-{suffix}",
              "offset.storage.topic": f"cmp-offsets-{suffix}",
              "status.storage.topic": f"cmp-status-{suffix}"}
    started = [start_worker(strom_broker.bootstrap_servers, f"cmp-{suffix}", topics),
               start_worker(strom_broker.bootstrap_servers, f"cmp-{suffix}", topics,
                            {"connect.protocol": "compatible"})]
    try:
        def stable() -> bool:
            herders = [w.herder for w in started]
            return len({h.generation for h in herders}) == 1 and sum(h.is_leader() for h in herders) == 1 \
                and all(h.joined.is_set() and not h.rejoin_needed for h in herders)
        wait_for(stable, "two workers in one generation", 90)
        assert [w.herder.protocol for w in started] == ["compatible", "compatible"]
        follower = _followers(started)[0]
        for number in range(2):
            config = {"connector.class": "FileStreamSource", "file": str(tmp_path / "none.txt"),
                      "topic": f"cmp-{number}"}
            assert follower.client.put(f"/connectors/cmp-{number}/config", json=config).status_code == 201
        for number in range(2):  # one connector per worker: the follower's tasks reach the leader unsigned
            wait_for(lambda n=number: _states(started[0], f"cmp-{n}") == ["RUNNING", "RUNNING"],
                     "the connector running", 60)
        body = json.dumps([{"file": "/tmp/unsigned", "topic": "cmp-0"}]).encode()
        answer = follower.client.post("/connectors/cmp-0/tasks", content=body,
                                     headers={"Content-Type": "application/json"})
        assert answer.status_code == 204, answer.text
    finally:
        for worker in started:
            worker.server.should_exit = True
            worker.thread.join(30)
            worker.client.close()
        for worker in started:
            worker.herder.stop()

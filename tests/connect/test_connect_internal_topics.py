"""Kafka Connect's internal topics shared with a Java worker: Apache Kafka Connect 4.4 in
distributed mode writes configs, statuses and offsets to a Strom broker; Strom Connect's
readers fold them into the same state Kafka's REST API reports, and what Strom writes
(a connector config, a target state, a source offset) is picked up by the Java worker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
from connect_oracle import compile_conformance_connectors, kafka_connect_command, running_kafka_connect
from connect_support import CONVERTERS, wait_for, write_properties

from strom.client import KafkaClients
from strom.client.group_member import GroupMember
from strom.connect.runtime.distributed.kafka_log import KafkaBasedLog
from strom.connect.runtime.distributed.protocol import WorkerState, decode_assignment, encode_metadata
from strom.connect.runtime.distributed.records import (
    ConfigState,
    StatusState,
    connector_config_record,
    target_state_record,
)
from strom.connect.runtime.distributed.topic_offsets import TopicOffsetStore
from strom.connect.runtime.offsets import key_text
from strom.connect.runtime.status import State, TargetState
from strom.testing import StromBroker, free_port

pytestmark = [pytest.mark.interop, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")]
TOPICS = {"config.storage.topic": "itopics-configs", "offset.storage.topic": "itopics-offsets",
          "status.storage.topic": "itopics-status"}


@pytest.fixture(scope="module")
def kafka_connect(tmp_path_factory: pytest.TempPathFactory,
                  strom_broker: StromBroker) -> Iterator[httpx.Client]:
    work = tmp_path_factory.mktemp("kafka-connect-distributed")
    classes = compile_conformance_connectors(work / "classes")
    port = free_port()
    worker = write_properties(work / "worker.properties", {
        "bootstrap.servers": strom_broker.bootstrap_servers, **CONVERTERS, **TOPICS,
        "group.id": "itopics-cluster", "config.storage.replication.factor": 1,
        "offset.storage.replication.factor": 1, "status.storage.replication.factor": 1,
        "offset.flush.interval.ms": 200, "listeners": f"http://127.0.0.1:{port}"})
    with running_kafka_connect(kafka_connect_command("ConnectDistributed", worker, classes), port,
                               work / "connect.log") as client:
        yield client


@pytest.fixture
def clients(strom_broker: StromBroker) -> KafkaClients:
    return KafkaClients(strom_broker.bootstrap_servers)


def running(client: httpx.Client, name: str, state: str = "RUNNING") -> bool:
    response = client.get(f"/connectors/{name}/status")
    if response.status_code != 200:
        return False
    status = response.json()
    return status["connector"]["state"] == state and all(t["state"] == state for t in status["tasks"])


def test_strom_reads_what_kafka_connect_wrote(kafka_connect: httpx.Client, clients: KafkaClients) -> None:
    config = {"connector.class": "CountingSource", "topic": "itopics-count"}
    assert kafka_connect.put("/connectors/counted/config", json=config).status_code == 201
    wait_for(lambda: running(kafka_connect, "counted"), "the Java connector running")
    wait_for(lambda: kafka_connect.get("/connectors/counted/topics").json()["counted"]["topics"],
             "the Java connector's first record")
    kafka_connect.put("/connectors/counted/pause")
    wait_for(lambda: running(kafka_connect, "counted", "PAUSED"), "the Java connector paused")

    configs = ConfigState()
    log = KafkaBasedLog(clients, TOPICS["config.storage.topic"], lambda k, v, p, o: configs.apply(k, v, o))
    log.start()
    log.stop()
    assert configs.connectors["counted"] == {**config, "name": "counted"}
    assert configs.target_states["counted"] is TargetState.PAUSED
    tasks = kafka_connect.get("/connectors/counted/tasks").json()
    assert configs.tasks["counted"] == [t["config"] for t in tasks]

    statuses = StatusState()
    status_log = KafkaBasedLog(clients, TOPICS["status.storage.topic"],
                               lambda k, v, p, o: statuses.apply(k, v, o), partitions=5)
    status_log.start()
    status_log.stop()
    worker = kafka_connect.get("/connectors/counted/status").json()["connector"]["worker_id"]
    assert statuses.connectors["counted"].state is State.PAUSED
    assert statuses.connectors["counted"].worker_id == worker
    assert statuses.tasks[("counted", 0)].state is State.PAUSED
    assert statuses.topics["counted"] == {"itopics-count"}

    store = TopicOffsetStore(clients, TOPICS["offset.storage.topic"])
    store.start()
    store.stop()
    expected = kafka_connect.get("/connectors/counted/offsets").json()["offsets"]
    assert [{"partition": p, "offset": o} for p, o in store.entries("counted")] == expected


def test_kafka_connect_reads_what_strom_wrote(kafka_connect: httpx.Client, clients: KafkaClients) -> None:
    kafka_connect.put("/connectors/shared/config", json={"connector.class": "CountingSource",
                                                         "topic": "itopics-shared"})
    wait_for(lambda: running(kafka_connect, "shared"), "the Java connector running")
    kafka_connect.put("/connectors/shared/stop")
    wait_for(lambda: running(kafka_connect, "shared", "STOPPED"), "the Java connector stopped")

    store = TopicOffsetStore(clients, TOPICS["offset.storage.topic"])
    store.start()
    partition = {"source": "count"}
    store.put("shared", {key_text("shared", partition): (partition, {"n": 5000})})
    store.stop()
    wait_for(lambda: kafka_connect.get("/connectors/shared/offsets").json()["offsets"]
             == [{"partition": partition, "offset": {"n": 5000}}], "Kafka Connect reading Strom's offset")

    log = KafkaBasedLog(clients, TOPICS["config.storage.topic"], lambda *record: None)
    log.start()
    log.send(*target_state_record("from-strom", TargetState.STARTED))
    log.send(*connector_config_record("from-strom", {"connector.class": "CountingSource",
                                                     "topic": "itopics-from-strom", "name": "from-strom"}))
    log.flush()
    log.stop()
    wait_for(lambda: running(kafka_connect, "from-strom"), "Kafka Connect running Strom's connector config")


def test_a_strom_member_joins_kafka_connects_group(kafka_connect: httpx.Client, clients: KafkaClients,
                                                   strom_broker: StromBroker) -> None:
    """The Java worker leads; Strom's member offers `sessioned` metadata and decodes the
    incremental cooperative assignment the Java leader computes for it."""
    configs = ConfigState()
    log = KafkaBasedLog(clients, TOPICS["config.storage.topic"], lambda k, v, p, o: configs.apply(k, v, o))
    log.start()
    log.stop()
    metadata = encode_metadata(WorkerState(2, "http://127.0.0.1:1/", configs.offset))
    member = GroupMember(strom_broker.bootstrap_servers, "itopics-cluster", rebalance_timeout_ms=60_000)
    try:
        joined = member.join([("sessioned", metadata)], lambda protocol, members: {})
        assignment = decode_assignment(joined.assignment)
        java_url = str(kafka_connect.base_url).rstrip("/") + "/"
        assert (joined.protocol, joined.is_leader) == ("sessioned", False)
        assert (assignment.version, assignment.error) == (2, 0)
        assert assignment.leader_url == java_url
        assert assignment.config_offset == configs.offset
    finally:
        member.leave()
        member.close()

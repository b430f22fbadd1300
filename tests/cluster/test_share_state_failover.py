"""Share-partition state (KIP-932) lives in the replicated `__share_group_state` topic,
kept by the share coordinator, not on the partition leader's disk (three brokers on
ZooKeeper, raw requests so every step is exact).

A member acquires ten records on the topic's leader and accepts the first five. The
leader is SIGKILLed: the new leader reads the share-partition from the share
coordinator and delivers only the five that were not accepted (a second time). The
member accepts two more; then the broker holding the share coordinator of that
share-partition (FindCoordinator key type 2) is SIGKILLed: the new share coordinator
loads the state from its replica of `__share_group_state`, DescribeShareGroupOffsets
(answered from it) reports start offset 7, and the records delivered next are 7-9.
Also over an INTERNAL SASL_SSL listener with the authorizer on: the persister reaches
the share coordinator there, with ClusterAction.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer

from support.cluster import CLIENT_LOG, Cluster
from support.raw_client import RawClient
from support.secure_broker import OVER_SASL_SSL

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]
TOPIC = "share-state-failover"
GROUP = "share-state-g"
OVERRIDES = {"group.coordinator.rebalance.protocols": "classic,consumer,share",
             "share.coordinator.state.topic.num.partitions": "5",
             "share.coordinator.state.topic.min.isr": "1"}  # two of three brokers go
FETCH, ACK, ACCEPT = 78, 79, 1


def _raw(cluster: Cluster, broker_id: int) -> RawClient:
    return RawClient(cluster.brokers[broker_id].bootstrap, timeout=20.0)


def _new_leader(cluster: Cluster, gone: set[int]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            leader = cluster.leader_of(TOPIC, 0, via=min(set(cluster.running()) - gone))
        except Exception:  # noqa: BLE001 - metadata in flux while the broker dies
            leader = -1
        if leader not in (-1, *gone) and leader in cluster.running():
            return leader
        time.sleep(0.2)
    raise AssertionError(f"no new leader of {TOPIC}-0 outside {gone}")


def _fetch(cluster: Cluster, broker_id: int, member: str, tid: uuid.UUID) -> list[int]:
    """A new share session on ``broker_id``: the offsets it acquires (waiting up to
    10 s for some)."""
    with _raw(cluster, broker_id) as raw:
        body = raw.request(FETCH, 1, group_id=GROUP, member_id=member, share_session_epoch=0,
                           max_wait=10_000, min_bytes=1, max_bytes=1 << 20, max_records=100,
                           batch_size=100, topics=[{"topic_id": tid, "partitions": [
                               {"partition_index": 0, "acknowledgement_batches": []}]}],
                           forgotten_topics_data=[]).body
        assert body.error_code == 0, body
        part = body.responses[0].partitions[0]
        assert part.error_code == 0, part
        return [o for a in part.acquired_records
                for o in range(int(a.first_offset), int(a.last_offset) + 1)]


def _fetch_and_accept(cluster: Cluster, broker_id: int, member: str, tid: uuid.UUID,
                      accept: range) -> list[int]:
    """Acquire on a new session, accept ``accept``, keep the rest acquired."""
    with _raw(cluster, broker_id) as raw:
        body = raw.request(FETCH, 1, group_id=GROUP, member_id=member, share_session_epoch=0,
                           max_wait=10_000, min_bytes=1, max_bytes=1 << 20, max_records=100,
                           batch_size=100, topics=[{"topic_id": tid, "partitions": [
                               {"partition_index": 0, "acknowledgement_batches": []}]}],
                           forgotten_topics_data=[]).body
        got = [(int(a.first_offset), int(a.last_offset), int(a.delivery_count))
               for a in body.responses[0].partitions[0].acquired_records]
        acked = raw.request(ACK, 1, group_id=GROUP, member_id=member, share_session_epoch=1,
                            topics=[{"topic_id": tid, "partitions": [{
                                "partition_index": 0, "acknowledgement_batches": [{
                                    "first_offset": accept.start, "last_offset": accept.stop - 1,
                                    "acknowledge_types": [ACCEPT]}]}]}]).body
        assert acked.error_code == 0 and acked.responses[0].partitions[0].error_code == 0, acked
        # the session stays open on this connection until the block ends; what the member
        # did not accept is released then (or when its broker dies)
        return [o for first, last, _ in got for o in range(first, last + 1)]


def _share_coordinator(cluster: Cluster, via: int, tid: uuid.UUID) -> int:
    key = f"{GROUP}:{base64.urlsafe_b64encode(tid.bytes).decode().rstrip('=')}:0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with _raw(cluster, via) as raw:
            entry = raw.request(10, 6, key_type=2, coordinator_keys=[key]).body.coordinators[0]
        if int(entry.error_code) == 0 and int(entry.node_id) in cluster.running():
            return int(entry.node_id)
        time.sleep(0.2)
    raise AssertionError("no share coordinator found")


def _start_offset(cluster: Cluster, gone: set[int]) -> Any:
    coordinator = cluster.wait_for_coordinator(GROUP, exclude=gone, timeout=120)
    with _raw(cluster, coordinator) as raw:
        body = raw.request(90, 1, groups=[{"group_id": GROUP, "topics": [
            {"topic_name": TOPIC, "partitions": [0]}]}]).body
    return body.groups[0].topics[0].partitions[0]


@OVER_SASL_SSL
def test_share_state_survives_its_leader_and_its_share_coordinator(cluster_factory: Any) -> None:
    cluster: Cluster = cluster_factory(3, overrides=OVERRIDES)
    cluster.create_topic(TOPIC, partitions=1, replication_factor=3)
    cluster.wait_for_coordinator(GROUP)  # __consumer_offsets made while all three are up
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "logger": CLIENT_LOG})
    for i in range(10):
        producer.produce(TOPIC, value=f"v{i}".encode(), partition=0)
    assert producer.flush(60) == 0
    leader = cluster.leader_of(TOPIC, 0)
    with _raw(cluster, leader) as raw:
        tid = raw.request(3, 12, topics=[{"name": TOPIC, "topic_id": None}],
                          allow_auto_topic_creation=False,
                          include_topic_authorized_operations=False).body.topics[0].topic_id
        altered = raw.request(44, 1, resources=[{
            "resource_type": 32, "resource_name": GROUP, "configs": [{
                "name": "share.auto.offset.reset", "config_operation": 0,
                "value": "earliest"}]}], validate_only=False).body
        assert altered.responses[0].error_code == 0
    member = str(uuid.uuid4())
    assert _fetch_and_accept(cluster, leader, member, tid, range(0, 5)) == list(range(10))
    cluster.kill(leader)
    gone = {leader}
    second = _new_leader(cluster, gone)
    # the new leader resumes from the share coordinator: 0-4 were accepted
    assert _fetch_and_accept(cluster, second, member, tid, range(5, 7)) == list(range(5, 10))
    coordinator = _share_coordinator(cluster, second, tid)
    cluster.kill(coordinator)
    gone.add(coordinator)
    assert _share_coordinator(cluster, min(set(cluster.running()) - gone), tid) not in gone
    described = _start_offset(cluster, gone)
    assert (int(described.error_code), int(described.start_offset)) == (0, 7), described
    third = _new_leader(cluster, gone)
    assert _fetch(cluster, third, member, tid) == [7, 8, 9]

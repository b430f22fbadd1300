"""A share group (KIP-932) survives the SIGKILL of its coordinator's broker (three brokers
on ZooKeeper, `__consumer_offsets` replicated three ways).

Two confluent-kafka share consumers share a one-partition topic led by another broker.
A third member joins and leaves (the group epoch moves on), then the broker coordinating
the group is SIGKILLed; the new coordinator rebuilds the group from its share group
records: ShareGroupDescribe there shows the same members with the same member epochs
and the same group epoch (members that had to rejoin would start a new group at epoch 1
and 2), and the consumers carry on: every
record produced afterwards is delivered, each to one of them, and none before it comes
back (the share-partition lives on the topic's leader, which stayed up).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Producer, ShareConsumer

from support.cluster import CLIENT_LOG, Cluster
from support.raw_client import RawClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]
TOPIC = "share-failover"
OVERRIDES = {"group.coordinator.rebalance.protocols": "classic,consumer,share"}


def _group_away_from(cluster: Cluster, leader: int) -> str:
    """A group id whose coordinator is not the topic's leader."""
    for i in range(200):
        group = f"share-survivors-{i}"
        coordinator = cluster.coordinator_of(group)
        if coordinator not in (-1, leader):
            return group
    raise AssertionError("every group id is coordinated by the topic's leader")


def _describe(cluster: Cluster, broker_id: int, group: str) -> Any:
    with RawClient(cluster.brokers[broker_id].bootstrap, timeout=10.0) as raw:
        return raw.request(77, 1, group_ids=[group],
                           include_authorized_operations=False).body.groups[0]


def _visit(cluster: Cluster, coordinator: int, group: str,
           consumers: list[ShareConsumer]) -> None:
    """A third member joins and leaves again; returns once the other two have caught up
    with the group epoch (nothing left to write until the coordinator dies)."""
    guest = ShareConsumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                           "logger": CLIENT_LOG})
    guest.subscribe([TOPIC])
    deadline = time.monotonic() + 60
    while len(_describe(cluster, coordinator, group).members) < 3:
        assert time.monotonic() < deadline, "the third member never joined"
        for consumer in [*consumers, guest]:
            consumer.poll(0.2)
    guest.close()

    def settled() -> bool:  # two members, both at the group's epoch
        described = _describe(cluster, coordinator, group)
        return len(described.members) == 2 and all(
            m.member_epoch == described.group_epoch for m in described.members)

    while not settled():
        assert time.monotonic() < deadline, "the group never settled without the guest"
        for consumer in consumers:
            consumer.poll(0.2)


def _produce(cluster: Cluster, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "logger": CLIENT_LOG})
    for value in values:
        producer.produce(TOPIC, value=value.encode(), partition=0)
    assert producer.flush(60) == 0


def _drain(consumers: list[ShareConsumer], want: set[str], got: Counter[str],
           timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not want <= set(got):
        for consumer in consumers:
            got.update(m.value().decode() for m in consumer.poll(0.2) if m.error() is None)
    assert want <= set(got), f"missing {sorted(want - set(got))}"


def test_the_share_group_moves_with_its_coordinator(cluster_factory: Any) -> None:
    cluster: Cluster = cluster_factory(3, overrides=OVERRIDES)
    cluster.create_topic(TOPIC, partitions=1, replication_factor=3)
    group = _group_away_from(cluster, cluster.leader_of(TOPIC, 0))
    consumers = [ShareConsumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                                "logger": CLIENT_LOG}) for _ in range(2)]
    for consumer in consumers:
        consumer.subscribe([TOPIC])
    got: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 120
        while not got and time.monotonic() < deadline:  # latest: the start is made now
            _produce(cluster, ["warm-up"])
            for consumer in consumers:
                got.update(m.value().decode() for m in consumer.poll(0.5) if m.error() is None)
        before = [f"a{i}" for i in range(20)]
        _produce(cluster, before)
        _drain(consumers, set(before), got)
        old = cluster.wait_for_coordinator(group)
        _visit(cluster, old, group, consumers)  # moves the group epoch well past 2
        described = _describe(cluster, old, group)
        epoch = int(described.group_epoch)
        epochs = {m.member_id: int(m.member_epoch) for m in described.members}
        cluster.kill(old)
        new = cluster.wait_for_coordinator(group, exclude=[old], timeout=120)
        after = [f"b{i}" for i in range(20)]
        _produce(cluster, after)
        _drain(consumers, set(after), got)
        described = _describe(cluster, new, group)
        assert int(described.error_code) == 0
        # rebuilt from the records, not rejoined: same members, same epochs
        assert {m.member_id: int(m.member_epoch) for m in described.members} == epochs
        assert int(described.group_epoch) == epoch > 2
        assert all(got[v] == 1 for v in before + after), f"delivered twice: {got}"
    finally:
        for consumer in consumers:
            consumer.close()

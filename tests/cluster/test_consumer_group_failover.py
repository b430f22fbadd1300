"""A KIP-848 consumer group survives the SIGKILL of its coordinator's broker (three
brokers on ZooKeeper, `__consumer_offsets` replicated three ways).

Two librdkafka members (`group.protocol=consumer`) split a four-partition topic and
commit what they read. The broker coordinating the group is SIGKILLed. The leadership of
the group's `__consumer_offsets` partition moves; the new coordinator rebuilds the group
from the records (members, epochs, target assignment) and the members carry on with it
without starting over: ConsumerGroupDescribe on the new coordinator shows both members
with the partitions split as before and the group epoch not rewound, the committed
offsets are there, and a third member that joins afterwards gets its share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.cluster import CLIENT_LOG, Cluster
from support.raw_client import RawClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]
TOPIC, GROUP, PARTITIONS = "kip848-failover", "kip848-survivors", 4
OVERRIDES = {"group.coordinator.rebalance.protocols": "classic,consumer",
             "group.consumer.heartbeat.interval.ms": "500"}


def _consumer(cluster: Cluster) -> Consumer:
    return Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": GROUP,
                     "group.protocol": "consumer", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "logger": CLIENT_LOG})


def _poll(consumers: list[Consumer], done: Callable[[], bool], what: str,
          timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0.1)
        if done():
            return
    owned = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
    raise AssertionError(f"not within {timeout}s: {what}; assignments {owned}")


def _owned(consumers: list[Consumer]) -> list[set[int]]:
    return [{tp.partition for tp in c.assignment()} for c in consumers]


def _split(consumers: list[Consumer]) -> bool:
    owned = _owned(consumers)
    return (all(owned) and sum(len(o) for o in owned) == PARTITIONS
            and set().union(*owned) == set(range(PARTITIONS)))


def _describe(cluster: Cluster, broker_id: int) -> Any:
    with RawClient(cluster.brokers[broker_id].bootstrap, timeout=10.0) as raw:
        return raw.request(69, 0, group_ids=[GROUP],
                           include_authorized_operations=False).body.groups[0]


def test_the_group_moves_with_its_coordinator(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(3, overrides=OVERRIDES)
    cluster.create_topic(TOPIC, partitions=PARTITIONS, replication_factor=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "logger": CLIENT_LOG})
    for i in range(40):
        producer.produce(TOPIC, value=str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(60) == 0
    members = [_consumer(cluster), _consumer(cluster)]
    for member in members:
        member.subscribe([TOPIC])
    try:
        _poll(members, lambda: _split(members), "two members splitting the topic")
        before = _owned(members)
        for member in members:
            member.commit(offsets=[TopicPartition(TOPIC, p, 10) for p in _owned([member])[0]],
                          asynchronous=False)
        old = cluster.wait_for_coordinator(GROUP)
        epoch = int(_describe(cluster, old).group_epoch)
        cluster.kill(old)
        new = cluster.wait_for_coordinator(GROUP, exclude=[old], timeout=120)

        def rebuilt() -> bool:
            try:
                group = _describe(cluster, new)
            except Exception:  # noqa: BLE001 - the new coordinator still loading
                return False
            return int(group.error_code) == 0 and len(group.members) == 2

        _poll(members, rebuilt, "the new coordinator describing both members")
        group = _describe(cluster, new)
        assert int(group.group_epoch) >= epoch
        assert group.group_state == "Stable" or _split(members)
        for _ in range(20):  # heartbeats to the new coordinator keep what each member had
            for member in members:
                member.poll(0.1)
        assert _owned(members) == before
        committed = members[0].committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)],
                                         timeout=30)
        assert [tp.offset for tp in committed] == [10] * PARTITIONS
        third = _consumer(cluster)
        third.subscribe([TOPIC])
        members.append(third)
        _poll(members, lambda: _split(members), "three members splitting the topic")
        assert len(_describe(cluster, new).members) == 3
    finally:
        for member in members:
            member.close()

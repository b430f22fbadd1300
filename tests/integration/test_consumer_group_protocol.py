"""The KIP-848 consumer group protocol over TCP, with librdkafka's implementation
(confluent-kafka, `group.protocol=consumer`): advertised by default (not with
`group.coordinator.rebalance.protocols=classic`); two consumers split a topic, one
leaves and the other takes everything over; commits made with member epochs survive a
broker restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, TopicPartition
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.clients import admin, create_topic, unique_topic

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
HEARTBEAT, DESCRIBE = 68, 69
ENABLED = {"group.coordinator.rebalance.protocols": "classic,consumer",
           "group.consumer.heartbeat.interval.ms": "500"}


def _api_keys(bootstrap: str) -> set[int]:
    from support.raw_client import RawClient

    with RawClient(bootstrap) as raw:
        response = raw.request(18, 3, client_software_name="strom-tests",
                               client_software_version="1")
    return {int(k.api_key) for k in response.body.api_keys}


def _describe(bootstrap: str, group: str) -> Any:
    from support.raw_client import RawClient

    with RawClient(bootstrap) as raw:
        response = raw.request(DESCRIBE, 0, group_ids=[group],
                               include_authorized_operations=False)
    return response.body.groups[0]


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "group.protocol": "consumer", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "socket.timeout.ms": 10000})


def _poll_until(consumers: list[Consumer], done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0.2)
        if done():
            return
    raise AssertionError("the group did not get there: "
                         f"{[sorted(p.partition for p in c.assignment()) for c in consumers]}")


def _owned(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def test_advertised_by_default_and_not_with_classic_only(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    """Kafka 4's default serves the consumer protocol; `classic` alone hides it."""
    assert {HEARTBEAT, DESCRIBE} <= _api_keys(broker_factory().bootstrap)
    proc = broker_factory({"group.coordinator.rebalance.protocols": "classic"}, name="classic")
    assert not {HEARTBEAT, DESCRIBE} & _api_keys(proc.bootstrap)
    from support.raw_client import RawClient

    with RawClient(proc.bootstrap) as raw:  # and refused if sent anyway
        response = raw.request(HEARTBEAT, 0, group_id="g", member_id="", member_epoch=0,
                               rebalance_timeout=30_000, subscribed_topic_names=["t"],
                               topic_partitions=[])
    assert response.body.error_code == ErrorCode.unsupported_version


def test_two_consumers_split_then_one_takes_over_and_commits_survive_a_restart(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    assert {HEARTBEAT, DESCRIBE} <= _api_keys(proc.bootstrap)
    topic = create_topic(proc.bootstrap, unique_topic("kip848"), partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first, second = _consumer(proc.bootstrap, group), _consumer(proc.bootstrap, group)
    first.subscribe([topic])
    _poll_until([first], lambda: _owned(first) == {0, 1, 2, 3})
    second.subscribe([topic])
    _poll_until([first, second], lambda: len(_owned(first)) == 2 and len(_owned(second)) == 2
                and not _owned(first) & _owned(second))
    described = _describe(proc.bootstrap, group)
    assert described.error_code == 0 and len(described.members) == 2
    assert {m.member_id for m in described.members} == {first.memberid(), second.memberid()}
    assert sorted(p for m in described.members for tp in m.assignment.topic_partitions
                  if tp.topic_name == topic for p in tp.partitions) == [0, 1, 2, 3]
    client = admin(proc.bootstrap)  # must outlive its futures
    listed = {g.group_id: g for g in client.list_consumer_groups().result(timeout=30).valid}
    assert listed[group].type == ConsumerGroupType.CONSUMER
    assert listed[group].state == ConsumerGroupState.STABLE
    second.close()
    _poll_until([first], lambda: _owned(first) == {0, 1, 2, 3})
    first.commit(offsets=[TopicPartition(topic, p, 10 + p) for p in range(4)],
                 asynchronous=False)
    first.close()
    proc.restart()
    reader = _consumer(proc.bootstrap, group)
    try:
        committed = reader.committed([TopicPartition(topic, p) for p in range(4)], timeout=30)
        assert {tp.partition: tp.offset for tp in committed} == {p: 10 + p for p in range(4)}
    finally:
        reader.close()


def test_a_regex_subscription_picks_up_a_new_topic(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    prefix = f"re{uuid.uuid4().hex[:6]}"
    first = create_topic(proc.bootstrap, f"{prefix}-a", partitions=2)
    consumer = _consumer(proc.bootstrap, f"g-{prefix}")
    try:
        consumer.subscribe([f"^{prefix}-.*"])
        _poll_until([consumer], lambda: {(tp.topic, tp.partition) for tp in consumer.assignment()}
                    == {(first, 0), (first, 1)})
        second = create_topic(proc.bootstrap, f"{prefix}-b", partitions=1)
        _poll_until([consumer], lambda: (second, 0) in {(tp.topic, tp.partition)
                                                         for tp in consumer.assignment()})
    finally:
        consumer.close()

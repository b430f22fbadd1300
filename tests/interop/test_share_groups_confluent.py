"""Share groups (KIP-932) with confluent-kafka's `ShareConsumer` (librdkafka 2.16), on
Strom (with `group.coordinator.rebalance.protocols=classic,consumer,share`) and on
Apache Kafka 4.4 as the oracle: two consumers in one group share a partition, each
record reaches one of them; a released record comes back with the next delivery count,
a rejected one never does.

The share-partition starts at the latest offset (`share.auto.offset.reset`'s default),
so each test first produces warm-up records until one arrives: from then on the
share-partition exists and every record produced is delivered.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer

from support.clients import create_topic
from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(300)]
WAIT_S = 90


@pytest.fixture
def target(share_target: Target) -> Target:
    return share_target


def share_consumer(bootstrap: str, group: str, topic: str, explicit: bool) -> ShareConsumer:
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode":
                                  "explicit" if explicit else "implicit"})
    consumer.subscribe([topic])
    return consumer


def warm_up(bootstrap: str, topic: str, consumers: list[ShareConsumer],
            explicit: bool = False) -> None:
    """Produce warm-up records until one is consumed (the share-partition exists)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        producer.produce(topic, value=b"warm-up", partition=0)
        producer.flush(10)
        for consumer in consumers:
            messages = [m for m in consumer.poll(0.5) if m.error() is None]
            for message in messages if explicit else ():  # implicit: the next poll accepts
                consumer.acknowledge(message, AcknowledgeType.ACCEPT)
            if messages:
                return
    raise AssertionError("no warm-up record arrived")


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=f"r{i}".encode(), partition=0)
    assert producer.flush(30) == 0


def test_two_share_consumers_split_one_partition(target: Target) -> None:
    topic = create_topic(target.bootstrap, f"scf-{uuid.uuid4().hex[:8]}", partitions=1)
    group = f"sgc-{uuid.uuid4().hex[:8]}"
    consumers = [share_consumer(target.bootstrap, group, topic, explicit=False)
                 for _ in range(2)]
    try:
        warm_up(target.bootstrap, topic, consumers)
        produce(target.bootstrap, topic, 40)
        got: Counter[bytes] = Counter()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and sum(got.values()) < 40:
            for consumer in consumers:
                got.update(m.value() for m in consumer.poll(0.5)
                           if m.error() is None and m.value() != b"warm-up")
        assert got == Counter(f"r{i}".encode() for i in range(40))
    finally:
        for consumer in consumers:
            consumer.close()


def test_released_records_return_and_rejected_ones_do_not(target: Target) -> None:
    topic = create_topic(target.bootstrap, f"scf-{uuid.uuid4().hex[:8]}", partitions=1)
    group = f"sgc-{uuid.uuid4().hex[:8]}"
    consumer = share_consumer(target.bootstrap, group, topic, explicit=True)
    try:
        warm_up(target.bootstrap, topic, [consumer], explicit=True)
        consumer.commit_sync()
        produce(target.bootstrap, topic, 6)
        seen: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and len({v for v, c in seen if c >= 2}) < 3:
            for m in consumer.poll(0.5):
                if m.error() is not None or m.value() == b"warm-up":
                    if m.error() is None:
                        consumer.acknowledge(m, AcknowledgeType.ACCEPT)
                    continue
                index = int(m.value()[1:])
                seen.append((m.value(), m.delivery_count()))
                first = m.delivery_count() == 1
                kind = (AcknowledgeType.ACCEPT if not first else
                        AcknowledgeType.RELEASE if index % 2 else AcknowledgeType.REJECT)
                consumer.acknowledge(m, kind)
            consumer.commit_sync()
        counts = Counter(v for v, _ in seen)
        assert {v for v, c in counts.items() if c == 2} == {b"r1", b"r3", b"r5"}
        assert {v for v, c in counts.items() if c == 1} == {b"r0", b"r2", b"r4"}
        assert {c for v, c in seen if v in (b"r1", b"r3", b"r5")} == {1, 2}
    finally:
        consumer.close()

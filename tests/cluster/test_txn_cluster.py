"""The transaction coordinator in a three-broker cluster (ZooKeeper mode).

The transactional id and the consumer group are chosen so that the transaction
coordinator and the group coordinator live on different brokers: the COMMIT marker for
the group's `__consumer_offsets` partition travels as WriteTxnMarkers over the peer
channel, and the group coordinator on the other broker makes the offsets visible. Then
the transaction coordinator's broker is SIGKILLed with a transaction open: its
`__transaction_state` partition moves to another broker, which loads the open
transaction, and the client's commit completes there, all or nothing.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from support.cluster import Cluster, wait_until
from support.raw_client import RawClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]
TOPIC = "txn-input"


def txn_coordinator(cluster: Cluster, txn_id: str) -> int:
    """The broker FindCoordinator names for a transactional id, or -1."""
    for broker_id in cluster.running():
        try:
            with RawClient(cluster.brokers[broker_id].bootstrap, timeout=5.0) as client:
                entry = client.request(10, 4, key_type=1,
                                       coordinator_keys=[txn_id]).body.coordinators[0]
        except Exception:  # noqa: BLE001 - a broker dying under us: ask another
            continue
        return int(entry.node_id) if int(entry.error_code) == 0 else -1
    return -1


def split_pair(cluster: Cluster) -> tuple[str, str, int, int]:
    """A transactional id and a group whose coordinators are on different brokers."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    group_node = cluster.wait_for_coordinator(group)
    wait_until(lambda: txn_coordinator(cluster, "probe") >= 0, 60, "__transaction_state")
    for _ in range(60):
        txn_id = f"t-{uuid.uuid4().hex[:8]}"
        node = txn_coordinator(cluster, txn_id)
        if node >= 0 and node != group_node:
            return txn_id, group, node, group_node
    raise AssertionError("no transactional id coordinated away from the group's broker")


def committed(cluster: Cluster, group: str, expected: int) -> int:
    """The group's stable committed offset once it is ``expected`` (or the last seen).

    After a broker dies, the marker into `__consumer_offsets` is replicated only once the
    dead replica leaves the ISR (replica.lag.time.max.ms), as in Kafka: until then a
    read_committed client is told UNSTABLE_OFFSET_COMMIT and asks again."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    seen = [-1]

    def stable() -> bool:
        try:
            [tp] = consumer.committed([TopicPartition(TOPIC, 0)], timeout=10)
        except KafkaException:
            return False
        seen[0] = int(tp.offset)
        return seen[0] == expected

    try:
        wait_until(stable, 120, f"committed offset {expected} of {group}")
        return seen[0]
    finally:
        consumer.close()


def test_markers_cross_brokers_and_a_killed_coordinator_hands_over(cluster: Cluster) -> None:
    cluster.create_topic(TOPIC, partitions=1, replication_factor=3)
    txn_id, group, txn_node, group_node = split_pair(cluster)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 60_000})
    producer.init_transactions(60)
    metadata = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    group_metadata = metadata.consumer_group_metadata()
    metadata.close()

    producer.begin_transaction()
    producer.send_offsets_to_transaction([TopicPartition(TOPIC, 0, 10)], group_metadata, 60)
    producer.commit_transaction(60)
    assert committed(cluster, group, 10) == 10  # the marker crossed to the group's broker

    producer.begin_transaction()
    producer.send_offsets_to_transaction([TopicPartition(TOPIC, 0, 50)], group_metadata, 60)
    assert group_node != txn_node
    cluster.kill(txn_node)
    wait_until(lambda: txn_coordinator(cluster, txn_id) not in (-1, txn_node), 90,
               "a new transaction coordinator")
    producer.commit_transaction(90)
    assert committed(cluster, group, 50) == 50  # the open transaction committed whole

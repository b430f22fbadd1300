"""`strom txn` in a three-broker cluster (ZooKeeper mode): the transaction's coordinator,
its partitions' leaders and the broker asked are different brokers.

`list` gathers every broker's answer and names the coordinator FindCoordinator names;
`describe` reaches that coordinator whichever broker is bootstrapped; `describe-producers`
asks each partition's leader; `find-hanging --broker-id` searches the partitions the
broker holds a replica of, followers included; `abort` sends its marker to the leader of
the partition, whose last stable offset then moves on.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.cli import strom_json
from support.cluster import Cluster, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]


def stable_end(bootstrap: str, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso",
                         "isolation.level": "read_committed"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                  timeout=10)[1])
    finally:
        consumer.close()


def test_txn_commands_across_brokers(cluster: Cluster) -> None:
    topic = f"txn-cli-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions=3, replication_factor=2)
    txn_id = f"t-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 120_000})
    producer.init_transactions(60)
    producer.begin_transaction()
    for partition in range(3):
        producer.produce(topic, b"v", partition=partition)
    assert producer.flush(30) == 0
    try:
        leaders = {p: cluster.leader_of(topic, p) for p in range(3)}
        for bootstrap_id in cluster.running():
            b = ("-b", cluster.brokers[bootstrap_id].bootstrap)
            described = strom_json("txn", "describe", "--transactional-id", txn_id, *b)
            assert described["state"] == "Ongoing"
            assert described["partitions"] == [{"topic": topic, "partition": p}
                                               for p in range(3)]
            [listed] = [t for t in strom_json("txn", "list", *b)
                        if t["transactional_id"] == txn_id]
            assert listed["coordinator"] == described["coordinator"]
        b = ("-b", cluster.bootstrap)
        for partition in range(3):
            producers = strom_json("txn", "describe-producers", "--topic", topic,
                                   "--partition", str(partition), *b)["producers"]
            assert [p["current_txn_start_offset"] for p in producers] == [0]
        for broker_id in cluster.running():
            assert strom_json("txn", "find-hanging", "--broker-id", str(broker_id),
                              "--max-transaction-timeout", "0", *b) == []

        target = next(p for p in range(3) if leaders[p] != described["coordinator"])
        assert stable_end(cluster.bootstrap, topic, target) == 0
        strom_json("txn", "abort", "--topic", topic, "--partition", str(target),
                   "--start-offset", "0", *b)
        wait_until(lambda: stable_end(cluster.bootstrap, topic, target) == 2, 60,
                   "the LSO past the aborted transaction (record and marker)")
        assert stable_end(cluster.bootstrap, topic, (target + 1) % 3) == 0, "others still open"
    finally:
        producer.abort_transaction(60)

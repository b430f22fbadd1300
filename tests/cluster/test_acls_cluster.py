"""ACLs in a ZooKeeper cluster (issue 15): three brokers with the authorizer on, the
brokers' own principal (User:ANONYMOUS on the PLAINTEXT inter-broker listener) a super
user, clients on a SASL_PLAINTEXT listener. Replication and the group and transaction
coordinators keep working; an ACL created through one broker is stored in ZooKeeper and
enforced by every broker (the partitions' leaders), and removing it refuses again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from support.broker_process import free_port, wait_until
from support.cluster import Cluster, ZooKeeperServer

pytestmark = [pytest.mark.cluster]

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_alice="alice-secret";')
ALICE = AclBinding(ResourceType.TOPIC, "guarded", ResourcePatternType.LITERAL, "User:alice",
                   "*", AclOperation.WRITE, AclPermissionType.ALLOW)


def _produce(conf: dict[str, Any], count: int) -> set[int]:
    producer = Producer({**conf, "acks": "all", "message.timeout.ms": 20000})
    errors: set[int] = set()
    for i in range(count):
        producer.produce("guarded", str(i).encode(), partition=i % 3,
                         on_delivery=lambda err, _m: errors.add(err.code()) if err else None)
    producer.flush(60)
    return errors


def test_acls_are_kept_in_zookeeper_and_enforced_by_every_broker(
        zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    cluster = Cluster(zookeeper, tmp_path / "cluster", 3, overrides={
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:ANONYMOUS;User:admin",
    })
    sasl = {}
    for broker_id, proc in cluster.brokers.items():
        sasl[broker_id] = free_port()
        proc.overrides["listeners"] = (f"PLAINTEXT://127.0.0.1:{proc.port},"
                                       f"SASL_PLAINTEXT://127.0.0.1:{sasl[broker_id]}")
    alice = {"bootstrap.servers": f"127.0.0.1:{sasl[1]}", "security.protocol": "SASL_PLAINTEXT",
             "sasl.mechanism": "PLAIN", "sasl.username": "alice",
             "sasl.password": "alice-secret"}
    try:
        cluster.start()
        cluster.create_topic("guarded", 3, 3, {"min.insync.replicas": "3"})
        assert _produce(alice, 3) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
        admin = AdminClient({"bootstrap.servers": cluster.brokers[1].bootstrap})
        for future in admin.create_acls([ALICE]).values():
            future.result(timeout=30)
        for broker_id, proc in cluster.brokers.items():  # every broker sees it
            seen = AdminClient({"bootstrap.servers": proc.bootstrap})
            wanted = AclBindingFilter(ResourceType.TOPIC, "guarded", ResourcePatternType.ANY,
                                      None, None, AclOperation.ANY, AclPermissionType.ANY)
            wait_until(lambda s=seen, w=wanted: s.describe_acls(w).result(timeout=30) == [ALICE],
                       30, f"broker {broker_id} sees the ACL")
        # min ISR 3 and acks=all: every follower fetched, as a super user, with ACLs on
        assert _produce(alice, 30) == set()
        gone = AclBindingFilter(ResourceType.TOPIC, "guarded", ResourcePatternType.LITERAL,
                                "User:alice", None, AclOperation.ANY, AclPermissionType.ANY)
        assert admin.delete_acls([gone])[gone].result(timeout=30) == [ALICE]
        wait_until(lambda: _produce(alice, 3) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}, 60,
                   "every leader refuses alice again")
    finally:
        codes = cluster.shutdown()
    assert all(code == 0 for code in codes.values()), codes

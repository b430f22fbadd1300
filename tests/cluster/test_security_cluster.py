"""Brokers authenticate to each other (issue 15): three brokers on ZooKeeper replicate
over an INTERNAL listener that is SASL_SSL with SCRAM-SHA-512, as Kafka's
`inter.broker.listener.name` and `sasl.mechanism.inter.broker.protocol` configure it.

Every broker registers all its listeners in ZooKeeper (Kafka's `endpoints`); followers
fetch, and the transaction coordinator's peers call, on the INTERNAL endpoint, verifying
the leader's certificate and logging in with the JAAS entry's username and password. The
SCRAM user for the brokers is created once they run (through the PLAINTEXT client
listener); until then followers are refused and retry. A wrong inter-broker password
keeps a follower out of the ISR.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from support import secure_broker
from support.broker_process import wait_until
from support.cluster import Cluster, ZooKeeperServer
from support.tls_certs import make_pki

pytestmark = [pytest.mark.cluster]


def _secured_cluster(zookeeper: ZooKeeperServer, base: Path, passwords: dict[int, str],
                     extra: dict[str, str] | None = None) -> tuple[Cluster, dict[int, int]]:
    pki = make_pki(base / "pki")
    cluster = Cluster(zookeeper, base / "cluster", 3, overrides={
        **secure_broker.inter_broker_overrides(pki), **(extra or {})})
    return cluster, secure_broker.add_internal_listeners(cluster.brokers, passwords)


def _create_broker_user(cluster: Cluster) -> None:
    secure_broker.create_broker_user(cluster.bootstrap)


def _produce_all_acks(cluster: Cluster, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                         "enable.idempotence": True})
    errors: list[object] = []
    for i in range(count):
        producer.produce(topic, json.dumps(i).encode(),
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert producer.flush(60) == 0 and not errors, errors


def test_replication_over_sasl_ssl_with_scram(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    cluster, internal = _secured_cluster(zookeeper, tmp_path, dict.fromkeys((1, 2, 3),
                                                                            "broker-secret"))
    try:
        cluster.start()
        _create_broker_user(cluster)
        cluster.create_topic("secured", 3, 3, {"min.insync.replicas": "3"})
        cluster.wait_for_isr("secured", range(3), cluster.brokers)
        _produce_all_acks(cluster, "secured", 300)  # min ISR 3: every follower fetched
        logs = cluster.logs(200000)
        reached = set(re.findall(r"connected to the broker at 127\.0\.0\.1:(\d+) on listener "
                                 r"INTERNAL \(SASL_SSL, SCRAM-SHA-512 as broker\)", logs))
        # the three partitions' leaders, each reached on its INTERNAL listener only
        assert reached == {str(p) for p in internal.values()}, (reached, internal)
        assert set(re.findall(r"connected to the broker at \S+ on listener (\w+)", logs)) == \
            {"INTERNAL"}
        assert "broker-secret" not in logs
        internal_client = AdminClient({
            "bootstrap.servers": f"127.0.0.1:{internal[1]}", "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(tmp_path / "pki" / "ca.pem"),
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "broker",
            "sasl.password": "broker-secret"})
        brokers = internal_client.list_topics(timeout=30).brokers
        assert {b.port for b in brokers.values()} == set(internal.values())
    finally:
        codes = cluster.shutdown()
    assert all(code == 0 for code in codes.values()), codes


def test_a_broker_with_a_wrong_password_stays_out_of_the_isr(zookeeper: ZooKeeperServer,
                                                             tmp_path: Path) -> None:
    cluster, _ = _secured_cluster(zookeeper, tmp_path,
                                  {1: "broker-secret", 2: "broker-secret", 3: "wrong"},
                                  {"replica.lag.time.max.ms": "2000"})
    try:
        cluster.start()
        _create_broker_user(cluster)
        cluster.create_topic("guarded", 3, 3)
        leaders = {p: cluster.leader_of("guarded", p) for p in range(3)}
        followed = [p for p, leader in leaders.items() if leader != 3]
        assert followed, leaders  # replicas are spread: broker 3 follows somewhere
        wait_until(lambda: all(3 not in cluster.isr_of("guarded", p) for p in followed), 90,
                   "broker 3 dropped from the ISR of the partitions it follows")
        led = [p for p, leader in leaders.items() if leader == 3]
        if led:  # the others log in to broker 3 with the right password
            cluster.wait_for_isr("guarded", led, {1, 2, 3})
        leader_logs = "".join(cluster.brokers[leaders[p]].log_text() for p in followed)
        assert "SASL SCRAM-SHA-512 authentication failed" in leader_logs
    finally:
        codes = cluster.shutdown()
    assert all(code == 0 for code in codes.values()), codes


def test_replication_over_mutual_tls(zookeeper: ZooKeeperServer, tmp_path: Path) -> None:
    """INTERNAL as SSL with client certificates required: each broker verifies the
    leader's certificate and presents its own keystore as the client certificate."""
    cluster, internal = _secured_cluster(zookeeper, tmp_path, dict.fromkeys((1, 2, 3), "-"), {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL",
        "listener.name.internal.ssl.client.auth": "required"})
    try:
        cluster.start()
        cluster.create_topic("mtls", 3, 3, {"min.insync.replicas": "3"})
        cluster.wait_for_isr("mtls", range(3), cluster.brokers)
        _produce_all_acks(cluster, "mtls", 100)
        reached = set(re.findall(r"connected to the broker at 127\.0\.0\.1:(\d+) on listener "
                                 r"INTERNAL \(SSL\)", cluster.logs(200000)))
        assert reached == {str(p) for p in internal.values()}, (reached, internal)
    finally:
        codes = cluster.shutdown()
    assert all(code == 0 for code in codes.values()), codes

"""ACLs side by side: Strom and Apache Kafka 4.4, configured alike (SASL_PLAINTEXT PLAIN
users, `authorizer.class.name` set to Kafka's StandardAuthorizer, `super.users`), get the
same ACLs from Kafka's own kafka-acls.sh (AclCommand) and give the same allowed/denied
answers for a matrix of principals x operations (produce, consume in a group, create a
topic, see topics in Metadata, list ACLs) through confluent-kafka and the Java tools.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from support.broker_process import BrokerProcess, free_port
from support.interop import Target, kafka_dist

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret",
         "carol": "carol-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret" '
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
ALLOWED = "allowed"


@dataclass
class Secured:
    target: Target
    sasl: str
    dir: Path

    def conf(self, user: str) -> dict[str, Any]:
        return {"bootstrap.servers": self.sasl, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": USERS[user]}

    def java_props(self, user: str) -> str:
        path = self.dir / f"{user}.properties"
        path.write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
            f'required username="{user}" password="{USERS[user]}";\n')
        return str(path)

    def acls(self, user: str, *args: str) -> Any:
        return self.target.tool(ACL_COMMAND, "--bootstrap-server", self.sasl,
                                "--command-config", self.java_props(user), *args)


@pytest.fixture(scope="module", params=["strom", "kafka"])
def secured(request: pytest.FixtureRequest, kafka_lib: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    base = tmp_path_factory.mktemp(f"acls-{request.param}")
    plain, sasl = free_port(), free_port()
    listeners = f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
    props = {
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # brokers (and, in Kafka, its controller) talk over PLAINTEXT as ANONYMOUS
        "super.users": "User:admin;User:ANONYMOUS",
    }
    if request.param == "strom":
        broker = BrokerProcess(base / "data", port=plain, overrides={
            "listeners": listeners,
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            **props}).start()
        stop = broker.stop
    else:
        controller = free_port()
        kafka = kafka_dist.KafkaBroker(base / "kafka", port=plain, controller_port=controller,
                                       overrides={
            "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": listeners,
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                              "SASL_PLAINTEXT:SASL_PLAINTEXT", **props})
        kafka.start()
        stop = kafka.stop
    secured = Secured(Target(request.param, f"127.0.0.1:{plain}", 1), f"127.0.0.1:{sasl}", base)
    admin = AdminClient({"bootstrap.servers": secured.target.bootstrap})
    for topic in ("mx-data", "mx-public", "mx-other"):
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=60)
    _grant(secured)
    yield secured
    stop()


def _grant(secured: Secured) -> None:
    """The ACLs of the matrix, added with kafka-acls.sh by the super user."""
    for args in (
        ["--allow-principal", "User:alice", "--operation", "Write", "--operation", "Describe",
         "--topic", "mx-", "--resource-pattern-type", "prefixed"],
        ["--allow-principal", "User:alice", "--operation", "Read", "--topic", "mx-data"],
        ["--allow-principal", "User:alice", "--operation", "Read", "--group", "mx-g",
         "--resource-pattern-type", "prefixed"],
        ["--allow-principal", "User:alice", "--operation", "Create", "--topic", "mx-new",
         "--resource-pattern-type", "prefixed"],
        ["--allow-principal", "User:*", "--operation", "Describe", "--topic", "mx-public"],
        ["--deny-principal", "User:bob", "--operation", "Describe", "--topic", "mx-public"],
        ["--allow-principal", "User:bob", "--operation", "Read", "--group", "*"],
        ["--allow-principal", "User:carol", "--operation", "Describe", "--cluster"],
    ):
        result = secured.acls("admin", "--add", "--force", *args)
        assert result.returncode == 0, result.stdout + result.stderr


def _name(error: Any) -> str:
    return ALLOWED if error is None else KafkaError(error.code()).name()


def _produce(conf: dict[str, Any], topic: str) -> str:
    producer = Producer({**conf, "message.timeout.ms": 15000})
    errors: list[Any] = []
    producer.produce(topic, b"v", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(30)
    return _name(errors[0] if errors else None)


def _consume(conf: dict[str, Any], topic: str, group: str) -> str:
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            return _name(msg.error())
        return "nothing"
    finally:
        consumer.close()


def _create(conf: dict[str, Any], topic: str) -> str:
    admin = AdminClient(conf)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    except KafkaException as exc:
        return _name(exc.args[0])
    return ALLOWED


def _visible(conf: dict[str, Any]) -> list[str]:
    topics = AdminClient(conf).list_topics(timeout=30).topics
    return sorted(t for t in topics if t.startswith("mx-") and not t.startswith("mx-new"))


def _cluster_ops(conf: dict[str, Any]) -> list[str]:
    """DescribeCluster's authorized operations (KIP-430)."""
    admin = AdminClient(conf)  # kept: a collected client fails its futures
    described = admin.describe_cluster(include_authorized_operations=True).result(timeout=30)
    return sorted(op.name for op in described.authorized_operations or [])


def _group_ops(conf: dict[str, Any], group: str) -> list[str]:
    admin = AdminClient(conf)
    described = admin.describe_consumer_groups(
        [group], include_authorized_operations=True)[group].result(timeout=30)
    return sorted(op.name for op in described.authorized_operations or [])


def test_the_matrix_answers_as_kafka_does(secured: Secured) -> None:
    new = f"mx-new-{uuid.uuid4().hex[:6]}"
    answers = {
        "alice produce mx-data": _produce(secured.conf("alice"), "mx-data"),
        "bob produce mx-data": _produce(secured.conf("bob"), "mx-data"),
        "alice consume mx-data in mx-g1": _consume(secured.conf("alice"), "mx-data", "mx-g1"),
        "alice consume mx-data in other": _consume(secured.conf("alice"), "mx-data", "other"),
        "bob consume mx-data in mx-g1": _consume(secured.conf("bob"), "mx-data", "mx-g1"),
        "alice create mx-new-*": _create(secured.conf("alice"), new),
        "bob create mx-new-*": _create(secured.conf("bob"), f"{new}-b"),
        "alice create mx-zzz": _create(secured.conf("alice"), f"mx-zzz-{new}"),
        "alice sees": _visible(secured.conf("alice")),
        "bob sees": _visible(secured.conf("bob")),
        "carol sees": _visible(secured.conf("carol")),
        "alice cluster ops": _cluster_ops(secured.conf("alice")),
        "carol cluster ops": _cluster_ops(secured.conf("carol")),
        "admin cluster ops": _cluster_ops(secured.conf("admin")),
        "alice group ops": _group_ops(secured.conf("alice"), "mx-g1"),
    }
    assert answers == {
        "alice produce mx-data": ALLOWED,
        "bob produce mx-data": "TOPIC_AUTHORIZATION_FAILED",
        "alice consume mx-data in mx-g1": ALLOWED,
        "alice consume mx-data in other": "GROUP_AUTHORIZATION_FAILED",
        "bob consume mx-data in mx-g1": "TOPIC_AUTHORIZATION_FAILED",
        "alice create mx-new-*": ALLOWED,
        "bob create mx-new-*": "TOPIC_AUTHORIZATION_FAILED",
        "alice create mx-zzz": "TOPIC_AUTHORIZATION_FAILED",
        "alice sees": ["mx-data", "mx-other", "mx-public"],
        "bob sees": [],
        "carol sees": ["mx-public"],
        "alice cluster ops": [],
        "carol cluster ops": ["DESCRIBE"],
        "admin cluster ops": ["ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE",
                              "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE"],
        "alice group ops": ["DESCRIBE", "READ"],
    }, secured.target.name


def test_kafka_acls_lists_and_refuses_as_kafka_does(secured: Secured) -> None:
    listed = secured.acls("admin", "--list", "--topic", "mx-public")
    assert listed.returncode == 0, listed.stderr
    assert "User:bob" in listed.stdout and "DENY" in listed.stdout
    assert "User:*" in listed.stdout and "ALLOW" in listed.stdout
    by_alice = secured.acls("alice", "--list")  # no Describe on the cluster
    assert "ClusterAuthorization" in by_alice.stdout + by_alice.stderr, secured.target.name
    by_carol = secured.acls("carol", "--list", "--topic", "mx-data")  # Describe on it
    assert by_carol.returncode == 0 and "User:alice" in by_carol.stdout, by_carol.stderr
    by_carol = secured.acls("carol", "--add", "--force", "--allow-principal", "User:carol",
                            "--operation", "Read", "--topic", "mx-data")  # no Alter
    assert "ClusterAuthorization" in by_carol.stdout + by_carol.stderr, secured.target.name
    removed = secured.acls("admin", "--remove", "--force", "--allow-principal", "User:alice",
                           "--operation", "Read", "--topic", "mx-data")
    assert removed.returncode == 0, removed.stderr
    assert _consume(secured.conf("alice"), "mx-data", "mx-g2") == "TOPIC_AUTHORIZATION_FAILED"


def test_java_idempotent_producer_needs_write(secured: Secured) -> None:
    """Kafka's console producer is idempotent: InitProducerId needs IdempotentWrite on the
    cluster or Write on some topic (alice has it, bob has not), then Write on the topic."""
    def produce(user: str) -> Any:
        return secured.target.tool("ConsoleProducer", "--bootstrap-server", secured.sasl,
                                   "--topic", "mx-data", "--command-config",
                                   secured.java_props(user), input="java-1\n", timeout=120)

    assert produce("alice").returncode == 0
    refused = produce("bob")
    assert "Authorization" in refused.stdout + refused.stderr, secured.target.name

"""ACLs through real clients: a broker with SASL_PLAINTEXT PLAIN users and the
authorizer on (Kafka's StandardAuthorizer class name), ACLs created, listed and deleted
with confluent-kafka's AdminClient by a super user, and an allowed/denied matrix of
produce, consume, create and describe for users with and without ACLs. A broker without
an authorizer answers the ACL APIs SECURITY_DISABLED.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from support.broker_process import BrokerProcess, free_port
from support.clients import unique_topic
from support.raw_client import RawClient, make_request

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret";')
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
DESCRIBE_ACLS, CLUSTER_AUTHORIZATION_FAILED, SECURITY_DISABLED = 29, 31, 54
TOPIC_AUTHORIZATION_FAILED = 29
ANY_FILTER = {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1,
              "permission_type": 1}


class Secured:
    def __init__(self, broker: BrokerProcess, port: int) -> None:
        self.broker, self.port = broker, port

    def conf(self, user: str) -> dict[str, Any]:
        return {"bootstrap.servers": f"127.0.0.1:{self.port}",
                "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": user, "sasl.password": PASSWORDS[user]}

    def admin(self, user: str) -> AdminClient:
        return AdminClient(self.conf(user))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    base = tmp_path_factory.mktemp("acls")
    sasl_port = free_port()
    plain_port = free_port()
    overrides = {
        "listeners": f"PLAINTEXT://127.0.0.1:{plain_port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
    }
    broker = BrokerProcess(base / "data", port=plain_port, overrides=overrides).start()
    yield Secured(broker, sasl_port)
    code = broker.stop()
    assert code == 0, f"broker exited with {code}; log:\n{broker.log_text()}"


def _create_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    for future in admin.create_acls(bindings).values():
        future.result(timeout=15)


def _topic(admin: AdminClient, name: str) -> None:
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)


def _produce(conf: dict[str, Any], topic: str) -> KafkaError | None:
    producer = Producer({**conf, "message.timeout.ms": 10000})
    errors: list[KafkaError] = []
    producer.produce(topic, b"v", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(20)
    return errors[0] if errors else None


def _consume(conf: dict[str, Any], topic: str, group: str) -> tuple[list[bytes], set[int]]:
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[bytes] = []
    errors: set[int] = set()
    try:
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                errors.add(msg.error().code())
                if msg.error().code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                          KafkaError.GROUP_AUTHORIZATION_FAILED):
                    break
            else:
                values.append(msg.value())
                break
    finally:
        consumer.close()
    return values, errors


def test_produce_and_consume_need_acls(secured: Secured) -> None:
    admin = secured.admin("admin")
    topic = unique_topic("acl-rw")
    _topic(admin, topic)
    assert _produce(secured.conf("alice"), topic).code() == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    _create_acls(admin, [
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.WRITE, ALLOW),
        AclBinding(ResourceType.TOPIC, "acl-rw", ResourcePatternType.PREFIXED, "User:alice",
                   "*", AclOperation.READ, ALLOW),
        AclBinding(ResourceType.GROUP, "g-alice", ResourcePatternType.PREFIXED, "User:alice",
                   "*", AclOperation.READ, ALLOW),
    ])
    assert _produce(secured.conf("alice"), topic) is None
    assert _produce(secured.conf("bob"), topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    values, _ = _consume(secured.conf("alice"), topic, "g-alice-1")
    assert values == [b"v"]
    _, errors = _consume(secured.conf("alice"), topic, "other-group")
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in errors
    _, errors = _consume(secured.conf("bob"), topic, "g-alice-2")
    assert errors & {KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED}


def test_a_fetch_without_read_is_refused_per_partition(secured: Secured) -> None:
    """Describe but not Read on the topic: metadata, offsets and the group work, the
    Fetch answers TOPIC_AUTHORIZATION_FAILED with empty (not null) records."""
    admin = secured.admin("admin")
    topic = unique_topic("acl-noread")
    _topic(admin, topic)
    assert _produce(secured.conf("admin"), topic) is None
    _create_acls(admin, [
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.DESCRIBE, ALLOW),
        AclBinding(ResourceType.GROUP, "g-noread", ResourcePatternType.LITERAL, "User:alice",
                   "*", AclOperation.READ, ALLOW)])
    values, errors = _consume(secured.conf("alice"), topic, "g-noread")
    assert (values, errors) == ([], {KafkaError.TOPIC_AUTHORIZATION_FAILED})


def test_deny_wins_over_allow(secured: Secured) -> None:
    admin = secured.admin("admin")
    topic = unique_topic("acl-deny")
    _topic(admin, topic)
    _create_acls(admin, [
        AclBinding(ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, "User:*", "*",
                   AclOperation.WRITE, ALLOW),
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:bob", "*",
                   AclOperation.WRITE, DENY),
    ])
    assert _produce(secured.conf("alice"), topic) is None
    assert _produce(secured.conf("bob"), topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    everyone = AclBindingFilter(ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, None,
                                None, AclOperation.ANY, AclPermissionType.ANY)
    admin.delete_acls([everyone])[everyone].result(timeout=15)
    assert _produce(secured.conf("alice"), topic).code() == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_metadata_lists_only_describable_topics(secured: Secured) -> None:
    admin = secured.admin("admin")
    seen, hidden = unique_topic("acl-seen"), unique_topic("acl-hidden")
    _topic(admin, seen)
    _topic(admin, hidden)
    _create_acls(admin, [AclBinding(ResourceType.TOPIC, seen, ResourcePatternType.LITERAL,
                                    "User:bob", "*", AclOperation.DESCRIBE, ALLOW)])
    topics = secured.admin("bob").list_topics(timeout=15).topics
    assert seen in topics and hidden not in topics
    assert {seen, hidden} <= set(admin.list_topics(timeout=15).topics)


def test_metadata_for_refused_topics_still_names_the_brokers(secured: Secured) -> None:
    """Every requested topic refused: the answer still carries the brokers and the
    cluster (the Java client otherwise loops on Metadata instead of failing)."""
    topic = unique_topic("acl-meta")
    _topic(secured.admin("admin"), topic)
    with RawClient(secured.broker.bootstrap) as raw:  # as User:ANONYMOUS: no ACLs
        for version in (1, 12):
            body = raw.request(3, version, make_request(3, version, {
                "topics": [{"name": topic}], "allow_auto_topic_creation": False})).body
            assert len(body.brokers) == 1 and body.controller_id >= 0
            assert [(t.name, t.error_code) for t in body.topics] == [
                (topic, TOPIC_AUTHORIZATION_FAILED)]


def test_creating_topics_needs_create(secured: Secured) -> None:
    name = unique_topic("acl-create")
    bob = secured.admin("bob")  # kept: a collected client fails its futures
    with pytest.raises(KafkaException) as refused:
        bob.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    _create_acls(secured.admin("admin"), [AclBinding(
        ResourceType.TOPIC, "acl-create", ResourcePatternType.PREFIXED, "User:bob", "*",
        AclOperation.CREATE, ALLOW)])
    bob.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)


def test_acl_admin_needs_the_cluster_and_lists_and_deletes(secured: Secured) -> None:
    admin = secured.admin("admin")
    binding = AclBinding(ResourceType.GROUP, "acl-admin-group", ResourcePatternType.LITERAL,
                         "User:carol", "10.1.2.3", AclOperation.DELETE, DENY)
    alice = secured.admin("alice")
    with pytest.raises(KafkaException) as refused:
        _create_acls(alice, [binding])
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    _create_acls(admin, [binding])
    wanted = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:carol",
                              None, AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(wanted).result(timeout=15) == [binding]
    # librdkafka drops DescribeAcls' top-level error: the raw answer, to User:ANONYMOUS
    with RawClient(secured.broker.bootstrap) as raw:
        body = raw.request(DESCRIBE_ACLS, 3, make_request(DESCRIBE_ACLS, 3, ANY_FILTER)).body
    assert (body.error_code, body.resources) == (CLUSTER_AUTHORIZATION_FAILED, ())
    deleted = admin.delete_acls([wanted])[wanted].result(timeout=15)
    assert deleted == [binding]
    assert admin.describe_acls(wanted).result(timeout=15) == []


def test_without_an_authorizer_acl_apis_are_security_disabled(admin: AdminClient,
                                                             broker: BrokerProcess) -> None:
    binding = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:a", "*",
                         AclOperation.READ, ALLOW)
    with pytest.raises(KafkaException) as refused:
        _create_acls(admin, [binding])
    assert refused.value.args[0].code() == KafkaError.SECURITY_DISABLED
    with RawClient(broker.bootstrap) as raw:
        body = raw.request(DESCRIBE_ACLS, 3, make_request(DESCRIBE_ACLS, 3, ANY_FILTER)).body
    assert body.error_code == SECURITY_DISABLED


def test_cli_creates_lists_and_deletes_acls(secured: Secured) -> None:
    from support.cli import strom, strom_json

    login = ["-b", f"127.0.0.1:{secured.port}", "-X", "security.protocol=SASL_PLAINTEXT",
             "-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=admin",
             "-X", "sasl.password=admin-secret"]
    topic = unique_topic("acl-cli")
    _topic(secured.admin("admin"), topic)
    assert _produce(secured.conf("bob"), topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    out = strom("acl", "create", "--principal", "User:bob", "-o", "Write", "-o", "Describe",
                "--topic", "acl-cli", "--pattern", "prefixed", *login).stdout
    assert "created ALLOW WRITE for User:bob on TOPIC acl-cli (PREFIXED)" in out
    assert _produce(secured.conf("bob"), topic) is None
    listed = strom_json("acl", "list", "--principal", "User:bob", "--topic", "acl-cli",
                        *login)
    assert sorted((r["operation"], r["pattern"], r["resource_name"]) for r in listed) == [
        ("DESCRIBE", "PREFIXED", "acl-cli"), ("WRITE", "PREFIXED", "acl-cli")]
    deleted = strom_json("acl", "delete", "--principal", "User:bob", "--topic", "acl-cli",
                         "-o", "Write", *login)
    assert [(r["operation"], r["permission"]) for r in deleted] == [("WRITE", "ALLOW")]
    assert _produce(secured.conf("bob"), topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_authorized_operations_are_reported_as_kafka_does(admin: AdminClient,
                                                          secured: Secured) -> None:
    """KIP-430: without an authorizer every supported operation; with one, those the
    principal may do (cluster, through Metadata for librdkafka; groups)."""
    every = {"ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE",
             "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE"}

    def cluster_ops(client: AdminClient) -> set[str]:
        described = client.describe_cluster(include_authorized_operations=True)
        return {op.name for op in described.result(timeout=15).authorized_operations or []}

    assert cluster_ops(admin) == every
    assert cluster_ops(secured.admin("admin")) == every  # a super user
    alice = secured.admin("alice")
    assert cluster_ops(alice) == set()
    _create_acls(secured.admin("admin"), [AclBinding(
        ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:alice", "*",
        AclOperation.ALTER, ALLOW)])
    assert cluster_ops(alice) == {"ALTER", "DESCRIBE"}  # Alter implies Describe

"""strom.client used as a library against a real broker: create a topic, produce,
consume, describe; failures as KafkaClientError with Kafka's name; and no broker
reported within seconds instead of at the request timeout."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicCollection, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic, OffsetSpec

from strom.client import BrokerUnreachableError, KafkaClientError, KafkaClients
from strom.client.admin import config_source, ensure_topic, list_offsets, results
from support.broker_process import BrokerProcess, free_port
from support.clients import unique_topic

pytestmark = pytest.mark.timeout(120)


def test_create_produce_consume_describe(broker: BrokerProcess) -> None:
    clients = KafkaClients(broker.bootstrap, client_id="library-test")
    topic = unique_topic("lib")
    assert ensure_topic(clients, topic, partitions=2, config={"retention.ms": "3600000"})
    assert not ensure_topic(clients, topic, partitions=2)  # exists: accepted, not recreated

    producer = clients.producer({"acks": "all", "enable.idempotence": True})
    for i in range(10):
        producer.produce(topic, b"value-%d" % i, key=b"k%d" % i, partition=i % 2)
    clients.flush(producer)

    consumer = clients.consumer({"group.id": unique_topic("g"), "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in (0, 1)])
    values = set()
    deadline = time.monotonic() + 30
    try:
        while len(values) < 10 and time.monotonic() < deadline:
            for msg in consumer.consume(10, 0.5):
                assert msg.error() is None, msg.error()
                values.add(msg.value())
            clients.check()
    finally:
        consumer.close()
    assert values == {b"value-%d" % i for i in range(10)}

    [info] = clients.topic_metadata([topic]).values()
    assert sorted(info.partitions) == [0, 1]
    admin = clients.admin()
    described = results(clients, admin.describe_topics(TopicCollection([topic]),
                                                       request_timeout=clients.timeout))
    assert len(described[topic].partitions) == 2
    ends = list_offsets(clients, {TopicPartition(topic, p): OffsetSpec.latest() for p in (0, 1)})
    assert ends == {(topic, 0): 5, (topic, 1): 5}
    configs = results(clients, admin.describe_configs([ConfigResource("TOPIC", topic)],
                                                      request_timeout=clients.timeout))
    [entries] = configs.values()
    assert entries["retention.ms"].value == "3600000"
    assert config_source(entries["retention.ms"]) == "DYNAMIC_TOPIC"
    assert config_source(entries["cleanup.policy"]) == "DEFAULT"


def test_broker_errors_carry_their_kafka_name(broker: BrokerProcess) -> None:
    clients = KafkaClients(broker.bootstrap)
    missing = unique_topic("missing")
    with pytest.raises(KafkaClientError) as caught:
        clients.topic_metadata([missing])
    assert caught.value.name == "UNKNOWN_TOPIC_OR_PART" and caught.value.resource == missing
    assert caught.value.message == f"topic {missing!r} does not exist"

    topic = unique_topic("dup")
    ensure_topic(clients, topic)
    with pytest.raises(KafkaClientError) as dup:
        results(clients, clients.admin().create_topics([NewTopic(topic, 1)],
                                                       request_timeout=clients.timeout))
    assert dup.value.name == "TOPIC_ALREADY_EXISTS" and dup.value.message.startswith(f"{topic}: ")
    assert not dup.value.retriable

    with pytest.raises(KafkaClientError) as bad:
        ensure_topic(clients, unique_topic("bad"), config={"retention.ms": "soon"})
    assert bad.value.name == "INVALID_CONFIG" and bad.value.hint


def test_no_broker_fails_fast_and_retriable() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens here
    clients = KafkaClients(address, timeout=30)
    started = time.monotonic()
    with pytest.raises(BrokerUnreachableError) as caught:
        clients.list_topics()
    elapsed = time.monotonic() - started
    error = caught.value
    assert elapsed < 10, f"took {elapsed:.1f} s, the timeout is 30 s"
    assert error.name == "_TRANSPORT" and error.retriable
    assert error.message == f"cannot reach a broker at {address}: Connection refused"
    assert error.hint is not None and address in error.hint

    producer = clients.producer({"message.timeout.ms": 30_000})
    producer.produce("anything", b"x")
    started = time.monotonic()
    with pytest.raises(BrokerUnreachableError):
        clients.flush(producer)
    assert time.monotonic() - started < 10

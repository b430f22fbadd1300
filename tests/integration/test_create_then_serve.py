"""A topic is usable through real clients right after CreateTopics answers, although its
logs are created after the answer (as Kafka's brokers do when they apply the metadata):
Metadata shows it at once, a raw Produce gets either its offset or a retriable error,
real producers retry until they deliver, and a crash between the answer and the logs is
completed by the next start with nothing lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess, wait_until
from support.raw_client import RawClient, produce, record_batch

TIMEOUT = 60.0
PARTITIONS = 1000
LAST = PARTITIONS - 1


def _create(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)], request_timeout=TIMEOUT)[name].result(
        TIMEOUT)


def _leaders(client: RawClient, name: str) -> list[int]:
    response = client.request(3, 12, topics=[{"name": name}], allow_auto_topic_creation=False)
    [topic] = response.body.topics
    assert topic.error_code == ErrorCode.none, topic
    return [int(p.leader_id) for p in topic.partitions]


def _deliver(bootstrap: str, name: str, partitions: list[int]) -> None:
    """librdkafka retries a retriable error until message.timeout.ms."""
    errors: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.timeout.ms": int(TIMEOUT * 1000)})
    for p in partitions:
        producer.produce(name, f"p{p}".encode(), partition=p,
                         on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert producer.flush(TIMEOUT) == 0
    assert errors == []


def _read_one(bootstrap: str, name: str, partition: int) -> bytes:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{name}-{partition}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(name, partition, 0)])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                return bytes(message.value() or b"")
        raise AssertionError(f"nothing read back from {name}-{partition}")
    finally:
        consumer.close()


def test_a_created_topic_is_in_metadata_at_once_and_serves_once_its_logs_exist(
        broker: BrokerProcess) -> None:
    _create(broker.bootstrap, "fresh")
    with RawClient(broker.bootstrap, timeout=TIMEOUT) as client:
        assert _leaders(client, "fresh") == [0] * PARTITIONS
        first = produce(client, "fresh", record_batch([b"raw"]), partition=LAST)
        assert first.error_code in (ErrorCode.none, ErrorCode.unknown_topic_or_partition)

        def appended() -> bool:
            entry = produce(client, "fresh", record_batch([b"raw"]), partition=LAST)
            assert entry.error_code in (ErrorCode.none, ErrorCode.unknown_topic_or_partition)
            return entry.error_code == ErrorCode.none

        wait_until(appended, TIMEOUT, "the last partition's log exists")
    _deliver(broker.bootstrap, "fresh", [0, 500, LAST])
    assert _read_one(broker.bootstrap, "fresh", 500) == b"p500"


def test_a_crash_right_after_the_answer_is_completed_at_the_next_start(
        tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data").start()
    try:
        _create(proc.bootstrap, "before-crash")
        proc.kill(signal.SIGKILL)
        proc.start()
        with RawClient(proc.bootstrap, timeout=TIMEOUT) as client:
            assert _leaders(client, "before-crash") == [0] * PARTITIONS
        _deliver(proc.bootstrap, "before-crash", [0, LAST])
        assert _read_one(proc.bootstrap, "before-crash", LAST) == f"p{LAST}".encode()
        assert proc.stop() == 0
        proc.start()  # the acknowledged records survive a clean restart too
        assert _read_one(proc.bootstrap, "before-crash", LAST) == f"p{LAST}".encode()
    finally:
        proc.stop()

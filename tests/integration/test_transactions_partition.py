"""The partition side of transactions through real clients: open transactions hold the
last stable offset, aborted records never reach read_committed consumers (before and
after a restart, and after the cleaner ran), read_uncommitted consumers see everything."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.clients import create_topic, unique_topic

pytestmark = [pytest.mark.timeout(240)]

TXN_BROKER = {"transaction.state.log.replication.factor": "1",
              "transaction.state.log.min.isr": "1", "log.cleaner.backoff.ms": "100"}


def read_all(bootstrap: str, topic: str, isolation: str, settle_s: float = 3.0) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("reader"),
                         "isolation.level": isolation, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    idle_until = time.monotonic() + settle_s
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < min(idle_until, deadline):
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(message.value())
                idle_until = time.monotonic() + settle_s
    finally:
        consumer.close()
    return got


def scrape(broker: Any) -> dict[str, float]:
    """Unlabelled and labelled samples of the broker's /metrics, by their exposition name."""
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return {name: float(value) for name, _, value in
            (line.rpartition(" ") for line in lines if line and not line.startswith("#"))}


def watermarks(bootstrap: str, topic: str, isolation: str) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm",
                         "isolation.level": isolation})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(low), int(high)
    finally:
        consumer.close()


def transactional(bootstrap: str, txn_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "linger.ms": 1})
    producer.init_transactions(30)
    return producer


def send(producer: Producer, topic: str, values: list[bytes], key: bytes | None = None) -> None:
    for value in values:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0  # on the broker before the transaction ends


def test_open_transactions_hold_read_committed_consumers_back(broker_factory: Any) -> None:
    broker = broker_factory(TXN_BROKER)
    topic = create_topic(broker.bootstrap, unique_topic("lso"), 1)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, b"before")
    plain.flush(30)
    producer = transactional(broker.bootstrap, unique_topic("txn"))
    producer.begin_transaction()
    send(producer, topic, [b"t1", b"t2"])
    plain.produce(topic, b"during")
    plain.flush(30)

    assert watermarks(broker.bootstrap, topic, "read_committed")[1] == 1
    assert watermarks(broker.bootstrap, topic, "read_uncommitted")[1] == 4
    metrics = scrape(broker)
    assert metrics["strom_open_transactions"] == 1.0
    assert metrics[f'strom_last_stable_offset_lag{{partition="0",topic="{topic}"}}'] == 3.0
    assert read_all(broker.bootstrap, topic, "read_committed") == [b"before"]
    assert read_all(broker.bootstrap, topic, "read_uncommitted") == [b"before", b"t1", b"t2",
                                                                     b"during"]
    producer.commit_transaction(30)
    assert read_all(broker.bootstrap, topic, "read_committed") == [b"before", b"t1", b"t2",
                                                                   b"during"]
    assert watermarks(broker.bootstrap, topic, "read_committed")[1] == 5  # past the marker


def _rounds(bootstrap: str, topic: str, rounds: int = 6) -> list[bytes]:
    """Transactions of four records each, odd ones aborted; the committed values."""
    producer = transactional(bootstrap, unique_topic("txn"))
    expected: list[bytes] = []
    for round_ in range(rounds):
        producer.begin_transaction()
        values = [b"r%d-%d-" % (round_, i) + b"x" * 100 for i in range(4)]
        send(producer, topic, values, key=b"k%d" % round_)
        if round_ % 2:
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
            expected += values
    return expected


def test_aborted_records_stay_hidden_across_a_restart(broker_factory: Any) -> None:
    broker = broker_factory(TXN_BROKER)
    topic = create_topic(broker.bootstrap, unique_topic("aborted"), 1)
    expected = _rounds(broker.bootstrap, topic)
    assert len(read_all(broker.bootstrap, topic, "read_uncommitted")) == 24, "all in the log"
    assert read_all(broker.bootstrap, topic, "read_committed") == expected
    broker.stop()
    broker = broker_factory(TXN_BROKER)
    assert read_all(broker.bootstrap, topic, "read_committed") == expected
    assert len(read_all(broker.bootstrap, topic, "read_uncommitted")) == 24


def test_the_cleaner_removes_aborted_records(broker_factory: Any) -> None:
    broker = broker_factory(TXN_BROKER)
    topic = create_topic(broker.bootstrap, unique_topic("aborted-compact"), 1,
                         {"cleanup.policy": "compact", "segment.bytes": "1024",
                          "min.cleanable.dirty.ratio": "0.01"})
    expected = _rounds(broker.bootstrap, topic)
    # rolls the last transaction's segment so that everything before it is cleanable
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, b"z" * 1100, b"pad")
    plain.flush(30)
    deadline = time.monotonic() + 60
    survivors = read_all(broker.bootstrap, topic, "read_uncommitted", settle_s=1.0)
    while time.monotonic() < deadline and any(b"r1-" in v or b"r3-" in v for v in survivors):
        time.sleep(0.5)
        survivors = read_all(broker.bootstrap, topic, "read_uncommitted", settle_s=1.0)
    aborted = [v for v in survivors if v.startswith((b"r1-", b"r3-", b"r5-"))]
    assert aborted == [], "the cleaner keeps no aborted record"
    committed = read_all(broker.bootstrap, topic, "read_committed")
    assert committed[-1] == b"z" * 1100
    latest = {v[:2]: v for v in committed if v.startswith(b"r")}
    assert latest == {b"r0": expected[3], b"r2": expected[7], b"r4": expected[11]}

"""`strom.testing`: a broker in the test process, used as an application's tests use it.

Real confluent-kafka clients against `StromBroker` (produce, consume, a group's commit, a
restart, two brokers at once), failures surfacing in `start()`, and the pytest plugin
run by a generated test file in a fresh pytest process, as it is installed.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from strom.config.defs import InvalidConfig
from strom.testing import StromBroker

pytest_plugins = ["pytester"]

TIMEOUT_S = 30.0


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(TIMEOUT_S) == 0


def consume(bootstrap: str, topic: str, count: int, group: str | None = None,
            commit: bool = False) -> list[bytes]:
    """`count` values from the start of partition 0 (a group's position when `group`)."""
    conf = {"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "group.id": group or "unused"}
    consumer = Consumer(conf)
    if group:
        consumer.subscribe([topic])
    else:
        consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value() or b"")
        if commit:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)
        return int(tp.offset)
    finally:
        consumer.close()


def broker_threads() -> list[threading.Thread]:
    """Broker threads this test started: a session-scoped `strom_broker` fixture (the
    plugin's, used by other suites) may be running beside them."""
    return [t for t in threading.enumerate()
            if t.name.startswith("strom-broker-") and t not in _SESSION_THREADS]


_SESSION_THREADS: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def _ignore_running_brokers() -> None:
    _SESSION_THREADS.clear()
    _SESSION_THREADS.update(t for t in threading.enumerate()
                            if t.name.startswith("strom-broker-"))


@pytest.fixture
def broker() -> Iterator[StromBroker]:
    with StromBroker() as started:
        yield started


def test_produce_and_consume(broker: StromBroker) -> None:
    broker.create_topic("orders", partitions=3, config={"retention.ms": 86_400_000})
    values = [f"order-{i}".encode() for i in range(100)]
    produce(broker.bootstrap_servers, "orders", values)
    assert consume(broker.bootstrap_servers, "orders", 100) == values
    with pytest.raises(KafkaException, match="TOPIC_ALREADY_EXISTS"):
        broker.create_topic("orders")


def test_consumer_group_commit(broker: StromBroker) -> None:
    broker.create_topic("payments")
    produce(broker.bootstrap_servers, "payments", [b"a", b"b", b"c"])
    assert consume(broker.bootstrap_servers, "payments", 3, group="billing", commit=True) \
        == [b"a", b"b", b"c"]
    assert committed(broker.bootstrap_servers, "billing", "payments") == 3


def test_restart_keeps_topics_records_and_offsets(broker: StromBroker) -> None:
    broker.create_topic("ledger")
    produce(broker.bootstrap_servers, "ledger", [b"1", b"2"])
    consume(broker.bootstrap_servers, "ledger", 1, group="auditors", commit=True)
    bootstrap, data_dir = broker.bootstrap_servers, broker.data_dir

    broker.restart()

    assert (broker.bootstrap_servers, broker.data_dir) == (bootstrap, data_dir)
    assert consume(bootstrap, "ledger", 2) == [b"1", b"2"]
    assert committed(bootstrap, "auditors", "ledger") >= 1
    produce(bootstrap, "ledger", [b"3"])  # and it still takes writes
    assert consume(bootstrap, "ledger", 3) == [b"1", b"2", b"3"]


def test_two_brokers_in_one_process() -> None:
    with StromBroker() as first, StromBroker() as second:
        assert first.bootstrap_servers != second.bootstrap_servers
        assert first.data_dir != second.data_dir
        for broker, value in ((first, b"one"), (second, b"two")):
            broker.create_topic("shared-name")
            produce(broker.bootstrap_servers, "shared-name", [value])
        assert consume(first.bootstrap_servers, "shared-name", 1) == [b"one"]
        assert consume(second.bootstrap_servers, "shared-name", 1) == [b"two"]
        assert len(broker_threads()) == 2
    assert broker_threads() == []


def test_port_in_use_fails_start_and_leaves_nothing_behind() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = StromBroker(port=taken.getsockname()[1])
        with pytest.raises(OSError) as raised:
            broker.start()
    assert raised.value.errno == errno.EADDRINUSE
    assert not broker.running and broker_threads() == []
    assert broker.data_dir is None  # the temporary dir of the failed start is gone


def test_invalid_property_fails_start() -> None:
    with pytest.raises(InvalidConfig, match=r"num\.partitions"):
        StromBroker(properties={"num.partitions": "many"}).start()


def test_data_dir_lifetime(tmp_path: Path) -> None:
    temporary = StromBroker()
    with temporary:
        made = temporary.data_dir
        assert made is not None and made.is_dir()
    assert not made.exists()

    with StromBroker(keep_data=True) as kept:
        kept_dir = kept.data_dir
    assert kept_dir is not None and (kept_dir / "meta.properties").exists()
    shutil.rmtree(kept_dir)

    given = tmp_path / "mine"
    with StromBroker(data_dir=given, properties={"num.partitions": 2}) as broker:
        broker.create_topic("auto-sized", partitions=2)
    assert (given / "auto-sized-1").is_dir()  # a dir the caller gave is never removed


def test_stop_is_idempotent_and_start_again_works() -> None:
    broker = StromBroker()
    broker.start()
    broker.stop()
    broker.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = broker.bootstrap_servers
    with broker:
        broker.create_topic("again")


def test_importing_the_plugin_loads_no_broker_code() -> None:
    probe = ("import sys, strom.testing.pytest_plugin; "
             "print(sorted(m for m in sys.modules if m.startswith(('strom.broker', "
             "'strom.storage', 'confluent_kafka'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


PLUGIN_USER = '''
from confluent_kafka import Consumer, Producer, TopicPartition


def test_session_broker(strom_bootstrap, strom_broker):
    assert strom_bootstrap == strom_broker.bootstrap_servers
    strom_broker.create_topic("events")
    producer = Producer({"bootstrap.servers": strom_bootstrap})
    producer.produce("events", b"hello")
    assert producer.flush(30) == 0


def test_same_session_broker(strom_broker):
    consumer = Consumer({"bootstrap.servers": strom_broker.bootstrap_servers,
                         "group.id": "reader"})
    consumer.assign([TopicPartition("events", 0, 0)])
    msg = consumer.poll(30)
    consumer.close()
    assert msg is not None and msg.value() == b"hello"


def test_own_brokers(strom_broker_factory, strom_bootstrap):
    mine = strom_broker_factory(properties={"auto.create.topics.enable": False})
    assert mine.bootstrap_servers != strom_bootstrap
    mine.restart()
    assert mine.running
'''


def test_pytest_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=PLUGIN_USER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    result.assert_outcomes(passed=3)

"""`strom txn list|describe|describe-producers|abort|find-hanging` against a broker
process, with real confluent-kafka transactional producers run in child processes and
SIGKILLed in the middle of a transaction.

A killed producer's transaction is listed and described as Ongoing and its start offset
shows in the partition's producers; `abort --start-offset` ends it in the partition, so
read_committed consumers move past it. A transaction whose coordinator lost its state
(the `__transaction_state` logs removed while the broker was down) is what Kafka calls
hanging: `find-hanging` reports it once it is older than the timeout given, and `abort`
by producer id and epochs ends it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.broker_process import BrokerProcess
from support.cli import strom, strom_json, table, unique
from support.clients import create_topic

pytestmark = [pytest.mark.timeout(300)]

TXN_BROKER = {"transaction.state.log.replication.factor": "1",
              "transaction.state.log.min.isr": "1"}

# A transactional producer that writes three records in a transaction and waits to be
# killed; the timeout keeps the coordinator from aborting it during the test.
PRODUCER = """
import sys, time
from confluent_kafka import Producer
bootstrap, txn_id, topic = sys.argv[1:4]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
              "transaction.timeout.ms": 900000, "linger.ms": 1})
p.init_transactions(30)
p.begin_transaction()
for i in range(3):
    p.produce(topic, b"txn-%d" % i, partition=0)
assert p.flush(30) == 0
print("ready", flush=True)
time.sleep(600)
"""


def killed_mid_transaction(bootstrap: str, txn_id: str, topic: str) -> None:
    """Run PRODUCER in a child process until its records are written, then SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-c", PRODUCER, bootstrap, txn_id, topic],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", f"producer failed: {line}{child.stderr.read()}"  # type: ignore[union-attr]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)


def produce_plain(bootstrap: str, topic: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0


def stable_end(bootstrap: str, topic: str) -> int:
    """The end offset read_committed consumers see: the last stable offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso",
                         "isolation.level": "read_committed"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def read_committed(bootstrap: str, topic: str, end: int) -> list[bytes]:
    """The values a read_committed consumer gets from offset 0 until it reaches `end`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
            [position] = consumer.position([TopicPartition(topic, 0)])
            if position.offset >= end:
                break
    finally:
        consumer.close()
    return values


def open_transaction(b: tuple[str, str], topic: str) -> dict[str, Any]:
    [producer] = [p for p in strom_json("txn", "describe-producers", "--topic", topic,
                                        "--partition", "0", *b)["producers"]
                  if p["current_txn_start_offset"] is not None]
    return producer  # type: ignore[no-any-return]


def test_a_killed_producers_transaction_is_listed_described_and_aborted(
        broker_factory: Any) -> None:
    broker: BrokerProcess = broker_factory(TXN_BROKER)
    b = ("-b", broker.bootstrap)
    topic, txn_id = create_topic(broker.bootstrap, unique("txn-cli"), 1), unique("tid")
    produce_plain(broker.bootstrap, topic, b"before")
    killed_mid_transaction(broker.bootstrap, txn_id, topic)
    produce_plain(broker.bootstrap, topic, b"after")

    [listed] = [t for t in strom_json("txn", "list", *b) if t["transactional_id"] == txn_id]
    assert listed["state"] == "Ongoing" and listed["coordinator"] == 0
    pid = listed["producer_id"]
    assert [t["transactional_id"] for t in strom_json("txn", "list", "--state", "ongoing",
                                                      "--producer-id", str(pid), *b)] == [txn_id]
    assert txn_id not in {t["transactional_id"]
                          for t in strom_json("txn", "list", "--state", "CompleteCommit", *b)}
    assert txn_id in strom("txn", "list", *b).stdout
    assert [t["transactional_id"] for t in strom_json(
        "txn", "list", "--transactional-id-pattern", f"{txn_id[:6]}.*", *b)] == [txn_id]
    assert strom_json("txn", "list", "--duration-filter", "3600000", *b) == [], "open < 1 h"

    described = strom_json("txn", "describe", "--transactional-id", txn_id, *b)
    assert described["state"] == "Ongoing" and described["producer_id"] == pid
    assert described["partitions"] == [{"topic": topic, "partition": 0}]
    assert described["timeout_ms"] == 900000 and described["start_time_ms"] > 0
    text = strom("txn", "describe", "--transactional-id", txn_id, *b).stdout
    assert "Ongoing" in text and topic in text

    producer = open_transaction(b, topic)
    assert producer["producer_id"] == pid and producer["current_txn_start_offset"] == 1
    [row] = [r for r in table(strom("txn", "describe-producers", "-t", topic, "-p", "0",
                                    *b).stdout) if r["TXN-START-OFFSET"] != "-"]
    assert row["PRODUCER-ID"] == str(pid) and row["TXN-START-OFFSET"] == "1"

    # its coordinator still counts the partition in: not hanging, however old
    assert strom_json("txn", "find-hanging", "--topic", topic, "--max-transaction-timeout",
                      "0", *b) == []

    assert stable_end(broker.bootstrap, topic) == 1, "the open transaction holds the LSO"
    wrong = strom("txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "2",
                  *b, check=False)
    assert wrong.returncode == 1 and "no open transaction starts at offset 2" in wrong.stderr

    aborted = strom_json("txn", "abort", "--topic", topic, "--partition", "0",
                         "--start-offset", "1", *b)
    assert aborted["status"] == "aborted" and aborted["producer_id"] == pid
    assert stable_end(broker.bootstrap, topic) == 6, "past before, 3 records, after, marker"
    assert read_committed(broker.bootstrap, topic, 6) == [b"before", b"after"]
    assert all(p["current_txn_start_offset"] is None
               for p in strom_json("txn", "describe-producers", "--topic", topic,
                                   "--partition", "0", *b)["producers"])


def test_a_hanging_transaction_is_found_and_aborted(broker_factory: Any) -> None:
    broker: BrokerProcess = broker_factory(TXN_BROKER)
    b = ("-b", broker.bootstrap)
    topic, txn_id = create_topic(broker.bootstrap, unique("hanging"), 1), unique("tid")
    killed_mid_transaction(broker.bootstrap, txn_id, topic)
    pid = open_transaction(b, topic)["producer_id"]

    # the coordinator loses its state: nobody will ever end this transaction
    assert broker.stop() == 0
    removed = [d for d in broker.data_dir.iterdir() if d.name.startswith("__transaction_state-")]
    assert removed
    for directory in removed:
        shutil.rmtree(directory)
    broker.start()
    assert txn_id not in {t["transactional_id"] for t in strom_json("txn", "list", *b)}
    assert stable_end(broker.bootstrap, topic) == 0

    assert strom_json("txn", "find-hanging", "--broker-id", "0", *b) == [], \
        "younger than the default 15 minutes"
    [hanging] = strom_json("txn", "find-hanging", "--broker-id", "0",
                           "--max-transaction-timeout", "0", *b)
    assert (hanging["topic"], hanging["partition"], hanging["producer_id"],
            hanging["current_txn_start_offset"]) == (topic, 0, pid, 0)
    rows = table(strom("txn", "find-hanging", "--topic", topic, "--max-transaction-timeout",
                       "0", *b).stdout)
    assert [(r["TOPIC"], r["START-OFFSET"]) for r in rows] == [(topic, "0")]

    strom("txn", "abort", "--topic", topic, "--partition", "0", "--producer-id", str(pid),
          "--producer-epoch", str(hanging["producer_epoch"]), "--coordinator-epoch",
          str(hanging["coordinator_epoch"] if hanging["coordinator_epoch"] is not None else -1),
          *b)
    assert stable_end(broker.bootstrap, topic) == 4
    assert read_committed(broker.bootstrap, topic, 4) == []
    assert strom_json("txn", "find-hanging", "--broker-id", "0",
                      "--max-transaction-timeout", "0", *b) == []


def test_errors_are_one_line(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    missing = strom("txn", "describe", "--transactional-id", unique("nobody"), *b, check=False)
    assert missing.returncode == 1
    assert "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr and "Traceback" not in missing.stderr
    assert "strom txn list" in missing.stderr  # the hint names the command that helps
    unknown = strom("txn", "describe-producers", "--topic", unique("absent"), "--partition",
                    "0", *b, check=False)
    assert unknown.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in unknown.stderr
    scope = strom("txn", "find-hanging", *b, check=False)
    assert scope.returncode == 1 and "--topic or --broker-id" in scope.stderr
    assert strom_json("txn", "list", "--state", "Ongoing", *b) == []
    down = strom("txn", "list", "-b", "127.0.0.1:1", check=False)
    assert down.returncode == 1 and "_ALL_BROKERS_DOWN" in down.stderr

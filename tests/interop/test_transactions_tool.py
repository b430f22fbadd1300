"""`strom txn` next to Kafka 4.4's own `kafka-transactions.sh` (TransactionsCommand), on
Strom and on Apache Kafka as the oracle: for one open transaction of a confluent-kafka
producer, `list`, `describe` and `describe-producers` report the same values as Kafka's
tool, and after `strom txn abort --start-offset` Kafka's tool sees no open transaction
left in the partition. Against the Kafka broker this also checks `strom txn`'s protocol
client on a real Kafka."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from support.cli import strom_json
from support.clients import create_topic
from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


def kafka_tool(target: Target, *args: str) -> list[dict[str, str]]:
    """Rows of a TransactionsCommand table (cells padded and separated by tabs)."""
    out = target.tool_ok("TransactionsCommand", "--bootstrap-server", target.bootstrap, *args)
    lines = [line for line in out.splitlines() if "\t" in line]
    header = [cell.strip() for cell in lines[0].rstrip().split("\t")]
    return [dict(zip(header, (cell.strip() for cell in line.rstrip().split("\t")), strict=True))
            for line in lines[1:]]


def none_as(value: object, missing: str) -> str:
    return missing if value is None else str(value)


def test_strom_txn_agrees_with_kafka_transactions_tool(target: Target) -> None:
    topic = create_topic(target.bootstrap, f"txn-tool-{uuid.uuid4().hex[:8]}", 1)
    txn_id = f"tid-{uuid.uuid4().hex[:8]}"
    b = ("-b", target.bootstrap)
    producer = Producer({"bootstrap.servers": target.bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 120_000})
    producer.init_transactions(60)
    producer.begin_transaction()
    for i in range(2):
        producer.produce(topic, b"v%d" % i, partition=0)
    assert producer.flush(30) == 0
    try:
        ours = strom_json("txn", "describe-producers", "--topic", topic, "--partition", "0",
                          *b)["producers"]
        theirs = kafka_tool(target, "describe-producers", "--topic", topic, "--partition", "0")
        assert [{"ProducerId": str(p["producer_id"]), "ProducerEpoch": str(p["producer_epoch"]),
                 "LatestCoordinatorEpoch": none_as(p["coordinator_epoch"], "-1"),
                 "LastSequence": str(p["last_sequence"]),
                 "LastTimestamp": str(p["last_timestamp"]),
                 "CurrentTransactionStartOffset": none_as(p["current_txn_start_offset"], "None")}
                for p in ours] == theirs
        [open_txn] = [p for p in ours if p["current_txn_start_offset"] is not None]

        described = strom_json("txn", "describe", "--transactional-id", txn_id, *b)
        [row] = kafka_tool(target, "describe", "--transactional-id", txn_id)
        assert (row["CoordinatorId"], row["ProducerId"], row["ProducerEpoch"],
                row["TransactionState"], row["TransactionTimeoutMs"],
                row["CurrentTransactionStartTimeMs"], row["TopicPartitions"]) == (
            str(described["coordinator"]), str(described["producer_id"]),
            str(described["producer_epoch"]), described["state"],
            str(described["timeout_ms"]), str(described["start_time_ms"]), f"{topic}-0")

        [listed] = [t for t in strom_json("txn", "list", *b) if t["transactional_id"] == txn_id]
        [kafka_listed] = [r for r in kafka_tool(target, "list")
                          if r["TransactionalId"] == txn_id]
        assert (kafka_listed["Coordinator"], kafka_listed["ProducerId"],
                kafka_listed["TransactionState"]) == (
            str(listed["coordinator"]), str(listed["producer_id"]), listed["state"])

        strom_json("txn", "abort", "--topic", topic, "--partition", "0", "--start-offset",
                   str(open_txn["current_txn_start_offset"]), *b)
        after = kafka_tool(target, "describe-producers", "--topic", topic, "--partition", "0")
        assert {r["CurrentTransactionStartOffset"] for r in after} == {"None"}
    finally:
        producer.abort_transaction(60)

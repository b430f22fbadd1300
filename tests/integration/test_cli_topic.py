"""`strom topic create|list|describe|delete|add-partitions|alter-config` against a live
broker, checked in text and through `--format json`; errors as one line with the Kafka
error name and a hint; a missing broker reported within seconds."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from support.broker_process import BrokerProcess, free_port
from support.cli import strom, strom_json, table, unique

pytestmark = pytest.mark.timeout(300)


def test_create_list_describe_delete(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    orders, audit = unique("orders"), unique("audit")
    created = strom("topic", "create", orders, audit, "-p", "3", "-c", "retention.ms=3600000", *b)
    assert {r["TOPIC"]: r["STATUS"] for r in table(created.stdout)} == {
        orders: "created", audit: "created"}

    listed = {t["name"]: t for t in strom_json("topic", "list", *b)}
    assert listed[orders] == {"name": orders, "partitions": 3, "replication_factor": 1,
                              "internal": False}
    assert not any(name.startswith("__") for name in listed)
    rows = {r["NAME"]: r for r in table(strom("topic", "list", *b).stdout)}
    assert rows[audit]["PARTITIONS"] == "3" and rows[audit]["REPLICAS"] == "1"
    only = strom_json("topic", "list", "--regex", f"^{orders}$", *b)
    assert [t["name"] for t in only] == [orders]

    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(7):
        producer.produce(orders, b"v%d" % i, partition=1)
    assert producer.flush(30) == 0

    [described] = strom_json("topic", "describe", orders, *b)
    assert described["name"] == orders and described["internal"] is False
    assert len(described["topic_id"]) == 22
    parts = {p["partition"]: p for p in described["partitions"]}
    assert sorted(parts) == [0, 1, 2]
    assert parts[1] == {"partition": 1, "leader": 0, "replicas": [0], "isr": [0],
                        "low_watermark": 0, "high_watermark": 7, "records": 7}
    assert parts[0]["high_watermark"] == 0
    configs = {c["name"]: c for c in described["configs"]}
    assert configs["retention.ms"]["value"] == "3600000"
    assert configs["retention.ms"]["source"] == "DYNAMIC_TOPIC"
    assert configs["cleanup.policy"] == {"name": "cleanup.policy", "value": "delete",
                                         "source": "DEFAULT", "read_only": False,
                                         "sensitive": False}

    text = strom("topic", "describe", orders, *b).stdout
    assert f"NAME        {orders}" in text
    assert "HIGH-WATERMARK" in text and "retention.ms" in text and "DYNAMIC_TOPIC" in text

    deleted = strom_json("topic", "delete", orders, audit, *b)
    assert deleted == [{"topic": orders, "status": "deleted", "error": None},
                       {"topic": audit, "status": "deleted", "error": None}]
    remaining = {t["name"] for t in strom_json("topic", "list", *b)}
    assert orders not in remaining and audit not in remaining


def test_add_partitions_and_alter_config(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("grow")
    strom("topic", "create", topic, "-p", "2", *b)
    assert strom_json("topic", "add-partitions", topic, "--num", "2", *b) == [
        {"topic": topic, "status": "done", "error": None}]
    strom("topic", "add-partitions", topic, "--to", "5", *b)
    [described] = strom_json("topic", "describe", topic, *b)
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2, 3, 4]

    altered = strom("topic", "alter-config", topic, "--set", "retention.ms=60000",
                    "--set", "max.message.bytes=2000000", *b)
    assert table(altered.stdout) == [{"TOPIC": topic, "STATUS": "altered"}]
    configs = {c["name"]: c for c in strom_json("topic", "describe", topic, *b)[0]["configs"]}
    assert configs["retention.ms"]["value"] == "60000"
    assert configs["max.message.bytes"]["value"] == "2000000"

    strom("topic", "alter-config", topic, "--delete", "retention.ms", *b)
    configs = {c["name"]: c for c in strom_json("topic", "describe", topic, *b)[0]["configs"]}
    assert configs["retention.ms"]["source"] == "DEFAULT"
    assert configs["max.message.bytes"]["source"] == "DYNAMIC_TOPIC"

    dry = strom_json("topic", "alter-config", topic, "--set", "retention.ms=1", "--dry-run", *b)
    assert dry == [{"topic": topic, "status": "validated", "error": None}]
    configs = {c["name"]: c for c in strom_json("topic", "describe", topic, *b)[0]["configs"]}
    assert configs["retention.ms"]["source"] == "DEFAULT"


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_errors_are_one_line_with_the_kafka_name_and_a_hint(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("dup")
    strom("topic", "create", topic, *b)

    again = strom("topic", "create", topic, *b, check=False)
    assert again.returncode == 1
    line = _one_error_line(again.stderr)
    assert line.startswith("strom: error: TOPIC_ALREADY_EXISTS:") and "Hint:" in line
    assert topic in line and "--if-not-exists" in line
    tolerated = strom_json("topic", "create", topic, "--if-not-exists", *b)
    assert tolerated == [{"topic": topic, "status": "exists", "error": None}]

    missing = strom("topic", "describe", unique("nope"), *b, check=False)
    assert missing.returncode == 1
    assert "UNKNOWN_TOPIC_OR_PART" in _one_error_line(missing.stderr)

    shrink = strom("topic", "add-partitions", topic, "--to", "1", *b, check=False)
    assert shrink.returncode == 1 and "INVALID_PARTITIONS" in shrink.stderr

    bad = strom("topic", "alter-config", topic, "--set", "retention.ms=soon", *b, check=False)
    assert bad.returncode == 1 and "INVALID_CONFIG" in bad.stderr and "Hint:" in bad.stderr

    too_many = strom("topic", "create", unique("rf"), "-r", "3", *b, check=False)
    assert too_many.returncode == 1
    assert "INVALID_REPLICATION_FACTOR" in _one_error_line(too_many.stderr)

    usage = strom("topic", "alter-config", topic, *b, check=False)
    assert usage.returncode == 1 and "nothing to change" in usage.stderr


@pytest.mark.parametrize("command", [
    ("topic", "list"),
    ("topic", "describe", "x"),
    ("topic", "create", "x"),
    ("topic", "produce", "x"),
    ("topic", "consume", "x"),
    ("group", "list"),
    ("cluster", "info"),
])
def test_a_missing_broker_is_reported_within_seconds(command: tuple[str, ...]) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens here
    started = time.monotonic()
    result = strom(*command, "-b", address, input="a line\n", check=False, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    line = _one_error_line(result.stderr)
    assert f"cannot reach a broker at {address}" in line and "Connection refused" in line
    assert "strom server" in line  # the hint
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_brokers_from_the_environment_and_client_properties(broker: BrokerProcess) -> None:
    topic = unique("envtopic")
    strom("topic", "create", topic, "-X", "client.id=from-test",
          env={"STROM_BROKERS": broker.bootstrap})
    assert topic in {t["name"] for t in strom_json("topic", "list",
                                                   env={"STROM_BROKERS": broker.bootstrap})}
    bad = strom("topic", "list", "-b", broker.bootstrap, "-X", "no.such.property=1", check=False)
    assert bad.returncode == 1
    line = _one_error_line(bad.stderr)
    assert "no.such.property" in line and "Hint:" in line
    malformed = strom("topic", "list", "-b", broker.bootstrap, "-X", "novalue", check=False)
    assert malformed.returncode == 1 and "key=value" in malformed.stderr

"""`strom group list|describe|seek|delete` against a live broker with real consumers:
lag per partition, a dry-run seek that changes nothing, `--to-timestamp --execute`
moving a real group's offsets so that its consumer resumes there, and the refusal to
move offsets under active members."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.broker_process import BrokerProcess
from support.cli import strom, strom_json, table, unique
from support.groups import wait_until

pytestmark = pytest.mark.timeout(300)


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})


def _produce_timed(bootstrap: str, topic: str, partitions: int, per_partition: int,
                   base_ms: int) -> None:
    """Record i of each partition has value p-i and timestamp base + i seconds."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p,
                             timestamp=base_ms + i * 1000)
    assert producer.flush(30) == 0


def _read(consumer: Consumer, count: int, timeout: float = 30) -> list[str]:
    values: list[str] = []
    deadline = time.monotonic() + timeout
    while len(values) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            values.append(msg.value().decode())
    return values


def test_list_and_describe_with_lag(gbroker: BrokerProcess) -> None:
    b = ("-b", gbroker.bootstrap)
    topic, group = unique("lagged"), unique("lag-group")
    strom("topic", "create", topic, "-p", "2", *b)
    _produce_timed(gbroker.bootstrap, topic, 2, 10, int(time.time() * 1000) - 60_000)
    consumer = _consumer(gbroker.bootstrap, group)
    consumer.subscribe([topic])
    try:
        got = _read(consumer, 20)
        assert len(got) == 20
        consumer.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 10)],
                        asynchronous=False)

        listed = {g["group"]: g for g in strom_json("group", "list", *b)}
        assert listed[group]["state"] == "Stable" and listed[group]["type"] == "classic"
        assert {r["GROUP"]: r["STATE"] for r in table(strom("group", "list", *b).stdout)
                }[group] == "Stable"

        [described] = strom_json("group", "describe", group, *b)
        assert described["group"] == group and described["state"] == "Stable"
        assert described["coordinator"]["id"] == 0
        assert described["assignor"] == "range"
        [member] = described["members"]
        assert member["client_id"] == "rdkafka"
        assert member["assignment"] == [{"topic": topic, "partition": 0},
                                        {"topic": topic, "partition": 1}]
        parts = {p["partition"]: p for p in described["partitions"]}
        assert parts[0]["committed_offset"] == 4 and parts[0]["high_watermark"] == 10
        assert parts[0]["lag"] == 6 and parts[0]["member_id"] == member["member_id"]
        assert parts[1]["lag"] == 0
        assert described["total_lag"] == 6

        text = strom("group", "describe", group, *b).stdout
        assert "TOTAL-LAG    6" in text and "CURRENT-OFFSET" in text and "LOG-END-OFFSET" in text

        busy = strom("group", "seek", group, "--to-start", "--execute", *b, check=False)
        assert busy.returncode == 1
        assert "NON_EMPTY_GROUP" in busy.stderr and "1 member(s)" in busy.stderr
        busy_delete = strom("group", "delete", group, *b, check=False)
        assert busy_delete.returncode == 1 and "NON_EMPTY_GROUP" in busy_delete.stderr
    finally:
        consumer.close()

    wait_until(lambda: strom_json("group", "describe", group, *b)[0]["state"] == "Empty", 30,
               "the group is empty after its consumer left")
    assert strom_json("group", "delete", group, *b) == [
        {"group": group, "status": "deleted", "error": None}]
    assert group not in {g["group"] for g in strom_json("group", "list", *b)}
    gone = strom("group", "describe", group, *b, check=False)
    assert gone.returncode == 1 and "GROUP_ID_NOT_FOUND" in gone.stderr


def test_seek_to_timestamp_moves_a_real_group_and_its_consumer_resumes_there(
        gbroker: BrokerProcess) -> None:
    b = ("-b", gbroker.bootstrap)
    topic, group = unique("seek"), unique("seek-group")
    strom("topic", "create", topic, "-p", "2", *b)
    base = int(time.time() * 1000) - 3_600_000
    _produce_timed(gbroker.bootstrap, topic, 2, 10, base)

    consumer = _consumer(gbroker.bootstrap, group)
    consumer.subscribe([topic])
    assert len(_read(consumer, 20)) == 20
    consumer.commit(asynchronous=False)
    consumer.close()
    offsets = {p["partition"]: p["committed_offset"]
               for p in strom_json("group", "describe", group, *b)[0]["partitions"]}
    assert offsets == {0: 10, 1: 10}

    target = base + 6_500  # the first record at or after it is offset 7
    dry = strom_json("group", "seek", group, "--to-timestamp", str(target), *b)
    assert dry["executed"] is False
    assert [(p["partition"], p["current_offset"], p["new_offset"]) for p in dry["partitions"]] == [
        (0, 10, 7), (1, 10, 7)]
    unchanged = strom_json("group", "describe", group, *b)[0]["partitions"]
    assert [p["committed_offset"] for p in unchanged] == [10, 10]
    text = strom("group", "seek", group, "--to-timestamp", str(target), *b)
    assert "dry run" in text.stderr and "--execute" in text.stderr
    assert [r["NEW-OFFSET"] for r in table(text.stdout)] == ["7", "7"]

    applied = strom_json("group", "seek", group, "--to-timestamp", str(target), "--topic",
                         f"{topic}:1", "--execute", *b)
    assert applied["executed"] is True
    assert [(p["partition"], p["new_offset"]) for p in applied["partitions"]] == [(1, 7)]
    committed = {p["partition"]: p["committed_offset"]
                 for p in strom_json("group", "describe", group, *b)[0]["partitions"]}
    assert committed == {0: 10, 1: 7}

    resumed = _consumer(gbroker.bootstrap, group)
    resumed.subscribe([topic])
    try:
        assert sorted(_read(resumed, 3)) == ["1-7", "1-8", "1-9"]
        assert _read(resumed, 1, timeout=2) == []
    finally:
        resumed.close()

    # ISO-8601 and the other targets, through the same plan
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 2_000) / 1000)) + "Z"
    plan = strom_json("group", "seek", group, "--to-timestamp", iso, *b)["partitions"]
    assert [p["new_offset"] for p in plan] == [2, 2]
    plan = strom_json("group", "seek", group, "--shift-by", "-3", *b)["partitions"]
    assert [(p["current_offset"], p["new_offset"]) for p in plan] == [(10, 7), (7, 4)]
    plan = strom_json("group", "seek", group, "--shift-by", "100", *b)["partitions"]
    assert [p["new_offset"] for p in plan] == [10, 10]  # clamped to the log end
    plan = strom_json("group", "seek", group, "--to-offset", "5", *b)["partitions"]
    assert [p["new_offset"] for p in plan] == [5, 5]
    plan = strom_json("group", "seek", group, "--to-start", *b)["partitions"]
    assert [p["new_offset"] for p in plan] == [0, 0]
    strom("group", "seek", group, "--to-end", "--execute", *b)
    committed = {p["partition"]: p["committed_offset"]
                 for p in strom_json("group", "describe", group, *b)[0]["partitions"]}
    assert committed == {0: 10, 1: 10}

    both = strom("group", "seek", group, "--to-start", "--to-end", *b, check=False)
    assert both.returncode == 1 and "exactly one" in both.stderr

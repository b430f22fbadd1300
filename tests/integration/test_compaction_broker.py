"""The log cleaner inside a running broker: compacted topics shrink to the latest value
per key while clients produce and read, and __consumer_offsets is compacted too."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from typing import Any

import pytest

from support.broker_process import wait_until
from support.clients import (
    BEGINNING,
    CLIENTS,
    Msg,
    consume,
    create_topic,
    produce,
    segment_files,
    unique_topic,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FAST_CLEANER = {"log.cleaner.backoff.ms": "100"}
COMPACT = {"cleanup.policy": "compact", "segment.bytes": "2048",
           "min.cleanable.dirty.ratio": "0.01"}



def test_a_compacted_topic_keeps_the_latest_value_per_key(broker_factory: Any) -> None:
    broker = broker_factory(FAST_CLEANER)
    topic = create_topic(broker.bootstrap, unique_topic("compacted"), 1, COMPACT)
    model: dict[bytes, bytes] = {}
    msgs = []
    for i in range(600):
        key, value = b"order-%d" % (i % 25), b"state-%d-" % i + b"x" * 100
        msgs.append(Msg(0, key, value))
        model[key] = value
    produce("confluent", broker.bootstrap, topic, msgs, "none",
            librdkafka={"batch.num.messages": 5})  # small batches: ~40 segments of 2 KiB

    def compacted() -> bool:
        records = consume("confluent", broker.bootstrap, topic, {0: BEGINNING}, {0: 600})
        return len(records) < 100

    wait_until(compacted, 60, "the cleaner to compact the topic")
    records = consume("confluent", broker.bootstrap, topic, {0: BEGINNING}, {0: 600})
    latest = {r.key: r.value for r in records}
    assert latest == model
    offsets = [r.offset for r in records]
    assert offsets == sorted(offsets) and offsets[-1] == 599
    directory = broker.data_dir / f"{topic}-0"
    size = sum((directory / name).stat().st_size for name in segment_files(broker.data_dir, topic))
    assert size < 600 * 100 // 4, f"{size} bytes left after compaction"
    assert (broker.data_dir / "cleaner-offset-checkpoint").exists()
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as response:
        text = response.read().decode()
    labels = f'{{partition="0",topic="{topic}"}}'
    removed = re.search(rf"^strom_log_cleaner_removed_records_total{re.escape(labels)} (\S+)$",
                        text, re.M)
    assert removed is not None and float(removed.group(1)) >= 600 - 100, text[-2000:]
    assert re.search(rf"^strom_log_cleaner_cleaned_bytes_total{re.escape(labels)} [1-9]", text,
                     re.M)
    assert re.search(r"^strom_log_cleaner_uncleanable_partitions 0\.0$", text, re.M)


def test_consumer_offsets_are_compacted_and_survive_a_restart(broker_factory: Any) -> None:
    from confluent_kafka import Consumer, TopicPartition

    overrides = {**FAST_CLEANER, "offsets.topic.segment.bytes": "4096",
                 "offsets.topic.num.partitions": "1"}
    broker = broker_factory(overrides)
    topic = create_topic(broker.bootstrap, unique_topic("tracked"), 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compacted-group",
                         "enable.auto.commit": False})
    try:
        for offset in range(1, 401):
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()
    offsets_dir = broker.data_dir / "__consumer_offsets-0"

    def log_bytes() -> int:
        return sum(p.stat().st_size for p in offsets_dir.glob("*.log"))

    wait_until(lambda: log_bytes() < 4096 * 3, 60, "__consumer_offsets to be compacted")
    broker.stop()
    again = broker_factory(overrides)
    consumer = Consumer({"bootstrap.servers": again.bootstrap, "group.id": "compacted-group"})
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=30)
    finally:
        consumer.close()
    assert committed.offset == 400


def test_every_client_reads_through_gaps_and_emptied_batches(broker_factory: Any) -> None:
    """A live idempotent producer's last batch, wholly superseded, stays as an empty batch
    (Kafka keeps its sequence that way); every client must read past it and the gaps."""
    broker = broker_factory(FAST_CLEANER)
    topic = create_topic(broker.bootstrap, unique_topic("gaps"), 1, COMPACT)
    produce("confluent", broker.bootstrap, topic, [Msg(0, b"shared", b"from-idempotent")],
            idempotent=True)
    later = [Msg(0, b"shared" if i % 2 else b"k%d" % (i % 7), b"%d-" % i + b"y" * 200)
             for i in range(1, 200)]
    produce("confluent", broker.bootstrap, topic, later, librdkafka={"batch.num.messages": 3})
    model = {m.key: m.value for m in later}

    def compacted() -> bool:
        return len(consume("confluent", broker.bootstrap, topic, {0: BEGINNING}, {0: 200})) < 40

    wait_until(compacted, 60, "the cleaner to compact the topic")
    data = b"".join(p.read_bytes() for p in sorted((broker.data_dir / f"{topic}-0").glob("*.log")))
    from strom.protocol.records import scan_batches

    first = next(h for _, h in scan_batches(data))
    assert (first.base_offset, first.records_count, first.producer_id >= 0) == (0, 0, True)
    for client in [c for c in CLIENTS if c != "kcat"]:  # they read up to an end offset
        records = consume(client, broker.bootstrap, topic, {0: BEGINNING}, {0: 200})
        assert {r.key: r.value for r in records} == model, client
        assert records[-1].offset == 199, client
    # kcat -e stops at the end of the partition, wherever the records are
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o",
                          "beginning", "-e", "-J"], capture_output=True, timeout=60, check=True)
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert {r["key"].encode(): r["payload"].encode() for r in lines} == model
    assert lines[-1]["offset"] == 199


def test_cleaner_threads_follow_a_dynamic_config_change(broker_factory: Any) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    broker = broker_factory(FAST_CLEANER)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("log.cleaner.threads", "2",
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource], request_timeout=20)[resource].result()
    wait_until(lambda: "log cleaner reconfigured: 2 thread(s)" in broker.log_text(),
               60, "the cleaner to take the new thread count")
    topics = [create_topic(broker.bootstrap, unique_topic("two-threads"), 1, COMPACT)
              for _ in range(2)]
    for topic in topics:
        produce("confluent", broker.bootstrap, topic,
                [Msg(0, b"k%d" % (i % 5), b"%d-" % i + b"y" * 200) for i in range(100)],
                librdkafka={"batch.num.messages": 3})
    for topic in topics:
        wait_until(lambda t=topic: len(
            consume("confluent", broker.bootstrap, t, {0: BEGINNING}, {0: 100})) < 30,
                60, "both topics to be compacted")

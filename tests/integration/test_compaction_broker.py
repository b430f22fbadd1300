"""The log cleaner inside a running broker: compacted topics shrink to the latest value
per key while clients produce and read, and __consumer_offsets is compacted too."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from support.clients import BEGINNING, Msg, consume, create_topic, produce, segment_files, unique_topic

pytestmark = [pytest.mark.timeout(180)]

FAST_CLEANER = {"log.cleaner.backoff.ms": "100"}
COMPACT = {"cleanup.policy": "compact", "segment.bytes": "2048",
           "min.cleanable.dirty.ratio": "0.01"}


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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

    wait_for("the cleaner to compact the topic", compacted)
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

    wait_for("__consumer_offsets to be compacted", lambda: log_bytes() < 4096 * 3)
    broker.stop()
    again = broker_factory(overrides)
    consumer = Consumer({"bootstrap.servers": again.bootstrap, "group.id": "compacted-group"})
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=30)
    finally:
        consumer.close()
    assert committed.offset == 400

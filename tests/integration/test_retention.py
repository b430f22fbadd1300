"""The log start offset moves: retention by time and by size deletes whole old segments,
and DeleteRecords raises the start offset on request. Clients reading from the
beginning then start at the new log start offset."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from support.broker_process import wait_until
from support.clients import (
    BEGINNING,
    CLIENTS,
    Msg,
    admin,
    consume,
    create_topic,
    partition_dir,
    produce,
    segment_files,
    unique_topic,
    watermarks,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SEGMENT_BYTES = 20000
SMALL_BATCHES = {"batch.num.messages": 5}  # so that segments roll every ~20 records
FAST_RETENTION = {"log.segment.bytes": str(SEGMENT_BYTES),
                  "log.retention.check.interval.ms": "500"}



def payload(i: int) -> bytes:
    return b"%06d:" % i + b"." * 1000


def log_bytes(data_dir: Any, topic: str) -> int:
    d = partition_dir(data_dir, topic)
    return sum((d / name).stat().st_size for name in segment_files(data_dir, topic))


def segment_bases(data_dir: Any, topic: str) -> list[int]:
    return [int(name.split(".")[0]) for name in segment_files(data_dir, topic)]


def assert_every_client_starts_at(bootstrap: str, topic: str, low: int, high: int) -> None:
    for client in CLIENTS:
        records = consume(client, bootstrap, topic, {0: BEGINNING}, {0: high})
        assert [r.offset for r in records] == list(range(low, high)), (
            f"{client} reading from the beginning did not start at {low}"
        )
        assert all(r.value == payload(r.offset) for r in records), client


def test_retention_ms_deletes_expired_segments(broker_factory: Any) -> None:
    broker = broker_factory(FAST_RETENTION)
    topic = create_topic(broker.bootstrap, unique_topic("retention-ms"), 1,
                         {"retention.ms": "600000"})
    old = int(time.time() * 1000) - 3_600_000  # an hour old: past retention.ms at once
    produce("confluent", broker.bootstrap, topic,
            [Msg(0, None, payload(i), timestamp=old + i) for i in range(200)], "none",
            librdkafka=SMALL_BATCHES)
    produce("confluent", broker.bootstrap, topic,
            [Msg(0, None, payload(i)) for i in range(200, 230)], "none",
            librdkafka=SMALL_BATCHES)
    assert watermarks(broker.bootstrap, topic)[1] == 230
    # The segment holding the first fresh record (200) must stay; all before it must go.
    first_kept = max(b for b in segment_bases(broker.data_dir, topic) if b <= 200)
    assert first_kept > 0, "the old records should span several segments"

    wait_until(lambda: watermarks(broker.bootstrap, topic)[0] > 0, 30, "the log start offset to advance")
    wait_until(lambda: segment_bases(broker.data_dir, topic)[0] == first_kept, 30, "expired segments to go")
    low, high = watermarks(broker.bootstrap, topic)
    assert (low, high) == (first_kept, 230)
    assert "00000000000000000000.log" not in segment_files(broker.data_dir, topic)
    assert_every_client_starts_at(broker.bootstrap, topic, low, high)

    # The log keeps working: new records go after the old end.
    produce("confluent", broker.bootstrap, topic, [Msg(0, None, payload(230))], "none")
    assert watermarks(broker.bootstrap, topic) == (low, 231)


def test_compact_only_topics_ignore_time_and_size_retention(broker_factory: Any) -> None:
    """cleanup.policy=compact keeps every key however old (Connect configs, changelogs);
    compact,delete and delete topics lose their expired segments in the same pass."""
    broker = broker_factory(FAST_RETENTION)
    short = {"retention.ms": "1000", "retention.bytes": str(SEGMENT_BYTES)}
    topics = {
        policy: create_topic(broker.bootstrap, unique_topic("policy"), 1,
                             {**short, "cleanup.policy": policy})
        for policy in ("compact", "compact,delete", "delete")
    }
    old = int(time.time() * 1000) - 3_600_000
    for topic in topics.values():
        produce("confluent", broker.bootstrap, topic,
                [Msg(0, b"key-%d" % i, payload(i), timestamp=old + i) for i in range(200)],
                "none", librdkafka=SMALL_BATCHES)
    # Once retention has run for the other two, it has run for the compact topic as well.
    for policy in ("compact,delete", "delete"):
        wait_until(lambda t=topics[policy]: watermarks(broker.bootstrap, t)[0] > 0,
                   30, f"retention of the {policy} topic")
    assert watermarks(broker.bootstrap, topics["compact"]) == (0, 200)
    assert segment_bases(broker.data_dir, topics["compact"])[0] == 0
    records = consume("confluent", broker.bootstrap, topics["compact"], {0: BEGINNING}, {0: 200})
    assert [r.key for r in records] == [b"key-%d" % i for i in range(200)]


def test_retention_bytes_keeps_the_log_near_the_limit(broker_factory: Any) -> None:
    broker = broker_factory(FAST_RETENTION)
    limit = 3 * SEGMENT_BYTES
    topic = create_topic(broker.bootstrap, unique_topic("retention-bytes"), 1,
                         {"retention.bytes": str(limit)})
    produce("confluent", broker.bootstrap, topic,
            [Msg(0, None, payload(i)) for i in range(300)], "none",
            librdkafka=SMALL_BATCHES)
    assert watermarks(broker.bootstrap, topic)[1] == 300

    wait_until(lambda: log_bytes(broker.data_dir, topic) <= limit + SEGMENT_BYTES,
               30, "the log to shrink to retention.bytes")
    low, high = watermarks(broker.bootstrap, topic)
    assert high == 300 and low > 0
    size = log_bytes(broker.data_dir, topic)
    assert limit <= size <= limit + SEGMENT_BYTES, (
        f"{size} bytes left: retention.bytes must delete only while the rest stays above "
        f"{limit}"
    )
    files = segment_files(broker.data_dir, topic)
    assert files[0] == f"{low:020d}.log"
    assert_every_client_starts_at(broker.bootstrap, topic, low, high)


def delete_records(client: AdminClient, topic: str, offset: int) -> int:
    futures = client.delete_records([TopicPartition(topic, 0, offset)], request_timeout=15)
    [result] = futures.values()
    return int(result.result(timeout=20).low_watermark)


def test_delete_records_moves_log_start_offset(broker: Any) -> None:
    topic = create_topic(broker.bootstrap, unique_topic("delete-records"))
    produce("confluent", broker.bootstrap, topic,
            [Msg(0, None, payload(i)) for i in range(100)], "gzip", linger_ms=50)
    client = admin(broker.bootstrap)

    assert delete_records(client, topic, 30) == 30  # mid-batch: the batch stays on disk
    assert watermarks(broker.bootstrap, topic) == (30, 100)
    assert_every_client_starts_at(broker.bootstrap, topic, 30, 100)
    for consumer in CLIENTS:  # below the log start: OFFSET_OUT_OF_RANGE, reset to earliest
        records = consume(consumer, broker.bootstrap, topic, {0: 5}, {0: 100})
        assert [r.offset for r in records] == list(range(30, 100)), consumer

    assert delete_records(client, topic, 10) == 30, "the log start offset never moves back"
    with pytest.raises(Exception, match="OFFSET_OUT_OF_RANGE"):
        delete_records(client, topic, 101)
    assert watermarks(broker.bootstrap, topic) == (30, 100)

    assert delete_records(client, topic, -1) == 100  # -1: up to the high watermark
    assert watermarks(broker.bootstrap, topic) == (100, 100)
    produce("confluent", broker.bootstrap, topic, [Msg(0, None, payload(100))], "none")
    assert watermarks(broker.bootstrap, topic) == (100, 101)
    assert_every_client_starts_at(broker.bootstrap, topic, 100, 101)


def test_delete_records_with_kafka_python_admin(broker: Any) -> None:
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP

    topic = create_topic(broker.bootstrap, unique_topic("delete-records-kp"))
    produce("kafka-python", broker.bootstrap, topic,
            [Msg(0, None, payload(i)) for i in range(50)], "none")
    kp_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        result = kp_admin.delete_records({KTP(topic, 0): 20})
    finally:
        kp_admin.close()
    [(tp, info)] = result.items()
    assert tp.partition == 0 and info["low_watermark"] == 20, result
    assert watermarks(broker.bootstrap, topic) == (20, 50)
    assert_every_client_starts_at(broker.bootstrap, topic, 20, 50)

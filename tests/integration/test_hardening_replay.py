"""No content of `__consumer_offsets` can stop a broker from starting (issue 9, finding 1).

Clients could once write to the offsets topic, and a log written by an older version or
damaged on disk can hold anything. Each test commits offsets with confluent-kafka, stops
the broker, appends hostile batches straight into the offsets partition's log on disk
(valid CRCs: garbage zstd payload, garbage records, a lying record count, garbage keys
and values, an unknown record type, a 1.25 GiB zstd bomb), plus a good commit written
after them, and starts the broker again. It must start, log and count what it skipped,
serve the offsets committed before and after the garbage, and take new commits that
survive another restart. Before the fix the start exited 1, every time.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from strom.coordinator.group.config import partition_for
from strom.protocol import records
from support.broker_process import BrokerProcess
from support.clients import create_topic, unique_topic
from support.offsets_topic import (
    ZSTD,
    append_indexed,
    append_to_offsets_log,
    commit_record,
    damage_batch,
    hostile_batches,
    raw_batch,
    zstd_bomb,
)

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

OFFSETS_PARTITIONS = 50
BOMB_BYTES = 1280 << 20  # 1.25 GiB once expanded, about 50 KB on disk
RSS_LIMIT_MB = 300


def same_partition_groups(prefix: str, count: int) -> list[str]:
    """Group ids that all live in one `__consumer_offsets` partition."""
    target = partition_for(f"{prefix}-0", OFFSETS_PARTITIONS)
    found = [f"{prefix}-0"]
    i = 1
    while len(found) < count:
        if partition_for(f"{prefix}-{i}", OFFSETS_PARTITIONS) == target:
            found.append(f"{prefix}-{i}")
        i += 1
    return found


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "socket.timeout.ms": 10000})


def commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    client = consumer(bootstrap, group)
    try:
        client.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        client.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    client = consumer(bootstrap, group)
    try:
        (tp,) = client.committed([TopicPartition(topic, 0)], timeout=20)
    finally:
        client.close()
    assert tp.error is None, tp.error
    return int(tp.offset)


def skipped_metric(broker: BrokerProcess, partition: int) -> dict[str, float]:
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as response:
        text = response.read().decode()
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "strom_coordinator_skipped_records_total"
        and sample.labels["partition"] == str(partition)
    }


def peak_rss_mb(broker: BrokerProcess) -> float:
    assert broker.proc is not None
    status = Path(f"/proc/{broker.proc.pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) / 1024


def good_commit(group: str, topic: str, offset: int) -> bytes:
    return records.encode_batch([commit_record(group, topic, 0, offset)])


def test_garbage_in_the_offsets_log_is_skipped_and_logged_and_offsets_survive(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    broker = broker_factory()
    topic = create_topic(broker.bootstrap, unique_topic("replay"))
    before, after = same_partition_groups("replay", 2)
    commit(broker.bootstrap, before, topic, 11)
    assert broker.stop() == 0

    hostile = list(hostile_batches().values())
    partition = append_to_offsets_log(
        broker.data_dir, before, [*hostile, good_commit(after, topic, 22), *hostile])
    broker.start()

    assert broker.is_alive(), broker.log_text()
    assert committed(broker.bootstrap, before, topic) == 11
    assert committed(broker.bootstrap, after, topic) == 22
    log = broker.log_text()
    assert re.search(rf"ERROR .*__consumer_offsets-{partition}: skipped the unreadable batch "
                     r"at offsets \d+\.\.\d+: ", log), log
    assert re.search(rf"ERROR .*__consumer_offsets-{partition} loaded with \d+ record\(s\) "
                     "skipped", log), log
    assert "WARNING" in log and "unknown __consumer_offsets record type" in log
    skipped = skipped_metric(broker, partition)
    assert set(skipped) == {"unreadable_batch", "bad_key", "bad_value", "unknown_type"}, skipped

    # New commits work, and survive a restart over the same damaged log.
    commit(broker.bootstrap, before, topic, 33)
    assert broker.stop() == 0
    broker.start()
    assert committed(broker.bootstrap, before, topic) == 33
    assert committed(broker.bootstrap, after, topic) == 22


def test_a_zstd_bomb_in_the_offsets_log_costs_bounded_memory_at_start(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    broker = broker_factory()
    topic = create_topic(broker.bootstrap, unique_topic("bomb"))
    before, after = same_partition_groups("bomb", 2)
    commit(broker.bootstrap, before, topic, 5)
    assert broker.stop() == 0

    bomb = raw_batch(zstd_bomb(BOMB_BYTES), count=1, attributes=ZSTD)
    partition = append_to_offsets_log(broker.data_dir, before,
                                      [bomb, good_commit(after, topic, 6), bomb])
    broker.start()

    assert committed(broker.bootstrap, before, topic) == 5
    assert committed(broker.bootstrap, after, topic) == 6
    assert skipped_metric(broker, partition) == {"unreadable_batch": 2}
    assert "exceeds" in broker.log_text()
    commit(broker.bootstrap, after, topic, 7)
    assert committed(broker.bootstrap, after, topic) == 7
    peak = peak_rss_mb(broker)
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB after loading two 1.25 GiB bombs"


@pytest.mark.parametrize("damaged", ["first", "later"])
def test_a_batch_damaged_on_disk_is_skipped_by_the_load(
        broker_factory: Callable[..., BrokerProcess], damaged: str) -> None:
    """Damage below the last index entry survives a clean start. As the first batch of a
    read, storage refuses to serve it (CORRUPT_MESSAGE) and the load steps past it; as a
    later batch of a read it is served unchecked and the load's own CRC check skips it."""
    broker = broker_factory()
    topic = create_topic(broker.bootstrap, unique_topic("damage"))
    first, second, third = same_partition_groups("damage", 3)
    commit(broker.bootstrap, first, topic, 11)  # offset 0 of its offsets partition
    assert broker.stop() == 0

    partition = append_indexed(broker.data_dir, first, [good_commit(second, topic, 22),
                                                        good_commit(third, topic, 33)])
    victim, offset = (first, 0) if damaged == "first" else (second, 1)
    damage_batch(broker.data_dir, partition, offset)
    broker.start()

    expected = {first: 11, second: 22, third: 33, victim: -1001}  # -1001: nothing committed
    for group, value in expected.items():
        assert committed(broker.bootstrap, group, topic) == value, group
    reason = "the log holds a corrupt batch" if damaged == "first" else "CRC-32C mismatch"
    log = broker.log_text()
    assert f"__consumer_offsets-{partition}: skipped the unreadable batch at offsets " \
           f"{offset}..{offset}: {reason}" in log, log
    assert skipped_metric(broker, partition) == {"unreadable_batch": 1}
    commit(broker.bootstrap, victim, topic, 44)
    assert committed(broker.bootstrap, victim, topic) == 44

"""Produce validation through a real broker: every record of every batch is checked.

Each hostile payload of tests/support/corrupt_batches.py goes to a live broker in a
Produce request. The partition answers the error Kafka answers, the high watermark does
not move, the broker's memory stays bounded (decompression bombs), and a real client
reads back exactly what was acknowledged around the refused batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess, wait_until
from support.corrupt_batches import (
    NOW_MS,
    Case,
    batch,
    bomb_cases,
    corrupt_cases,
    record,
    records,
    valid_batch,
)
from support.raw_client import (
    RawClient,
    create_topic,
    fetch,
    high_watermark,
    list_offset,
    produce,
)

TOPICS = {"plain": "validate-plain", "compacted": "validate-compacted"}


@pytest.fixture(scope="module")
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        create_topic(client, TOPICS["plain"])
        create_topic(client, TOPICS["compacted"], configs={"cleanup.policy": "compact"})
        yield client


def _rss_mib(broker: BrokerProcess) -> float:
    assert broker.proc is not None
    with open(f"/proc/{broker.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _check_refused(raw: RawClient, case: Case) -> Any:
    topic = TOPICS[case.topic_config]
    before = high_watermark(raw, topic)
    entry = produce(raw, topic, case.payload)
    assert ErrorCode(entry.error_code).name in case.errors, (case.name, entry)
    assert entry.base_offset == -1
    assert high_watermark(raw, topic) == before, f"{case.name} moved the high watermark"
    return entry


@pytest.mark.parametrize("case", corrupt_cases(), ids=lambda c: c.name)
def test_corrupt_batch_is_refused_and_appends_nothing(raw: RawClient, case: Case) -> None:
    _check_refused(raw, case)


def test_decompression_bombs_are_refused_with_bounded_memory(raw: RawClient,
                                                             broker: BrokerProcess) -> None:
    for case in bomb_cases():
        _check_refused(raw, case)
        assert _rss_mib(broker) < 300, f"{case.name}: broker RSS {_rss_mib(broker):.0f} MiB"


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_valid_batches_of_every_codec_are_accepted(raw: RawClient, codec: int) -> None:
    topic = TOPICS["plain"]
    before = high_watermark(raw, topic)
    entry = produce(raw, topic, valid_batch(count=7, codec=codec))
    assert entry.error_code == 0, entry
    assert entry.base_offset == before
    assert high_watermark(raw, topic) == before + 7


def test_record_errors_name_the_record_on_v8_and_later(raw: RawClient) -> None:
    payload = batch(records(3, keyed=True)[:0] + record(b"a", key=b"k")
                    + record(b"b", delta=1, key=None) + record(b"c", delta=2, key=None), count=3)
    entry = produce(raw, TOPICS["compacted"], payload, version=9)
    assert entry.error_code == ErrorCode.invalid_record
    assert [e.batch_index for e in entry.record_errors] == [1]
    assert "without key" in entry.error_message


def test_timestamp_record_errors_list_each_bad_record(raw: RawClient) -> None:
    year = 86_400_000 * 365
    payload = batch(record(b"a", key=b"k") + record(b"b", delta=1, ts_delta=year, key=b"k")
                    + record(b"c", delta=2, key=b"k")
                    + record(b"d", delta=3, ts_delta=2 * year, key=b"k"), count=4)
    entry = produce(raw, TOPICS["plain"], payload, version=9)
    assert entry.error_code == ErrorCode.invalid_timestamp
    assert [e.batch_index for e in entry.record_errors] == [1, 3]


def test_lying_max_timestamp_is_corrected_as_kafka_does(raw: RawClient) -> None:
    """The header claims a max timestamp no record has; Kafka rewrites it from the records,
    so ListOffsets by that timestamp must not find the batch."""
    topic = TOPICS["plain"]
    claimed = NOW_MS + 1_000_000
    payload = batch(record(b"a", key=b"k") + record(b"b", delta=1, ts_delta=5, key=b"k"),
                    count=2, max_ts=claimed)
    entry = produce(raw, topic, payload)
    assert entry.error_code == 0
    fetched = fetch(raw, topic, entry.base_offset)
    stored_max = int.from_bytes(bytes(fetched.records)[35:43], "big", signed=True)
    assert stored_max == NOW_MS + 5
    assert list_offset(raw, topic, claimed).offset == -1


def test_internal_topic_refuses_client_produce(raw: RawClient) -> None:
    """A client write to __consumer_offsets once bricked the broker's next start."""
    def coordinator_ready() -> bool:  # FindCoordinator creates the offsets topic
        return raw.request(10, 1, key="validate-internal", key_type=0).body.error_code == 0

    wait_until(coordinator_ready, 30, "group coordinator available")
    entry = produce(raw, "__consumer_offsets", valid_batch())
    assert entry.error_code == ErrorCode.invalid_topic_exception
    assert "internal topic" in entry.error_message


def test_transactional_batch_without_transactional_id_is_refused(raw: RawClient) -> None:
    before = high_watermark(raw, TOPICS["plain"])
    payload = batch(records(2), count=2, attributes=0x10, producer_id=77, producer_epoch=0,
                    base_sequence=0)
    entry = produce(raw, TOPICS["plain"], payload)
    assert entry.error_code == ErrorCode.transactional_id_authorization_failed
    assert high_watermark(raw, TOPICS["plain"]) == before


def test_clients_read_exactly_what_was_acknowledged_around_refusals(
        raw: RawClient, broker: BrokerProcess) -> None:
    topic = "validate-interleaved"
    create_topic(raw, topic)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    sent = []
    for i, case in enumerate(corrupt_cases()[:12]):
        value = f"good-{i}".encode()
        producer.produce(topic, value, key=b"k")
        producer.flush(10)
        sent.append(value)
        if case.topic_config == "plain":
            assert produce(raw, topic, case.payload).error_code != 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "validate-read",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        for _ in range(100):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(message.value())
            if len(got) >= len(sent):
                break
    finally:
        consumer.close()
    assert got == sent

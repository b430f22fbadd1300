"""Protocol details other Kafka-compatible brokers got wrong, checked on the wire.

Metadata auto-creation rules, ListOffsets by timestamp, a fetch that starts inside a
batch, and the error codes of Produce (acks, CRC, legacy formats, sizes, unknown
partitions, idempotent sequences, min.insync.replicas). Requests go through the raw
client so the exact version and bytes are known; real clients confirm what users see.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_END, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from kafka import KafkaAdminClient
from kafka import TopicPartition as KpTopicPartition
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.raw_client import (
    RawClient,
    batch_base_offsets,
    create_topic,
    fetch,
    high_watermark,
    legacy_message_set_v1,
    list_offset,
    make_request,
    produce,
    record_batch,
    topic_id,
)

LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3
TIMEOUT = 20.0


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


def _metadata(raw: RawClient, names: list[str], version: int = 12,
              allow: bool = True) -> dict[str, Any]:
    body = raw.request(3, version, topics=[{"name": n, "topic_id": None} for n in names],
                       allow_auto_topic_creation=allow,
                       include_topic_authorized_operations=False).body
    return {t.name: t for t in body.topics}


def _all_topic_names(raw: RawClient) -> set[str]:
    body = raw.request(3, 12, topics=None, allow_auto_topic_creation=False).body
    return {t.name for t in body.topics}


# --- Metadata and auto-creation ---------------------------------------------------------


@pytest.mark.parametrize("version", [4, 9, 12, 13])
def test_metadata_auto_creates_when_both_allow(raw: RawClient, version: int) -> None:
    name = f"trap-auto-v{version}"
    topics = _metadata(raw, [name], version=version, allow=True)
    assert topics[name].error_code == ErrorCode.none
    assert [p.partition_index for p in topics[name].partitions] == [0]  # num.partitions=1
    assert name in _all_topic_names(raw)
    assert produce(raw, name, record_batch([b"auto"])).error_code == ErrorCode.none


def test_metadata_before_v4_always_allows_auto_creation(raw: RawClient) -> None:
    topics = _metadata(raw, ["trap-auto-v1"], version=1)
    assert topics["trap-auto-v1"].error_code == ErrorCode.none
    assert "trap-auto-v1" in _all_topic_names(raw)


def test_metadata_does_not_create_when_the_request_forbids(raw: RawClient) -> None:
    topics = _metadata(raw, ["trap-no-auto"], allow=False)
    assert topics["trap-no-auto"].error_code == ErrorCode.unknown_topic_or_partition
    assert topics["trap-no-auto"].partitions == ()
    assert "trap-no-auto" not in _all_topic_names(raw)


def test_metadata_does_not_create_when_the_broker_forbids(broker_factory: Any) -> None:
    node: BrokerProcess = broker_factory({"auto.create.topics.enable": "false"})
    with RawClient(node.bootstrap) as raw:
        for version in (1, 12):
            topics = _metadata(raw, ["trap-broker-says-no"], version=version, allow=True)
            assert topics["trap-broker-says-no"].error_code == ErrorCode.unknown_topic_or_partition
        assert "trap-broker-says-no" not in _all_topic_names(raw)
        # explicit creation still works, and produce to a missing topic is refused
        assert create_topic(raw, "trap-explicit").error_code == ErrorCode.none
        missing = produce(raw, "trap-never-created", record_batch([b"x"]))
        assert missing.error_code == ErrorCode.unknown_topic_or_partition
    producer = Producer({"bootstrap.servers": node.bootstrap, "message.timeout.ms": 3000})
    errors: list[KafkaError] = []
    producer.produce("trap-never-created-ck", b"x",
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    assert errors and errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._MSG_TIMED_OUT,
                                KafkaError._UNKNOWN_TOPIC)


def test_metadata_auto_create_refuses_invalid_names(raw: RawClient) -> None:
    topics = _metadata(raw, ["bad name!"], allow=True)
    assert topics["bad name!"].error_code == ErrorCode.invalid_topic_exception
    assert "bad name!" not in _all_topic_names(raw)


def test_producer_auto_creates_through_metadata(broker: BrokerProcess, raw: RawClient) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("trap-auto-by-producer", b"hello")
    assert producer.flush(TIMEOUT) == 0
    assert high_watermark(raw, "trap-auto-by-producer") == 1


# --- ListOffsets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timed_topic(broker: BrokerProcess) -> tuple[str, int]:
    """Offsets 0-2 in one batch (ts T, T+500, T+20), then 3 and 4 from a real producer
    (ts T+1000, T+2000). The largest timestamp sits in the middle of the first batch."""
    name = "trap-timestamps"
    base = int(time.time() * 1000) - 3_600_000
    with RawClient(broker.bootstrap) as raw:
        assert create_topic(raw, name).error_code == ErrorCode.none
        first = produce(raw, name, record_batch([b"t0", b"t500", b"t20"],
                                                timestamps=[base, base + 500, base + 20]))
        assert (first.error_code, first.base_offset) == (ErrorCode.none, 0)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    producer.produce(name, b"t1000", timestamp=base + 1000)
    producer.flush(TIMEOUT)
    producer.produce(name, b"t2000", timestamp=base + 2000)
    assert producer.flush(TIMEOUT) == 0
    return name, base


@pytest.mark.parametrize("version", [1, 4, 7, 10])
def test_list_offsets_by_timestamp(raw: RawClient, timed_topic: tuple[str, int],
                                   version: int) -> None:
    name, base = timed_topic
    cases = {
        base: (0, base),                  # exact, first record
        base + 20: (1, base + 500),       # first record with ts >= target in offset order
        base + 501: (3, base + 1000),     # between batches
        base + 1000: (3, base + 1000),    # exact, a later batch
        base + 1500: (4, base + 2000),    # between
        base - 86_400_000: (0, base),     # before everything
    }
    for target, (offset, ts) in cases.items():
        entry = list_offset(raw, name, target, version=version)
        assert entry.error_code == ErrorCode.none
        assert (entry.offset, entry.timestamp) == (offset, ts), (
            f"v{version} ts {target - base:+d}: got offset {entry.offset} ts {entry.timestamp}")
    after = list_offset(raw, name, base + 10_000, version=version)
    assert (after.error_code, after.offset, after.timestamp) == (ErrorCode.none, -1, -1)


def test_list_offsets_specials(raw: RawClient, timed_topic: tuple[str, int]) -> None:
    name, base = timed_topic
    assert list_offset(raw, name, EARLIEST).offset == 0
    assert list_offset(raw, name, LATEST).offset == 5
    biggest = list_offset(raw, name, MAX_TIMESTAMP, version=7)
    assert (biggest.offset, biggest.timestamp) == (4, base + 2000)
    empty = "trap-timestamps-empty"
    assert create_topic(raw, empty).error_code == ErrorCode.none
    assert list_offset(raw, empty, EARLIEST).offset == 0
    assert list_offset(raw, empty, LATEST).offset == 0
    nothing = list_offset(raw, empty, MAX_TIMESTAMP, version=7)
    assert (nothing.offset, nothing.timestamp) == (-1, -1)
    assert list_offset(raw, empty, base).offset == -1
    missing = list_offset(raw, name, LATEST, partition=9)
    assert missing.error_code == ErrorCode.unknown_topic_or_partition


def test_max_timestamp_inside_a_batch(raw: RawClient) -> None:
    """KIP-734: the offset of the record with the largest timestamp, not of its batch."""
    name = "trap-max-ts-mid-batch"
    base = int(time.time() * 1000) - 60_000
    assert create_topic(raw, name).error_code == ErrorCode.none
    produce(raw, name, record_batch([b"a", b"b", b"c"], timestamps=[base, base + 900, base + 5]))
    biggest = list_offset(raw, name, MAX_TIMESTAMP, version=7)
    assert (biggest.offset, biggest.timestamp) == (1, base + 900)


def test_list_offsets_through_clients(broker: BrokerProcess, timed_topic: tuple[str, int]) -> None:
    name, base = timed_topic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    tp = TopicPartition(name, 0)
    specs = {
        "ts": OffsetSpec.for_timestamp(base + 501),
        "earliest": OffsetSpec.earliest(),
        "latest": OffsetSpec.latest(),
        "max": OffsetSpec.max_timestamp(),
        "after": OffsetSpec.for_timestamp(base + 10_000),
    }
    got = {}
    for label, spec in specs.items():
        result = admin.list_offsets({tp: spec}, request_timeout=TIMEOUT)
        got[label] = result[tp].result().offset
    assert got == {"ts": 3, "earliest": 0, "latest": 5, "max": 4, "after": -1}
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        answer = kp.list_partition_offsets({KpTopicPartition(name, 0): base + 1500})
        assert next(iter(answer.values())).offset == 4
    finally:
        kp.close()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "trap-offsets-for-times"})
    try:
        found = consumer.offsets_for_times([TopicPartition(name, 0, base + 20)], timeout=TIMEOUT)
        assert found[0].offset == 1
    finally:
        consumer.close()


# --- Fetch from the middle of a batch ---------------------------------------------------


@pytest.mark.parametrize("version", [4, 11, 12, 17])
def test_fetch_from_mid_batch_returns_the_whole_batch(raw: RawClient, version: int) -> None:
    name = f"trap-mid-batch-v{version}"
    assert create_topic(raw, name).error_code == ErrorCode.none
    produce(raw, name, record_batch([b"b0-0", b"b0-1", b"b0-2", b"b0-3", b"b0-4"]))
    produce(raw, name, record_batch([b"b1-0", b"b1-1", b"b1-2"]))
    tid = topic_id(raw, name) if version >= 13 else None
    for requested, batch in ((2, (0, 4)), (4, (0, 4)), (6, (5, 7)), (7, (5, 7))):
        entry = fetch(raw, name, requested, version=version, topic_uuid=tid)
        assert entry.error_code == ErrorCode.none
        assert entry.high_watermark == 8
        batches = batch_base_offsets(entry.records)
        assert batches, f"nothing returned for offset {requested}"
        first_base, first_last = batches[0]
        assert first_base <= requested <= first_last
        assert (first_base, first_last) == batch
    at_end = fetch(raw, name, 8, version=version, topic_uuid=tid)
    assert at_end.error_code == ErrorCode.none and batch_base_offsets(at_end.records) == []
    beyond = fetch(raw, name, 9, version=version, topic_uuid=tid)
    assert beyond.error_code == ErrorCode.offset_out_of_range


def test_consumer_starting_mid_batch_gets_exactly_the_rest(broker: BrokerProcess,
                                                           raw: RawClient) -> None:
    name = "trap-mid-batch-consumer"
    assert create_topic(raw, name).error_code == ErrorCode.none
    produce(raw, name, record_batch([f"v{i}".encode() for i in range(6)]))
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "trap-mid",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(name, 0, 3)])
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.offset(), msg.value()))
        assert got == [(3, b"v3"), (4, b"v4"), (5, b"v5")]
        consumer.assign([TopicPartition(name, 0, OFFSET_END)])
        assert consumer.poll(0.5) is None
    finally:
        consumer.close()


# --- Produce errors ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def produce_topic(broker: BrokerProcess) -> str:
    with RawClient(broker.bootstrap) as raw:
        assert create_topic(raw, "trap-produce", partitions=2).error_code == ErrorCode.none
        assert produce(raw, "trap-produce", record_batch([b"seed"])).error_code == 0
    return "trap-produce"


@pytest.mark.parametrize("acks", [5, 2, -2, 100])
def test_invalid_acks(raw: RawClient, produce_topic: str, acks: int) -> None:
    before = high_watermark(raw, produce_topic)
    entry = produce(raw, produce_topic, record_batch([b"acks"]), acks=acks)
    assert entry.error_code == ErrorCode.invalid_required_acks
    assert high_watermark(raw, produce_topic) == before


def test_bad_crc_is_corrupt_message_and_appends_nothing(raw: RawClient,
                                                        produce_topic: str) -> None:
    before = high_watermark(raw, produce_topic)
    entry = produce(raw, produce_topic, record_batch([b"bitrot"], corrupt_crc=True))
    assert entry.error_code == ErrorCode.corrupt_message
    assert entry.base_offset == -1
    # Produce v3+ carries exactly one batch per partition (Kafka's ProduceRequest
    # validation): two batches, good or bad, are INVALID_RECORD and nothing is appended
    payload = record_batch([b"good"]) + record_batch([b"bad"], corrupt_crc=True)
    assert produce(raw, produce_topic, payload).error_code == ErrorCode.invalid_record
    payload = record_batch([b"good"]) + record_batch([b"good too"])
    assert produce(raw, produce_topic, payload).error_code == ErrorCode.invalid_record
    assert high_watermark(raw, produce_topic) == before
    assert produce(raw, produce_topic, record_batch([b"fine"])).base_offset == before


@pytest.mark.parametrize("value_size", [4, 200])
def test_legacy_magic_1_message_set_is_refused(raw: RawClient, produce_topic: str,
                                               value_size: int) -> None:
    before = high_watermark(raw, produce_topic)
    entry = produce(raw, produce_topic, legacy_message_set_v1(b"v" * value_size))
    assert entry.error_code == ErrorCode.invalid_record  # Kafka 4.4's answer (fuzz oracle)
    assert high_watermark(raw, produce_topic) == before


def test_truncated_and_empty_record_sets(raw: RawClient, produce_topic: str) -> None:
    before = high_watermark(raw, produce_topic)
    whole = record_batch([b"cut short"])
    assert produce(raw, produce_topic, whole[:-3]).error_code == ErrorCode.corrupt_message
    assert produce(raw, produce_topic, whole[:30]).error_code == ErrorCode.corrupt_message
    assert produce(raw, produce_topic, b"").error_code == ErrorCode.corrupt_message
    assert high_watermark(raw, produce_topic) == before


def test_batch_above_max_message_bytes(raw: RawClient) -> None:
    name = "trap-small-messages"
    assert create_topic(raw, name, configs={"max.message.bytes": "1000"}).error_code == 0
    small = produce(raw, name, record_batch([b"s" * 500]))
    assert small.error_code == ErrorCode.none
    big = produce(raw, name, record_batch([b"b" * 1200]))
    assert big.error_code == ErrorCode.message_too_large
    # many small records adding up to a big batch count as one big batch
    many = produce(raw, name, record_batch([b"m" * 100] * 12))
    assert many.error_code == ErrorCode.message_too_large
    assert high_watermark(raw, name) == 1


def test_unknown_topic_and_partition(raw: RawClient, produce_topic: str) -> None:
    missing = produce(raw, "trap-no-such-topic-for-produce", record_batch([b"x"]))
    assert missing.error_code == ErrorCode.unknown_topic_or_partition
    assert "trap-no-such-topic-for-produce" not in _all_topic_names(raw)
    bad_partition = produce(raw, produce_topic, record_batch([b"x"]), partition=2)
    assert bad_partition.error_code == ErrorCode.unknown_topic_or_partition
    negative = produce(raw, produce_topic, record_batch([b"x"]), partition=-1)
    assert negative.error_code == ErrorCode.unknown_topic_or_partition


def test_acks_zero_gets_no_response_but_appends(raw: RawClient, produce_topic: str) -> None:
    before = high_watermark(raw, produce_topic, partition=1)
    body = make_request(0, 9, acks=0, timeout=5000, transactional_id=None, topic_data=[
        {"name": produce_topic, "partition_data": [
            {"index": 1, "records": record_batch([b"fire", b"forget"])}]}])
    raw.send(0, 9, body)
    # the next response on this connection is for the next request, not the produce
    assert high_watermark(raw, produce_topic, partition=1) == before + 2


def _producer_id(raw: RawClient) -> tuple[int, int]:
    body = raw.request(22, 4, transactional_id=None, transaction_timeout=60_000,
                       producer_id=-1, producer_epoch=-1).body
    assert body.error_code == ErrorCode.none
    return int(body.producer_id), int(body.producer_epoch)


def test_idempotent_duplicate_is_acknowledged_once(raw: RawClient) -> None:
    name = "trap-idempotent"
    assert create_topic(raw, name).error_code == ErrorCode.none
    assert produce(raw, name, record_batch([b"plain"])).base_offset == 0
    pid, epoch = _producer_id(raw)

    def batch(seq: int, n: int = 3) -> bytes:
        return record_batch([f"s{seq + i}".encode() for i in range(n)], producer_id=pid,
                            producer_epoch=epoch, base_sequence=seq)

    first = produce(raw, name, batch(0), acks=-1)
    assert (first.error_code, first.base_offset) == (ErrorCode.none, 1)
    retry = produce(raw, name, batch(0), acks=-1)
    assert (retry.error_code, retry.base_offset) == (ErrorCode.none, 1)
    assert high_watermark(raw, name) == 4
    second = produce(raw, name, batch(3), acks=-1)
    assert (second.error_code, second.base_offset) == (ErrorCode.none, 4)
    # an older batch still inside the window is also a duplicate
    assert produce(raw, name, batch(0), acks=-1).base_offset == 1
    assert high_watermark(raw, name) == 7
    gap = produce(raw, name, batch(10), acks=-1)
    assert gap.error_code == ErrorCode.out_of_order_sequence_number
    assert high_watermark(raw, name) == 7
    assert produce(raw, name, batch(6), acks=-1).base_offset == 7
    fetched = fetch(raw, name, 0)
    assert [b for b, _ in batch_base_offsets(fetched.records)] == [0, 1, 4, 7]


def test_idempotent_producer_end_to_end(broker: BrokerProcess, raw: RawClient) -> None:
    name = "trap-idempotent-ck"
    assert create_topic(raw, name).error_code == ErrorCode.none
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    for i in range(200):
        producer.produce(name, f"m{i}".encode())
    assert producer.flush(TIMEOUT) == 0
    assert high_watermark(raw, name) == 200


def test_min_insync_replicas_above_isr(raw: RawClient, broker: BrokerProcess) -> None:
    name = "trap-min-isr"
    assert create_topic(raw, name, configs={"min.insync.replicas": "2"}).error_code == 0
    strict = produce(raw, name, record_batch([b"all"]), acks=-1)
    assert strict.error_code == ErrorCode.not_enough_replicas
    assert high_watermark(raw, name) == 0
    leader_only = produce(raw, name, record_batch([b"one"]), acks=1)
    assert (leader_only.error_code, leader_only.base_offset) == (ErrorCode.none, 0)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1"})
    producer.produce(name, b"via librdkafka")
    assert producer.flush(TIMEOUT) == 0
    assert high_watermark(raw, name) == 2
    errors: list[Any] = []
    strict_producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                                "message.timeout.ms": 2000, "retries": 0})
    strict_producer.produce(name, b"refused", on_delivery=lambda err, msg: errors.append(err))
    strict_producer.flush(TIMEOUT)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS
    assert high_watermark(raw, name) == 2


def test_producer_epochs(raw: RawClient) -> None:
    """A newer epoch starts over at sequence 0; an older epoch is fenced."""
    name = "trap-epochs"
    assert create_topic(raw, name).error_code == ErrorCode.none
    pid, _ = _producer_id(raw)

    def batch(epoch: int, seq: int) -> bytes:
        return record_batch([b"e"], producer_id=pid, producer_epoch=epoch, base_sequence=seq)

    assert produce(raw, name, batch(0, 0)).error_code == ErrorCode.none
    assert produce(raw, name, batch(0, 1)).error_code == ErrorCode.none
    bumped_late = produce(raw, name, batch(1, 2))
    assert bumped_late.error_code == ErrorCode.out_of_order_sequence_number
    assert produce(raw, name, batch(1, 0)).error_code == ErrorCode.none
    fenced = produce(raw, name, batch(0, 2))
    assert fenced.error_code == ErrorCode.invalid_producer_epoch
    assert high_watermark(raw, name) == 3


def test_client_supplied_base_offset_is_replaced(raw: RawClient) -> None:
    name = "trap-base-offset"
    assert create_topic(raw, name).error_code == ErrorCode.none
    produce(raw, name, record_batch([b"first"]))
    batch = bytearray(record_batch([b"x", b"y"]))
    batch[0:8] = (123_456).to_bytes(8, "big")  # not covered by the CRC
    entry = produce(raw, name, bytes(batch))
    assert (entry.error_code, entry.base_offset) == (ErrorCode.none, 1)
    fetched = fetch(raw, name, 1)
    assert batch_base_offsets(fetched.records) == [(1, 2)]


def test_timestamp_too_far_in_the_future(raw: RawClient) -> None:
    name = "trap-future"
    assert create_topic(raw, name).error_code == ErrorCode.none
    future = int(time.time() * 1000) + 3 * 3_600_000  # message.timestamp.after.max.ms = 1h
    entry = produce(raw, name, record_batch([b"later"], timestamps=[future]))
    assert entry.error_code == ErrorCode.invalid_timestamp
    assert high_watermark(raw, name) == 0
    old = produce(raw, name, record_batch([b"1970"], timestamps=[5]))
    assert old.error_code == ErrorCode.none  # before.max.ms defaults to unlimited


def test_offsets_after_delete_records(raw: RawClient) -> None:
    """Lookups respect the new log start: by timestamp, earliest, and fetch below it."""
    name = "trap-after-delete"
    base = int(time.time() * 1000) - 600_000
    assert create_topic(raw, name).error_code == ErrorCode.none
    produce(raw, name, record_batch([b"a", b"b", b"c"], timestamps=[base, base + 1, base + 2]))
    produce(raw, name, record_batch([b"d", b"e"], timestamps=[base + 3, base + 4]))
    body = raw.request(21, 2, timeout=5000, topics=[
        {"name": name, "partitions": [{"partition_index": 0, "offset": 2}]}]).body
    assert body.topics[0].partitions[0].low_watermark == 2
    assert list_offset(raw, name, EARLIEST).offset == 2
    by_time = list_offset(raw, name, base)
    assert (by_time.offset, by_time.timestamp) == (2, base + 2)
    below = fetch(raw, name, 1)
    assert below.error_code == ErrorCode.offset_out_of_range
    assert below.log_start_offset == 2
    inside = fetch(raw, name, 2)
    assert inside.error_code == ErrorCode.none
    assert batch_base_offsets(inside.records)[0] == (0, 2)  # whole batch, client skips 0-1


def test_metadata_v0_empty_list_means_all_topics(raw: RawClient) -> None:
    assert create_topic(raw, "trap-v0-all").error_code == ErrorCode.none
    body = raw.request(3, 0, topics=[]).body
    assert "trap-v0-all" in {t.name for t in body.topics}
    body = raw.request(3, 1, topics=[]).body  # v1+: empty means none
    assert body.topics == ()

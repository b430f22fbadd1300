"""Topic settings and produce features as every client sees them: LogAppendTime,
fetching from the middle of a batch, max.message.bytes, and the idempotent producer."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from support.clients import (
    CLIENTS,
    CONSUMERS,
    Msg,
    ProduceFailed,
    assert_sequenced,
    batches_on_disk,
    by_partition,
    consume,
    create_topic,
    end_offsets,
    kcat_consume,
    offset_for_time,
    produce,
    sequenced_msgs,
    unique_topic,
    watermarks,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

OLD_TS = 1_000_000_000_000  # 2001-09-09: a create time the broker must overwrite
SLACK_MS = 2000


def now_ms() -> int:
    return int(time.time() * 1000)


# --- LogAppendTime -----------------------------------------------------------------------


class AppendTimeTopic:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.windows: dict[int, tuple[int, int]] = {}  # partition -> (before, after) produce
        self.acks: dict[str, list[Any]] = {}


@pytest.fixture(scope="module")
def append_time_topic(broker: Any) -> AppendTimeTopic:
    """Each client produces 20 records, stamped 2001 where it can, into its own partition."""
    t = AppendTimeTopic(create_topic(broker.bootstrap, unique_topic("logappendtime"),
                                     len(CLIENTS), {"message.timestamp.type": "LogAppendTime"}))
    for p, client in enumerate(CLIENTS):
        stamp = None if client == "kcat" else OLD_TS
        msgs = [Msg(p, b"k%d" % i, b"v%d" % i, timestamp=stamp) for i in range(20)]
        before = now_ms()
        t.acks[client] = produce(client, broker.bootstrap, t.topic, msgs, "gzip", linger_ms=20)
        t.windows[p] = (before, now_ms())
    return t


@pytest.mark.parametrize("producer", ["confluent", "kafka-python", "aiokafka"])
def test_log_append_time_in_produce_response(
    append_time_topic: AppendTimeTopic, producer: str
) -> None:
    p = CLIENTS.index(producer)
    before, after = append_time_topic.windows[p]
    for ack in append_time_topic.acks[producer]:
        assert ack is not None and ack.timestamp != OLD_TS
        assert before - SLACK_MS <= ack.timestamp <= after + SLACK_MS, ack
        if ack.log_append_time is not None:  # kafka-python does not say which kind
            assert ack.log_append_time, ack


def test_log_append_time_on_disk(broker: Any, append_time_topic: AppendTimeTopic) -> None:
    for p in range(len(CLIENTS)):
        before, after = append_time_topic.windows[p]
        batches = batches_on_disk(broker.data_dir, append_time_topic.topic, p)
        assert batches
        for b in batches:
            assert b.uses_log_append_time, f"partition {p}: batch lacks the LogAppendTime bit"
            assert before - SLACK_MS <= b.max_timestamp <= after + SLACK_MS


@pytest.mark.parametrize("consumer", CLIENTS)
def test_log_append_time_consumed(
    broker: Any, append_time_topic: AppendTimeTopic, consumer: str
) -> None:
    parts = range(len(CLIENTS))
    records = consume(consumer, broker.bootstrap, append_time_topic.topic,
                      dict.fromkeys(parts, 0), dict.fromkeys(parts, 20))
    assert len(records) == 20 * len(CLIENTS)
    for r in records:
        before, after = append_time_topic.windows[r.partition]
        assert r.log_append_time, f"{consumer}: record {r} not marked LogAppendTime"
        assert before - SLACK_MS <= r.timestamp <= after + SLACK_MS, (
            f"{consumer}: {r.timestamp} is not the broker's append time (produced between "
            f"{before} and {after})"
        )


def test_log_append_time_offsets_for_times(
    broker: Any, append_time_topic: AppendTimeTopic
) -> None:
    """Lookups by time use the broker's append time, not the 2001 create time."""
    first_before = append_time_topic.windows[0][0] - SLACK_MS
    last_after = append_time_topic.windows[len(CLIENTS) - 1][1] + SLACK_MS
    for p in range(len(CLIENTS)):
        assert offset_for_time(broker.bootstrap, append_time_topic.topic, p, OLD_TS) == 0
        assert offset_for_time(broker.bootstrap, append_time_topic.topic, p, first_before) == 0
        assert offset_for_time(broker.bootstrap, append_time_topic.topic, p,
                               last_after + 60_000) == -1


# --- fetch from the middle of a batch ----------------------------------------------------


@pytest.fixture(scope="module")
def one_batch_topic(broker: Any) -> str:
    """Partition 0: one uncompressed batch of 10 records; partition 1: one zstd batch.

    librdkafka decides batching itself; on a loaded machine it may send the first record
    alone despite the linger, so a fresh topic is tried until both land as one batch.
    """
    layouts = []
    for _ in range(5):
        topic = create_topic(broker.bootstrap, unique_topic("midbatch"), 2)
        layouts = []
        for p, codec in enumerate(["none", "zstd"]):
            msgs = [Msg(p, b"k%d" % i, b"value-%d" % i) for i in range(10)]
            produce("confluent", broker.bootstrap, topic, msgs, codec, linger_ms=2000)
            batches = batches_on_disk(broker.data_dir, topic, p)
            layouts.append([(b.base_offset, b.records_count) for b in batches])
        if layouts == [[(0, 10)], [(0, 10)]]:
            return topic
    raise AssertionError(f"expected one batch of 10 records per partition, got {layouts}")


@pytest.mark.parametrize("consumer", CLIENTS)
def test_fetch_from_middle_of_batch(broker: Any, one_batch_topic: str, consumer: str) -> None:
    records = consume(consumer, broker.bootstrap, one_batch_topic, {0: 5, 1: 5}, {0: 10, 1: 10})
    got = {p: [(r.offset, r.key, r.value) for r in recs]
           for p, recs in by_partition(records).items()}
    want = [(i, b"k%d" % i, b"value-%d" % i) for i in range(5, 10)]
    assert got == {0: want, 1: want}


# --- max.message.bytes -------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_message_too_large_is_rejected(broker: Any, client: str) -> None:
    topic = create_topic(broker.bootstrap, unique_topic(f"toolarge-{client}"), 1,
                         {"max.message.bytes": "1000"})
    big = os.urandom(2500).hex().encode()  # 5000 incompressible bytes as text for kcat
    with pytest.raises(ProduceFailed) as failed:
        produce(client, broker.bootstrap, topic, [Msg(0, b"big", big)], "none")
    assert set(failed.value.errors) == {"MESSAGE_TOO_LARGE"}, failed.value
    assert watermarks(broker.bootstrap, topic) == (0, 0), "a rejected batch left a trace"

    produce(client, broker.bootstrap, topic, [Msg(0, b"small", b"fits")], "none")
    assert watermarks(broker.bootstrap, topic) == (0, 1)
    [rec] = consume(client, broker.bootstrap, topic, {0: 0}, {0: 1})
    assert (rec.offset, rec.key, rec.value) == (0, b"small", b"fits")


# --- idempotent producer -----------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_idempotent_producer_roundtrip(broker: Any, client: str) -> None:
    total, partitions = 3000, 3
    topic = create_topic(broker.bootstrap, unique_topic(f"idempotent-{client}"), partitions)
    msgs = sequenced_msgs(total, partitions)
    if client == "kcat":
        msgs = sorted(msgs, key=lambda m: m.partition)
    produce(client, broker.bootstrap, topic, msgs, "lz4", idempotent=True, linger_ms=10)

    producer_ids = set()
    for p in range(partitions):
        batches = batches_on_disk(broker.data_dir, topic, p)
        for b in batches:
            assert b.producer_id >= 0, f"{client}: batch without a producer id: {b}"
            assert b.base_sequence == b.base_offset, (
                f"{client}: sequence {b.base_sequence} at offset {b.base_offset}"
            )
            producer_ids.add((b.producer_id, b.producer_epoch))
    assert len(producer_ids) == (partitions if client == "kcat" else 1), producer_ids

    end = end_offsets(broker.bootstrap, topic, range(partitions))
    records = consume(client, broker.bootstrap, topic, dict.fromkeys(range(partitions), 0), end)
    assert_sequenced(records, total, partitions)


# --- large records -----------------------------------------------------------------------


@pytest.mark.parametrize("consumer", CLIENTS)
@pytest.mark.parametrize("producer", CLIENTS)
def test_large_record_roundtrip(broker: Any, producer: str, consumer: str) -> None:
    """A 900 kB record (under the 1 MiB defaults of every client and the broker)."""
    topic = create_topic(broker.bootstrap, unique_topic(f"large-{producer}-{consumer}"))
    big = os.urandom(450_000).hex().encode()
    msgs = [Msg(0, b"big", big), Msg(0, b"small", b"after the big one")]
    produce(producer, broker.bootstrap, topic, msgs, "none", linger_ms=0)
    assert watermarks(broker.bootstrap, topic) == (0, 2)
    records = consume(consumer, broker.bootstrap, topic, {0: 0}, {0: 2})
    assert [(r.offset, r.key, r.value) for r in records] == [
        (0, b"big", big), (1, b"small", b"after the big one")
    ]


# --- fetch limits smaller than a batch (KIP-74) --------------------------------------------


def test_fetch_limits_smaller_than_a_batch_still_progress(broker: Any) -> None:
    """Batches bigger than fetch.max.bytes and max.partition.fetch.bytes are still
    returned whole, one at a time, so consumers are never stuck."""
    from confluent_kafka import TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    from support.clients import confluent_consumer

    topic = create_topic(broker.bootstrap, unique_topic("tiny-fetch"), 1)
    msgs = [Msg(0, b"k%d" % i, os.urandom(500)) for i in range(200)]  # batches of ~10 kB
    # a long linger: batches fill to batch.num.messages even when the machine is busy (with
    # 50 ms a slow producer loop once sent a one-record batch and broke this precondition)
    produce("confluent", broker.bootstrap, topic, msgs, "none", linger_ms=1000,
            librdkafka={"batch.num.messages": 20})
    assert min(b.size for b in batches_on_disk(broker.data_dir, topic)) > 2000
    want = [(i, m.value) for i, m in enumerate(msgs)]

    got: list[tuple[int, bytes]] = []
    with confluent_consumer(broker.bootstrap, **{"fetch.max.bytes": 1000,
                                                  "max.partition.fetch.bytes": 1000,
                                                  "message.max.bytes": 1000,
                                                  "receive.message.max.bytes": 100000}) as c:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 30
        while len(got) < len(msgs) and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.5):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value()))
    assert got == want, "confluent with 1000-byte fetch limits"

    kp = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                       enable_auto_commit=False, fetch_max_bytes=1000,
                       max_partition_fetch_bytes=1000, request_timeout_ms=15000)
    try:
        tp = KTP(topic, 0)
        kp.assign([tp])
        kp.seek(tp, 0)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(msgs) and time.monotonic() < deadline:
            for recs in kp.poll(timeout_ms=500).values():
                got += [(r.offset, r.value) for r in recs]
    finally:
        kp.close(autocommit=False)
    assert got == want, "kafka-python with 1000-byte fetch limits"


# --- consumers tailing a live producer ---------------------------------------------------


@pytest.mark.parametrize("consumer", CLIENTS)
def test_consumer_tails_a_live_producer(broker: Any, consumer: str) -> None:
    """The consumer starts first and long-polls at the log end while records arrive."""
    import threading

    topic = create_topic(broker.bootstrap, unique_topic(f"tail-{consumer}"), 2)
    total = 4000
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            result["records"] = consume(consumer, broker.bootstrap, topic, {0: 0, 1: 0},
                                        {0: total // 2, 1: total // 2}, timeout=60)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            result["error"] = exc

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    msgs = sequenced_msgs(total, 2)
    for chunk in range(4):  # in bursts, so some arrive while the consumer waits
        part = msgs[chunk * total // 4:(chunk + 1) * total // 4]
        produce("confluent", broker.bootstrap, topic, part, "snappy")
        time.sleep(0.3)
    reader.join(timeout=90)
    assert not reader.is_alive(), "consumer did not finish"
    assert "error" not in result, result.get("error")
    assert_sequenced(result["records"], total, 2)


# --- a start offset past the log end ------------------------------------------------------


@pytest.mark.parametrize("consumer", CLIENTS)
def test_offset_past_the_end_resets_to_earliest(broker: Any, consumer: str) -> None:
    """Fetching at 1000 on a 10-record log is OFFSET_OUT_OF_RANGE; with
    auto.offset.reset=earliest every client starts over at 0."""
    topic = create_topic(broker.bootstrap, unique_topic(f"past-end-{consumer}"))
    msgs = [Msg(0, b"k%d" % i, b"v%d" % i) for i in range(10)]
    produce("confluent", broker.bootstrap, topic, msgs, "none")
    if consumer == "kcat":
        records = kcat_consume(broker.bootstrap, topic, 0, "1000", 10)
    else:
        records = CONSUMERS[consumer](broker.bootstrap, topic, {0: 1000}, {0: 10}, 30.0)
    assert [(r.offset, r.value) for r in records] == [(i, m.value) for i, m in enumerate(msgs)]

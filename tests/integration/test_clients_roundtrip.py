"""Every client produces, every client consumes: keys, null keys and values, headers,
and every compression codec, through one real broker.

Each producer writes the same record set once per codec, codec i into partition i of its
own topic; every consumer then reads that topic back and must see exactly what was sent,
at offsets 0..n-1 in each partition.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from support.clients import (
    BEGINNING,
    CLIENTS,
    CODEC_IDS,
    CODECS,
    Msg,
    Rec,
    batches_on_disk,
    by_partition,
    consume,
    create_topic,
    end_offsets,
    produce,
    unique_topic,
    watermarks,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def feature_records(partition: int) -> list[Msg]:
    """Text only, so that kcat can send and print them too."""
    recs = [
        Msg(partition, b"key-1", b"value-1", (("h1", b"a"),)),
        Msg(partition, b"key-2", None),  # tombstone: null value
        Msg(partition, None, b"value-3", (("h1", b"b"), ("h2", b"c"))),  # null key
        Msg(partition, b"key-4", b"compressible " * 300, (("dup", b"1"), ("dup", b"2"))),
        Msg(partition, "ключ-5".encode(), "значение ✓".encode(), (("ü", "ß".encode()),)),
    ]
    recs += [Msg(partition, b"bulk-%d" % i, b"bulk value %d" % i) for i in range(60)]
    return recs


def expected(partitions: int) -> dict[int, list[tuple[Any, ...]]]:
    return {
        p: [(i, m.key, m.value, m.headers) for i, m in enumerate(feature_records(p))]
        for p in range(partitions)
    }


def observed(records: list[Rec]) -> dict[int, list[tuple[Any, ...]]]:
    return {
        p: [(r.offset, r.key, r.value, r.headers) for r in recs]
        for p, recs in by_partition(records).items()
    }


class Produced:
    def __init__(self, topic: str, started_ms: int, finished_ms: int) -> None:
        self.topic = topic
        self.started_ms = started_ms
        self.finished_ms = finished_ms


@pytest.fixture(scope="module")
def produced(broker: Any) -> dict[str, Produced]:
    """Topics written by each producer client, created on first use."""
    return {}


def topic_from(producer: str, broker: Any, cache: dict[str, Produced]) -> Produced:
    if producer in cache:
        return cache[producer]
    topic = create_topic(broker.bootstrap, unique_topic(f"roundtrip-{producer}"), len(CODECS))
    started = int(time.time() * 1000)
    for p, codec in enumerate(CODECS):
        acks = produce(producer, broker.bootstrap, topic, feature_records(p), codec)
        if producer != "kcat":  # kcat does not report offsets
            assert [(a.partition, a.offset) for a in acks if a is not None] == [
                (p, i) for i in range(len(acks))
            ], f"{producer}/{codec}: acknowledged offsets are not 0..n-1 in partition {p}"
    finished = int(time.time() * 1000)
    cache[producer] = Produced(topic, started, finished)
    return cache[producer]


@pytest.mark.parametrize("consumer", CLIENTS)
@pytest.mark.parametrize("producer", CLIENTS)
def test_roundtrip_keys_nulls_headers_all_codecs(
    broker: Any, produced: dict[str, Produced], producer: str, consumer: str
) -> None:
    source = topic_from(producer, broker, produced)
    partitions = range(len(CODECS))
    end = end_offsets(broker.bootstrap, source.topic, partitions)
    n = len(feature_records(0))
    assert end == dict.fromkeys(partitions, n), "high watermarks do not match what was sent"

    records = consume(consumer, broker.bootstrap, source.topic,
                      dict.fromkeys(partitions, BEGINNING), end)

    got = observed(records)
    want = expected(len(CODECS))
    for p, codec in enumerate(CODECS):
        assert got.get(p) == want[p], f"{producer} -> {consumer}, codec {codec}: mismatch"
    for r in records:
        assert not r.log_append_time, "CreateTime topic returned LogAppendTime"
        assert source.started_ms - 5000 <= r.timestamp <= source.finished_ms + 5000, (
            f"timestamp {r.timestamp} is not the producer's create time"
        )


@pytest.mark.parametrize("consumer", ["confluent", "kafka-python", "aiokafka"])
@pytest.mark.parametrize("producer", ["confluent", "kafka-python", "aiokafka"])
def test_binary_keys_values_and_header_values(
    broker: Any, producer: str, consumer: str
) -> None:
    """Arbitrary bytes (all 256 values, empty strings, null header values) survive intact.
    kcat is text-only; kafka-python cannot send a null header value."""
    topic = create_topic(broker.bootstrap, unique_topic(f"binary-{producer}-{consumer}"))
    every_byte = bytes(range(256))
    msgs = [
        Msg(0, every_byte, every_byte[::-1], (("bin", every_byte),)),
        Msg(0, b"", b"empty value follows"),
        Msg(0, b"empty-value", b""),
        Msg(0, b"\x00", b"\x00" * 1000, (("", b""),)),
    ]
    if producer != "kafka-python":
        msgs.append(Msg(0, b"null-header", b"v", (("n", None), ("m", b"x"))))
    produce(producer, broker.bootstrap, topic, msgs, "zstd")
    assert watermarks(broker.bootstrap, topic) == (0, len(msgs))
    records = consume(consumer, broker.bootstrap, topic, {0: BEGINNING}, {0: len(msgs)})
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == [
        (i, m.key, m.value, m.headers) for i, m in enumerate(msgs)
    ]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", CLIENTS)
def test_producer_really_compresses(
    broker: Any, producer: str, codec: str
) -> None:
    """The batches on disk carry the codec asked for, so the roundtrips above really
    exercised every codec. Clients fall back to uncompressed when a codec seems unusable:
    librdkafka enables LZ4 only if the broker advertises FindCoordinator v0.
    """
    topic = create_topic(broker.bootstrap, unique_topic(f"codec-{producer}-{codec}"))
    msgs = [Msg(0, b"key-%d" % i, b"highly compressible text " * 20) for i in range(50)]
    produce(producer, broker.bootstrap, topic, msgs, codec, linger_ms=50)
    assert watermarks(broker.bootstrap, topic) == (0, len(msgs))
    batches = batches_on_disk(broker.data_dir, topic)
    assert sum(b.records_count for b in batches) == len(msgs)
    assert [b.codec for b in batches] == [CODEC_IDS[codec]] * len(batches), (
        f"{producer} was asked for {codec} but wrote codecs {[b.codec for b in batches]}"
    )
    records = consume(producer, broker.bootstrap, topic, {0: BEGINNING}, {0: len(msgs)})
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, m.key, m.value) for i, m in enumerate(msgs)
    ]

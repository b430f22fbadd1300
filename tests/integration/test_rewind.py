"""Consumers rewind: to the beginning, to an offset, and to a timestamp.

One topic holds N records with CreateTime timestamps one second apart (in the past), in
multi-record batches so that seeks land inside batches. Each client, in one consumer
session, reads everything, seeks back to the beginning and reads again, seeks to offset
42, and looks up the offset for a timestamp (ListOffsets by time) and reads from there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from support.clients import (
    Msg,
    batches_on_disk,
    confluent_consumer,
    create_topic,
    kcat_consume,
    offset_for_time,
    produce,
    unique_topic,
    watermarks,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

N = 100
SEEK_OFFSET = 42
TIME_INDEX = 57
STEP_MS = 1000
READ = 10  # records read after each seek


@dataclass(frozen=True)
class Data:
    topic: str
    base_ts: int

    def ts(self, i: int) -> int:
        return self.base_ts + i * STEP_MS


@dataclass
class Seen:
    """(offset, value, timestamp) triples each client read after each move."""

    first_pass: list[tuple[int, bytes, int]] = field(default_factory=list)
    after_beginning: list[tuple[int, bytes, int]] = field(default_factory=list)
    after_offset: list[tuple[int, bytes, int]] = field(default_factory=list)
    lookup_between: int = -1  # offset for a timestamp between records 56 and 57
    lookup_exact: int = -1  # offset for record 57's own timestamp
    lookup_after_last: int | None = -1  # None or -1: nothing that late
    after_time: list[tuple[int, bytes, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def data(broker: Any) -> Data:
    topic = create_topic(broker.bootstrap, unique_topic("rewind"))
    base = int(time.time() * 1000) - 3_600_000  # an hour ago, one record per second
    msgs = [Msg(0, b"k%d" % i, b"r%d" % i, timestamp=base + i * STEP_MS) for i in range(N)]
    produce("confluent", broker.bootstrap, topic, msgs, "gzip", linger_ms=100)
    assert watermarks(broker.bootstrap, topic) == (0, N)
    bases = {b.base_offset for b in batches_on_disk(broker.data_dir, topic)}
    assert SEEK_OFFSET not in bases and TIME_INDEX not in bases, "seeks should land mid-batch"
    return Data(topic, base)


def expected(d: Data, start: int, count: int) -> list[tuple[int, bytes, int]]:
    return [(i, b"r%d" % i, d.ts(i)) for i in range(start, min(start + count, N))]


def check(d: Data, seen: Seen, client: str) -> None:
    assert seen.first_pass == expected(d, 0, N), f"{client}: first full read"
    assert seen.after_beginning == expected(d, 0, READ), f"{client}: after seek to beginning"
    assert seen.after_offset == expected(d, SEEK_OFFSET, READ), f"{client}: after seek(42)"
    assert seen.lookup_between == TIME_INDEX, f"{client}: offsets_for_times between records"
    assert seen.lookup_exact == TIME_INDEX, f"{client}: offsets_for_times on a record's time"
    assert seen.lookup_after_last in (None, -1), f"{client}: lookup past the last record"
    assert seen.after_time == expected(d, TIME_INDEX, READ), f"{client}: after seek to time"


# --- confluent-kafka ---------------------------------------------------------------------


def _confluent_read(consumer: Any, count: int) -> list[tuple[int, bytes, int]]:
    out: list[tuple[int, bytes, int]] = []
    deadline = time.monotonic() + 20
    while len(out) < count and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=count - len(out), timeout=0.5):
            assert m.error() is None, m.error()
            out.append((m.offset(), m.value(), m.timestamp()[1]))
    return out


def test_confluent_rewind(broker: Any, data: Data) -> None:
    seen = Seen()
    with confluent_consumer(broker.bootstrap) as c:
        c.assign([TopicPartition(data.topic, 0, OFFSET_BEGINNING)])
        seen.first_pass = _confluent_read(c, N)
        c.seek(TopicPartition(data.topic, 0, OFFSET_BEGINNING))
        seen.after_beginning = _confluent_read(c, READ)
        c.seek(TopicPartition(data.topic, 0, SEEK_OFFSET))
        seen.after_offset = _confluent_read(c, READ)
        [between] = c.offsets_for_times(
            [TopicPartition(data.topic, 0, data.ts(TIME_INDEX) - STEP_MS // 2)], timeout=10)
        [exact] = c.offsets_for_times(
            [TopicPartition(data.topic, 0, data.ts(TIME_INDEX))], timeout=10)
        [late] = c.offsets_for_times(
            [TopicPartition(data.topic, 0, data.ts(N) + 1)], timeout=10)
        seen.lookup_between, seen.lookup_exact = between.offset, exact.offset
        seen.lookup_after_last = late.offset
        c.seek(between)
        seen.after_time = _confluent_read(c, READ)
    check(data, seen, "confluent")


# --- kafka-python ------------------------------------------------------------------------


def _kp_read(consumer: Any, count: int) -> list[tuple[int, bytes, int]]:
    out: list[tuple[int, bytes, int]] = []
    deadline = time.monotonic() + 20
    while len(out) < count and time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=500, max_records=count - len(out)).values():
            out += [(m.offset, m.value, m.timestamp) for m in recs]
    return out


def test_kafka_python_rewind(broker: Any, data: Data) -> None:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    seen = Seen()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False, request_timeout_ms=15000, fetch_max_wait_ms=100)
    try:
        tp = KTP(data.topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        seen.first_pass = _kp_read(c, N)
        c.seek_to_beginning(tp)
        seen.after_beginning = _kp_read(c, READ)
        c.seek(tp, SEEK_OFFSET)
        seen.after_offset = _kp_read(c, READ)
        between = c.offsets_for_times({tp: data.ts(TIME_INDEX) - STEP_MS // 2})[tp]
        exact = c.offsets_for_times({tp: data.ts(TIME_INDEX)})[tp]
        late = c.offsets_for_times({tp: data.ts(N) + 1})[tp]
        seen.lookup_between, seen.lookup_exact = between.offset, exact.offset
        seen.lookup_after_last = None if late is None else late.offset
        c.seek(tp, between.offset)
        seen.after_time = _kp_read(c, READ)
    finally:
        c.close(autocommit=False)
    check(data, seen, "kafka-python")


# --- aiokafka ----------------------------------------------------------------------------


async def _aio_read(consumer: Any, count: int) -> list[tuple[int, bytes, int]]:
    out: list[tuple[int, bytes, int]] = []
    deadline = time.monotonic() + 20
    while len(out) < count and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=500, max_records=count - len(out))
        for recs in batches.values():
            out += [(m.offset, m.value, m.timestamp) for m in recs]
    return out


def test_aiokafka_rewind(broker: Any, data: Data) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as ATP

    seen = Seen()

    async def run() -> None:
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=15000,
                             fetch_max_wait_ms=100)
        await c.start()
        try:
            tp = ATP(data.topic, 0)
            c.assign([tp])
            await c.seek_to_beginning(tp)
            seen.first_pass = await _aio_read(c, N)
            await c.seek_to_beginning(tp)
            seen.after_beginning = await _aio_read(c, READ)
            c.seek(tp, SEEK_OFFSET)
            seen.after_offset = await _aio_read(c, READ)
            between = (await c.offsets_for_times({tp: data.ts(TIME_INDEX) - STEP_MS // 2}))[tp]
            exact = (await c.offsets_for_times({tp: data.ts(TIME_INDEX)}))[tp]
            late = (await c.offsets_for_times({tp: data.ts(N) + 1}))[tp]
            seen.lookup_between, seen.lookup_exact = between.offset, exact.offset
            seen.lookup_after_last = None if late is None else late.offset
            c.seek(tp, between.offset)
            seen.after_time = await _aio_read(c, READ)
        finally:
            await c.stop()

    asyncio.run(run())
    check(data, seen, "aiokafka")


# --- kcat --------------------------------------------------------------------------------


def test_kcat_rewind(broker: Any, data: Data) -> None:
    """kcat starts a fresh consumer per run: -o beginning, -o 42, -o s@<timestamp>,
    and -o -10 (relative to the end)."""

    def read(offset: str, count: int) -> list[tuple[int, bytes, int]]:
        recs = kcat_consume(broker.bootstrap, data.topic, 0, offset, count)
        return [(r.offset, r.value or b"", r.timestamp) for r in recs]

    seen = Seen(
        first_pass=read("beginning", N),
        after_beginning=read("beginning", READ),
        after_offset=read(str(SEEK_OFFSET), READ),
        lookup_between=offset_for_time(broker.bootstrap, data.topic, 0,
                                       data.ts(TIME_INDEX) - STEP_MS // 2),
        lookup_exact=offset_for_time(broker.bootstrap, data.topic, 0, data.ts(TIME_INDEX)),
        lookup_after_last=offset_for_time(broker.bootstrap, data.topic, 0, data.ts(N) + 1),
        after_time=read(f"s@{data.ts(TIME_INDEX) - STEP_MS // 2}", READ),
    )
    check(data, seen, "kcat")
    assert read("-10", 10) == expected(data, N - 10, 10)

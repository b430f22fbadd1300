"""A broker killed with SIGKILL mid-stream loses nothing it acknowledged.

A confluent-kafka producer (acks=all) writes continuously from a thread, recording every
acknowledged (partition, offset, value) in its delivery callback. The broker (flushing
every message) is killed with SIGKILL while the producer is busy, restarted on the same
data directory and port, and the producer carries on. Afterwards every acknowledged
record is at its acknowledged offset, exactly once for the idempotent producer and at
least once otherwise; offsets are contiguous, and new records go after the old end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from strom.protocol.records import scan_batches
from support.clients import (
    BEGINNING,
    Msg,
    by_partition,
    confluent_producer_conf,
    consume,
    create_topic,
    end_offsets,
    partition_dir,
    produce,
    segment_files,
    unique_topic,
    watermarks,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PARTITIONS = 3
BEFORE_KILL = 3000  # acknowledged records before the kill
AFTER_RESTART = 3000  # more acknowledged records after the restart
MAX_OUTSTANDING = 2000  # records sent but not yet acknowledged


@dataclass
class Stream:
    """What the producer thread sent and what the broker acknowledged."""

    acked: list[tuple[int, int, bytes]] = field(default_factory=list)  # partition, offset, value
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    broker_down: bool = False  # lets the producer queue more while the broker is dead
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack_count(self) -> int:
        with self.lock:
            return len(self.acked)


def wait_until(what: str, condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def produce_continuously(producer: Producer, topic: str, stream: Stream,
                         stop: threading.Event) -> None:
    seqs = [0] * PARTITIONS

    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        with stream.lock:
            if err is not None:
                stream.errors.append(f"{err.name()}: {err.str()}")
            else:
                stream.acked.append((msg.partition(), msg.offset(), msg.value()))

    i = 0
    while not stop.is_set():
        with stream.lock:
            outstanding = i - len(stream.acked) - len(stream.errors)
        if outstanding >= MAX_OUTSTANDING + (1000 if stream.broker_down else 0):
            producer.poll(0.05)
            continue
        p = i % PARTITIONS
        value = b"%d:%d:" % (p, seqs[p]) + b"payload" * 8
        try:
            producer.produce(topic, value=value, key=b"k%d" % i, partition=p,
                             on_delivery=on_delivery)
        except BufferError:  # queue full while the broker is down: wait for room
            producer.poll(0.05)
            continue
        seqs[p] += 1
        i += 1
        stream.sent = i
        producer.poll(0)
        if i % 200 == 0:
            time.sleep(0.01)  # keep the stream steady rather than one giant burst


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("idempotent", "segment_bytes"),
    [(True, None), (False, None), (True, 30000)],
    ids=["idempotent", "acks-all", "idempotent-small-segments"],
)
def test_sigkill_mid_stream_loses_no_acknowledged_record(
    broker_factory: Any, idempotent: bool, segment_bytes: int | None
) -> None:
    overrides = {"log.flush.interval.messages": "1"}
    if segment_bytes:  # segments roll every few hundred records, also around the kill
        overrides["log.segment.bytes"] = str(segment_bytes)
    broker = broker_factory(overrides)
    topic = create_topic(broker.bootstrap, unique_topic("crash"), PARTITIONS)
    producer = Producer(confluent_producer_conf(
        broker.bootstrap,
        **{"acks": "all", "enable.idempotence": idempotent, "linger.ms": 5,
           "message.timeout.ms": 120000, "reconnect.backoff.max.ms": 500,
           "batch.num.messages": 200},
    ))
    stream, stop = Stream(), threading.Event()
    thread = threading.Thread(target=produce_continuously,
                              args=(producer, topic, stream, stop), daemon=True)
    thread.start()
    try:
        wait_until(f"{BEFORE_KILL} acknowledgements",
                   lambda: stream.ack_count() >= BEFORE_KILL, 60)
        broker.kill()  # SIGKILL while the producer is mid-stream
        acked_at_kill = stream.ack_count()
        sent_at_kill = stream.sent
        stream.broker_down = True
        wait_until("the producer to queue more records while the broker is down",
                   lambda: stream.sent >= sent_at_kill + 500, 30)
        broker.start()  # same data dir, same port
        stream.broker_down = False
        wait_until(f"{AFTER_RESTART} more acknowledgements after the restart",
                   lambda: stream.ack_count() >= acked_at_kill + AFTER_RESTART, 120)
    finally:
        stop.set()
        thread.join(timeout=30)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records still undelivered"
    assert not stream.errors, f"delivery errors: {stream.errors[:5]}"
    assert stream.ack_count() == stream.sent, "every record sent was acknowledged"

    end = end_offsets(broker.bootstrap, topic, range(PARTITIONS))
    records = consume("confluent", broker.bootstrap, topic,
                      dict.fromkeys(range(PARTITIONS), BEGINNING), end, timeout=120)
    logs = by_partition(records)

    for p in range(PARTITIONS):  # the log is whole: offsets 0..end-1 with no gaps
        assert [r.offset for r in logs[p]] == list(range(end[p])), f"partition {p} has gaps"
    by_offset = {(r.partition, r.offset): r.value for r in records}
    for p, offset, value in stream.acked:  # acknowledged means kept, where it was acked
        assert by_offset.get((p, offset)) == value, (
            f"acknowledged {value[:12]!r} at {p}/{offset}; log has {by_offset.get((p, offset))!r}"
        )
    for p in range(PARTITIONS):
        seqs = [int((r.value or b"").split(b":")[1]) for r in logs[p]]
        acked_seqs = sorted(int(v.split(b":")[1]) for q, _, v in stream.acked if q == p)
        assert set(acked_seqs) <= set(seqs)
        if idempotent:  # exactly once, in order
            assert seqs == list(range(len(seqs))), f"partition {p}: duplicates or gaps"
            assert seqs == acked_seqs
        else:  # at least once: retries may duplicate (and, without idempotence, reorder)
            assert set(seqs) == set(acked_seqs), f"partition {p}: a record nobody sent"

    # The recovered log takes new records right after its end.
    acks = produce("confluent", broker.bootstrap, topic,
                   [Msg(p, b"after", b"after-restart") for p in range(PARTITIONS)], "none")
    assert [(a.partition, a.offset) for a in acks if a] == [(p, end[p]) for p in
                                                            range(PARTITIONS)]
    tail = consume("confluent", broker.bootstrap, topic, end,
                   {p: end[p] + 1 for p in range(PARTITIONS)})
    assert sorted((r.partition, r.offset, r.value) for r in tail) == [
        (p, end[p], b"after-restart") for p in range(PARTITIONS)
    ]
    assert "Traceback" not in broker.log_text(), broker.log_text()[-3000:]
    if segment_bytes:
        assert len(segment_files(broker.data_dir, topic, 0)) > 5


def torn_tail(kind: str, last_batch: bytes, next_offset: int) -> bytes:
    """Bytes a crash could leave after the last complete batch."""
    batch = bytearray(last_batch)
    batch[0:8] = next_offset.to_bytes(8, "big")
    if kind == "half-batch":  # the write of a whole batch was cut short
        return bytes(batch[: len(batch) // 2])
    if kind == "bad-crc":  # a full-length batch whose bytes did not all reach the disk
        batch[-1] ^= 0xFF
        return bytes(batch)
    return bytes(4096)  # "zeros": the file grew but no data landed


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["half-batch", "bad-crc", "zeros"])
def test_torn_tail_is_truncated_after_sigkill(broker_factory: Any, kind: str) -> None:
    broker = broker_factory({"log.flush.interval.messages": "1"})
    topic = create_topic(broker.bootstrap, unique_topic(f"torn-{kind}"))
    msgs = [Msg(0, b"k%d" % i, b"v%d" % i) for i in range(500)]
    produce("confluent", broker.bootstrap, topic, msgs, "none", linger_ms=0,
            librdkafka={"batch.num.messages": 50})
    broker.kill()

    segment = partition_dir(broker.data_dir, topic) / segment_files(broker.data_dir, topic)[-1]
    good = segment.read_bytes()
    last_pos, last = list(scan_batches(good))[-1]
    assert last.next_offset == 500 and last_pos + last.size == len(good)
    with open(segment, "ab") as f:
        f.write(torn_tail(kind, good[last_pos:], 500))

    broker.start()
    assert watermarks(broker.bootstrap, topic) == (0, 500), "the torn tail was not cut off"
    assert segment.read_bytes() == good, "recovery must truncate to the last whole batch"
    records = consume("confluent", broker.bootstrap, topic, {0: BEGINNING}, {0: 500})
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, m.key, m.value) for i, m in enumerate(msgs)
    ]
    [ack] = produce("confluent", broker.bootstrap, topic, [Msg(0, b"new", b"new")], "none")
    assert ack is not None and ack.offset == 500
    [rec] = consume("kafka-python", broker.bootstrap, topic, {0: 500}, {0: 501})
    assert (rec.offset, rec.value) == (500, b"new")

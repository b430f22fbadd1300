"""Producer-state expiry (`producer.id.expiration.ms`) seen on the wire.

A producer whose last batch is stamped longer ago than the expiration is forgotten, as
Kafka forgets it: its next batch is judged as a new producer's (any sequence accepted,
an old retry appended again), and the snapshot written afterwards leaves it out, so a
restart does not bring it back. Producers stamped recently keep their state throughout.
Batch timestamps decide who is idle, so nothing here depends on how long a step takes:
the idle producers are stamped ten minutes ago, the active one half an hour ahead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess, wait_until
from support.raw_client import RawClient, create_topic, high_watermark, produce, record_batch

TOPIC = "expiry"
MINUTE = 60_000
FAST_SWEEP = {"producer.id.expiration.ms": str(MINUTE),
              "producer.id.expiration.check.interval.ms": "200"}


@pytest.fixture
def expiring_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("expiry") / "data", overrides=FAST_SWEEP)
    yield proc.start()
    proc.stop()


def _producer_id(raw: RawClient) -> int:
    body = raw.request(22, 4, transactional_id=None, transaction_timeout=60_000,
                       producer_id=-1, producer_epoch=-1).body
    assert body.error_code == ErrorCode.none
    return int(body.producer_id)


def _write(raw: RawClient, pid: int, seq: int, stamp: int) -> tuple[ErrorCode, int]:
    batch = record_batch([f"{pid}-{seq}".encode()], timestamps=[stamp], producer_id=pid,
                         producer_epoch=0, base_sequence=seq)
    entry = produce(raw, TOPIC, batch, acks=-1)
    return ErrorCode(entry.error_code), int(entry.base_offset)


def test_idle_producers_expire_and_stay_expired_across_a_restart(
        expiring_broker: BrokerProcess) -> None:
    now = int(time.time() * 1000)
    idle, ahead = now - 10 * MINUTE, now + 30 * MINUTE
    with RawClient(expiring_broker.bootstrap) as raw:
        assert create_topic(raw, TOPIC).error_code == ErrorCode.none
        active, gapped, retried, untouched = (_producer_id(raw) for _ in range(4))
        assert _write(raw, active, 0, ahead) == (ErrorCode.none, 0)
        assert _write(raw, gapped, 0, idle) == (ErrorCode.none, 1)
        assert _write(raw, retried, 0, idle) == (ErrorCode.none, 2)
        assert _write(raw, untouched, 0, idle) == (ErrorCode.none, 3)

        # a sequence gap is refused while the broker knows the producer, accepted once
        # its state expired (a refused batch appends nothing, so polling is harmless)
        accepted = wait_until(lambda: _write(raw, gapped, 10, idle)[0] == ErrorCode.none,
                              30, "the idle producer's state expires")
        assert accepted
        assert _write(raw, active, 10, ahead)[0] == ErrorCode.out_of_order_sequence_number
        assert _write(raw, active, 1, ahead)[0] == ErrorCode.none
        # a retry of a batch written before expiry is no longer recognised: appended again
        error, offset = _write(raw, retried, 0, idle)
        assert (error, offset > 2) == (ErrorCode.none, True)
        end = high_watermark(raw, TOPIC)

    # restart without the sweep: only the snapshot can tell what the broker remembers
    expiring_broker.overrides["producer.id.expiration.check.interval.ms"] = "600000"
    expiring_broker.restart()
    with RawClient(expiring_broker.bootstrap) as raw:
        assert high_watermark(raw, TOPIC) == end
        assert _write(raw, untouched, 7, idle) == (ErrorCode.none, end)
        assert _write(raw, active, 10, ahead)[0] == ErrorCode.out_of_order_sequence_number
        assert _write(raw, active, 2, ahead) == (ErrorCode.none, end + 1)


def test_librdkafka_idempotent_producer_goes_on_after_its_state_expired(
        expiring_broker: BrokerProcess) -> None:
    """librdkafka keeps its sequence numbers across the broker forgetting it; the broker
    must accept them (a new producer may start anywhere), with nothing lost or doubled."""
    idle = int(time.time() * 1000) - 10 * MINUTE
    producer = Producer({"bootstrap.servers": expiring_broker.bootstrap,
                         "enable.idempotence": True, "linger.ms": 5})
    failures: list[object] = []

    def send(first: int, count: int) -> None:
        for i in range(first, first + count):
            producer.produce(TOPIC, f"m{i}".encode(), timestamp=idle,
                             on_delivery=lambda err, _msg: err and failures.append(err))
        assert producer.flush(20) == 0

    send(0, 50)
    logged = wait_until(lambda: "expired" in expiring_broker.log_text(), 30,
                        "the broker expires the idle producer")
    assert logged
    send(50, 50)
    assert failures == []
    with RawClient(expiring_broker.bootstrap) as raw:
        assert high_watermark(raw, TOPIC) == 100

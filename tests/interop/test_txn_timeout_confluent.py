"""A transactional producer (confluent-kafka / librdkafka) whose transaction outlives its
`transaction.timeout.ms`, on Strom and on Apache Kafka 4.4 as the oracle: the coordinator
aborts the transaction and bumps the epoch, and the producer's next write is answered
INVALID_PRODUCER_EPOCH ("an old epoch"), which librdkafka takes as fatal fencing.

Strom once answered that write with the coordinator's PRODUCER_FENCED: librdkafka took it
for an abortable error, refused every produce() with _STATE and then failed at EndTxn —
the same end reached later, through an error code no Kafka broker sends there (a Strom
Streams thread died of the _STATE).
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from support.broker_process import wait_until
from support.clients import create_topic
from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


def test_a_write_after_the_transaction_timed_out_is_fenced_as_on_kafka(target: Target) -> None:
    topic = create_topic(target.bootstrap, f"txn-timeout-{uuid.uuid4().hex[:8]}", 1)
    producer = Producer({"bootstrap.servers": target.bootstrap,
                         "transactional.id": f"timeout-{uuid.uuid4().hex[:8]}",
                         "transaction.timeout.ms": 1000, "socket.timeout.ms": 1000,
                         "linger.ms": 0})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"first")
    assert producer.flush(10) == 0
    time.sleep(2)  # past the transaction timeout; the coordinator aborts it when it looks

    def refused() -> KafkaError | None:
        try:
            producer.produce(topic, b"later")
            producer.flush(1)
        except KafkaException as exc:
            return exc.args[0]  # type: ignore[no-any-return]
        return None

    # both brokers look for timed-out transactions every 10 s by default
    error = wait_until(refused, 60, "a write refused after the transaction timed out")
    assert error.fatal(), error
    assert error.code() == KafkaError._FENCED, error
    assert "old epoch" in error.str(), error  # INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED

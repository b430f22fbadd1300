"""`KafkaBasedLog`: a compacted topic read as a log of records, Kafka Connect's way of
keeping state (configs, offsets, statuses) in Kafka.

`start()` creates the topic if missing (compacted, with the given partitions and
replication factor), then `read_to_end()` replays every record into the callback; later
calls catch up with what others wrote (distributed mode calls it before acting on a new
assignment, as Kafka's herder does). Writes go through one producer that partitions keys
with murmur2, Java's default partitioner, so a key lands in the partition a Java worker
would choose: compaction and "last write wins" only hold within one partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from strom.client import KafkaClients
from strom.client.admin import ensure_topic
from strom.client.errors import ClientTimeoutError

Record = Callable[[bytes | None, bytes | None, int, int], None]
#: librdkafka's name for Java's default partitioner (murmur2 of the key; random if keyless)
JAVA_PARTITIONER = {"partitioner": "murmur2_random"}


class KafkaBasedLog:
    def __init__(self, clients: KafkaClients, topic: str, on_record: Record, *, partitions: int = 1,
                 replication_factor: int = -1, topic_config: Mapping[str, str] | None = None,
                 client_id: str = "connect-log") -> None:
        self.clients, self.topic, self.on_record = clients, topic, on_record
        self.partitions, self.replication_factor = partitions, replication_factor
        self.topic_config = {"cleanup.policy": "compact", **(topic_config or {})}
        self.client_id = client_id
        self.consumer: Any = None
        self.producer: Any = None

    def start(self, timeout: float = 30.0) -> None:
        from confluent_kafka import TopicPartition

        _retrying(lambda: ensure_topic(self.clients, self.topic, self.partitions, self.replication_factor,
                                       self.topic_config), timeout)
        self.producer = self.clients.producer({**JAVA_PARTITIONER, "acks": "all",
                                               "enable.idempotence": True,
                                               "client.id": f"{self.client_id}-producer"})
        self.consumer = self.clients.consumer({"group.id": f"{self.client_id}-{self.topic}",
                                               "enable.auto.commit": False,
                                               "client.id": f"{self.client_id}-consumer"})
        found = _retrying(lambda: self.clients.topic_metadata([self.topic], self.producer), timeout)
        metadata = found[self.topic]
        self.consumer.assign([TopicPartition(self.topic, p, -2) for p in sorted(metadata.partitions)])
        self.read_to_end(timeout)

    def read_to_end(self, timeout: float = 30.0) -> None:
        """Replay everything written so far (by anyone) into the callback."""
        from confluent_kafka import KafkaException, TopicPartition

        ends, starts = {}, {}
        for tp in self.consumer.assignment():
            partition = TopicPartition(tp.topic, tp.partition)
            # asked again while the broker cannot answer yet: a topic created a moment ago
            # (a connector's own offsets topic) has no leader until its election
            # (NOT_LEADER_FOR_PARTITION from Kafka)
            low, high = _retrying(partial(self.consumer.get_watermark_offsets, partition,
                                          timeout=timeout), timeout, retried=(KafkaException,))
            ends[tp.partition], starts[tp.partition] = high, low
        # a partition not read yet has no position (negative): it starts at its low watermark
        positions = {tp.partition: tp.offset if tp.offset >= 0 else starts[tp.partition]
                     for tp in self.consumer.position(self.consumer.assignment())}
        deadline = time.monotonic() + timeout
        while any(positions.get(p, 0) < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise ClientTimeoutError(self.clients.bootstrap_servers, timeout)
            messages = self.consumer.consume(500, 0.2)
            for message in messages:
                if message.error() is None:
                    self.on_record(message.key(), message.value(), message.partition(), message.offset())
                    positions[message.partition()] = message.offset() + 1
            if not messages:  # transaction markers and aborted records move the position silently
                positions.update({tp.partition: tp.offset for tp in self.consumer.position(
                    self.consumer.assignment()) if tp.offset >= 0})

    def send(self, key: bytes, value: bytes | None) -> None:
        """Write one record (None: a tombstone); `flush` waits for it."""
        while True:
            try:
                self.producer.produce(self.topic, key=key, value=value)
                return
            except BufferError:
                self.producer.poll(0.1)

    def flush(self, timeout: float | None = None) -> None:
        self.clients.flush(self.producer, timeout)

    def stop(self) -> None:
        if self.producer is not None:
            self.producer.flush(10)
        if self.consumer is not None:
            self.consumer.close()


def _retrying(call: Callable[[], Any], timeout: float,
              retried: tuple[type[Exception], ...] | None = None) -> Any:
    """`call()`, retried on a client error (or on `retried`) for `timeout` s: workers
    starting together on a busy broker must not die of one lost metadata request."""
    from strom.client.errors import KafkaClientError

    errors = retried or (KafkaClientError,)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)

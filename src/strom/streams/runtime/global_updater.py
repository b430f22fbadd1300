"""Keeps an instance's global stores in step with their topics.

At start the stores are rebuilt from the beginning of their topics (every partition, read
to the end offsets taken when the read starts) before any task runs; then each turn of
the stream thread's loop applies what has arrived since, without blocking. The consumer
is assigned the partitions directly and commits nothing: the stores are rebuilt on
every start (a checkpoint for persistent global stores is left to do).
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from strom.client import KafkaClients
from strom.streams.errors import StreamsError
from strom.streams.global_state import GlobalState
from strom.streams.record import ConsumedRecord
from strom.streams.runtime import consumer_errors
from strom.streams.runtime.config import StreamsConfig
from strom.streams.topology import Topology

log = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_S = 300.0


class GlobalUpdater:
    def __init__(self, topology: Topology, config: StreamsConfig, clients: KafkaClients) -> None:
        directory = config.app_state_dir / "global"
        shutil.rmtree(directory, ignore_errors=True)
        self.state = GlobalState(topology.global_stores, config.application_id, directory,
                                 config.default_key_serde, config.default_value_serde)
        self._clients = clients
        self._consumer: Any = None
        if self.state.topics():
            self._consumer = clients.consumer({
                "client.id": f"{config.application_id}-global-consumer",
                "group.id": f"{config.application_id}-global", "enable.auto.commit": False,
                "isolation.level": ("read_committed" if config.exactly_once
                                    else "read_uncommitted")})

    def bootstrap(self) -> None:
        """Read every global topic to its current end."""
        if self._consumer is None:
            return
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = self._clients.topic_metadata(self.state.topics())
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING)
                      for topic, info in metadata.items() for p in info.partitions]
        self._consumer.assign(partitions)
        ends = {(tp.topic, tp.partition): self._consumer.get_watermark_offsets(tp, timeout=10)[1]
                for tp in partitions}
        deadline = time.monotonic() + BOOTSTRAP_TIMEOUT_S
        while any(self._position(topic, p) < end for (topic, p), end in ends.items()):
            if time.monotonic() > deadline:
                raise StreamsError("global stores: could not read their topics to the end")
            self.poll(0.2)
        log.info("global stores restored: %s", sorted(self.state.stores))

    def _position(self, topic: str, partition: int) -> int:
        from confluent_kafka import TopicPartition

        offset: int = self._consumer.position([TopicPartition(topic, partition)])[0].offset
        return max(offset, 0)

    def poll(self, timeout: float = 0.0) -> None:
        if self._consumer is None:
            return
        for msg in self._consumer.consume(500, timeout):
            if msg.error() is not None:
                consumer_errors.check(msg.error(), "global consumer")
                continue
            self.state.apply(ConsumedRecord(msg.topic(), msg.partition(), msg.offset(),
                                            msg.timestamp()[1], msg.key(), msg.value(),
                                            tuple(msg.headers() or ())))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self.state.close()

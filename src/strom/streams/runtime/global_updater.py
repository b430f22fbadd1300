"""Keeps an instance's global stores in step with their topics.

At start the stores are brought up to the end of their topics (every partition, read to
the end offsets taken when the read starts) before any task runs; then each turn of the
stream thread's loop applies what has arrived since, without blocking. The consumer is
assigned the partitions directly and commits nothing to the group.

Persistent (RocksDB) global stores keep their data across restarts: as Kafka's
GlobalStateManagerImpl, the instance writes `<state.dir>/<application.id>/global/.checkpoint`
(the task checkpoint format: `topic partition next-offset` lines) after the start-up read,
every commit interval and at close, each time after flushing the stores, so the file never
claims more than the stores hold. A start with a checkpoint reads each checkpointed
partition from its offset on (only the tail); a start without one wipes the directory and
reads from the beginning. In-memory global stores are always read whole.
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
from strom.streams.runtime import checkpoint, consumer_errors
from strom.streams.runtime.config import StreamsConfig
from strom.streams.topology import Topology

log = logging.getLogger(__name__)

BOOTSTRAP_TIMEOUT_S = 300.0


class GlobalUpdater:
    def __init__(self, topology: Topology, config: StreamsConfig, clients: KafkaClients) -> None:
        self.directory = config.app_state_dir / "global"
        self._checkpointed = checkpoint.read(self.directory)
        if not self._checkpointed:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.state = GlobalState(topology.global_stores, config.application_id, self.directory,
                                 config.default_key_serde, config.default_value_serde)
        self._persistent = self.state.persistent_topics()
        self._positions = {key: offset for key, offset in self._checkpointed.items()
                           if key[0] in self._persistent}
        self._interval_s = (config.commit_interval_ms or 30_000) / 1000
        self._next_checkpoint = 0.0
        self.restored_records = 0  # applied by the start-up read (a restart: only the tail)
        self._clients = clients
        self._consumer: Any = None
        if self.state.topics():
            self._consumer = clients.consumer({
                "client.id": f"{config.application_id}-global-consumer",
                "group.id": f"{config.application_id}-global", "enable.auto.commit": False,
                "auto.offset.reset": "earliest",  # a checkpoint older than the log start
                "isolation.level": ("read_committed" if config.exactly_once
                                    else "read_uncommitted")})

    def bootstrap(self) -> None:
        """Read every global topic to its current end (from the checkpoint, if any)."""
        if self._consumer is None:
            return
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = self._clients.topic_metadata(self.state.topics())
        partitions = [TopicPartition(topic, p, self._positions.get((topic, p), OFFSET_BEGINNING))
                      for topic, info in metadata.items() for p in info.partitions]
        self._consumer.assign(partitions)
        ends = {(tp.topic, tp.partition): self._consumer.get_watermark_offsets(tp, timeout=10)[1]
                for tp in partitions}
        deadline = time.monotonic() + BOOTSTRAP_TIMEOUT_S
        while any(self._position(topic, p) < end for (topic, p), end in ends.items()):
            if time.monotonic() > deadline:
                raise StreamsError("global stores: could not read their topics to the end")
            self.restored_records += self._apply(self._consumer.consume(500, 0.2))
        self.checkpoint()
        log.info("global stores restored: %s (%d records read)", sorted(self.state.stores),
                 self.restored_records)

    def _position(self, topic: str, partition: int) -> int:
        from confluent_kafka import TopicPartition

        offset: int = self._consumer.position([TopicPartition(topic, partition)])[0].offset
        return max(offset, 0)

    def poll(self, timeout: float = 0.0) -> None:
        if self._consumer is None:
            return
        self._apply(self._consumer.consume(500, timeout))
        if time.monotonic() >= self._next_checkpoint:
            self.checkpoint()

    def _apply(self, messages: list[Any]) -> int:
        applied = 0
        for msg in messages:
            if msg.error() is not None:
                consumer_errors.check(msg.error(), "global consumer")
                continue
            self.state.apply(ConsumedRecord(msg.topic(), msg.partition(), msg.offset(),
                                            msg.timestamp()[1], msg.key(), msg.value(),
                                            tuple(msg.headers() or ())))
            if msg.topic() in self._persistent:
                self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            applied += 1
        return applied

    def checkpoint(self) -> None:
        """Flush the stores, then record the offsets they hold (persistent stores only)."""
        self._next_checkpoint = time.monotonic() + self._interval_s
        if not self._positions:
            return
        self.state.flush()
        checkpoint.write(self.directory, dict(self._positions))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self.checkpoint()
        self.state.close()

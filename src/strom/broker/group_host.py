"""Hosts the group coordinator in the broker: its log, its topic, its leadership.

The coordinator owns exactly the `__consumer_offsets` partitions this broker leads. On
every metadata image the host loads partitions that became ours and unloads those that
moved away, so the coordinator follows partition leadership (the seam the replicated
cluster relies on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from strom.cluster.image import MetadataImage
from strom.cluster.store import MetadataError
from strom.coordinator.group.config import GroupConfig, LoopScheduler
from strom.coordinator.group.coordinator import GroupCoordinator
from strom.protocol import records

if TYPE_CHECKING:
    from strom.broker.server import Broker

log = logging.getLogger(__name__)
OFFSETS_TOPIC = "__consumer_offsets"
REPLICATION_TIMEOUT_S = 5.0  # offsets.commit.timeout.ms


class PartitionOffsetsLog:
    """`OffsetsLog` over the broker's own `__consumer_offsets` partitions."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def append(self, partition: int, entries: list[tuple[bytes, bytes | None]]) -> str:
        target = self.broker.replicas.get(OFFSETS_TOPIC, partition)
        if target is None or not target.is_leader:
            return "not_coordinator"
        batch = records.encode_batch(list(entries), timestamp_ms=self.broker.clock())
        result = target.append(batch)
        if result.error != "none":
            log.error("cannot write to %s-%d: %s", OFFSETS_TOPIC, partition, result.message)
            return "coordinator_not_available"
        return "none"

    async def wait_durable(self, partition: int) -> str:
        target = self.broker.replicas.get(OFFSETS_TOPIC, partition)
        if target is None or not target.is_leader:
            return "not_coordinator"
        waiter = target.wait_for_high_watermark(target.log.log_end_offset)
        try:
            replicated = await asyncio.wait_for(waiter, REPLICATION_TIMEOUT_S)
        except TimeoutError:
            return "coordinator_not_available"
        return "none" if replicated else "not_coordinator"

    def replay(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]:
        target = self.broker.replicas.get(OFFSETS_TOPIC, partition)
        if target is None:
            return
        offset = target.log.log_start_offset
        while offset < target.high_watermark:
            chunk = target.read(offset, 4 << 20).records
            if not chunk:
                return
            for pos, header in records.scan_batches(chunk):
                if header.is_control:
                    offset = header.next_offset
                    continue
                batch = chunk[pos : pos + header.size]
                for record in records.decode_records(batch):
                    if record.offset >= offset and record.key is not None:
                        yield record.key, record.value
                offset = header.next_offset


class GroupHost:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        config = broker.config
        self.num_partitions = config.get_int("offsets.topic.num.partitions")
        self.coordinator = GroupCoordinator(
            PartitionOffsetsLog(broker),
            GroupConfig(
                num_partitions=self.num_partitions,
                min_session_timeout_ms=config.get_int("group.min.session.timeout.ms"),
                max_session_timeout_ms=config.get_int("group.max.session.timeout.ms"),
                initial_rebalance_delay_ms=config.get_int("group.initial.rebalance.delay.ms"),
                max_group_size=config.get_int("group.max.size"),
                offset_metadata_max_bytes=config.get_int("offset.metadata.max.bytes"),
                offsets_retention_ms=config.get_int("offsets.retention.minutes") * 60_000,
            ),
            LoopScheduler(),
            broker.clock,
            self._partition_exists,
        )

    def _partition_exists(self, topic: str, partition: int) -> bool:
        info = self.broker.store.image().topics.get(topic)
        return info is not None and partition in info.partitions

    def ensure_topic(self) -> str:
        """Create `__consumer_offsets` on first use, as Kafka does; returns an error name."""
        image = self.broker.store.image()
        if OFFSETS_TOPIC in image.topics:
            return "none"
        wanted_rf = self.broker.config.get_int("offsets.topic.replication.factor")
        if self.broker.config.get_str("zookeeper.connect") and len(image.brokers) < wanted_rf:
            # As Kafka: a cluster waits for enough brokers rather than creating an
            # under-replicated offsets topic it could never grow.
            log.info("not creating %s yet: %d live broker(s), replication factor %d",
                     OFFSETS_TOPIC, len(image.brokers), wanted_rf)
            return "coordinator_not_available"
        rf = min(wanted_rf, len(image.brokers))
        if rf < wanted_rf:
            log.info("creating %s with replication factor %d (%d configured, %d broker(s))",
                     OFFSETS_TOPIC, rf, wanted_rf, len(image.brokers))
        from strom.broker.topic_admin import TopicSpec

        spec = TopicSpec(OFFSETS_TOPIC, self.num_partitions, rf, {}, {
            "cleanup.policy": "compact",
            "segment.bytes": str(self.broker.config.get_int("offsets.topic.segment.bytes")),
            "compression.type": "producer",
        })
        try:
            self.broker.admin.create(spec, internal=True)
        except MetadataError as exc:
            if exc.error != "topic_already_exists":
                log.error("cannot create %s: %s", OFFSETS_TOPIC, exc)
                return "coordinator_not_available"
        return "none"

    def on_image(self, image: MetadataImage) -> None:
        topic = image.topics.get(OFFSETS_TOPIC)
        me = self.broker.broker_id
        led = set()
        if topic is not None:
            led = {p.partition for p in topic.partitions.values()
                   if p.leader == me and self.broker.replicas.get(OFFSETS_TOPIC, p.partition)}
        coordinator = self.coordinator
        for partition in sorted(coordinator.owned - led):
            coordinator.unload(partition)
        for partition in sorted(led - coordinator.owned):
            coordinator.load(partition)

    def coordinator_for(self, group_id: str) -> tuple[str, int]:
        """(error, leader broker id) of the group's offsets partition."""
        error = self.ensure_topic()
        if error != "none":
            return error, -1
        topic = self.broker.store.image().topics[OFFSETS_TOPIC]
        info = topic.partitions.get(self.coordinator.partition_for(group_id))
        if info is None or info.leader < 0:
            return "coordinator_not_available", -1
        return "none", info.leader

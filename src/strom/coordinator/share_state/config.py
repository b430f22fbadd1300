"""Where a share-partition's state lives and the share coordinator's settings.

Kafka's ShareCoordinatorService maps a share-partition to the `__share_group_state`
partition `Utils.abs("<group>:<topic id>:<partition>".hashCode()) % partitions`, the
topic id in Kafka's Uuid text (URL-safe base64, no padding). `Utils.abs` is
`Math.abs` with Integer.MIN_VALUE mapped to 0 (not a mask of the sign bit).
"""

from __future__ import annotations

import base64
import functools
import uuid
from dataclasses import dataclass

from strom.coordinator.group.config import java_abs, java_string_hash

STATE_TOPIC = "__share_group_state"


def kafka_uuid_text(value: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def coordinator_key(group_id: str, topic_id: uuid.UUID, partition: int) -> str:
    """Kafka's SharePartitionKey.asCoordinatorKey: the FindCoordinator key (type 2)."""
    return f"{group_id}:{kafka_uuid_text(topic_id)}:{partition}"


@functools.lru_cache(maxsize=1 << 16)
def partition_for_key(key: str, num_partitions: int) -> int:
    """The `__share_group_state` partition of a coordinator key, as Kafka computes it."""
    return java_abs(java_string_hash(key)) % num_partitions


def partition_for(group_id: str, topic_id: uuid.UUID, partition: int,
                  num_partitions: int) -> int:
    return partition_for_key(coordinator_key(group_id, topic_id, partition), num_partitions)


@dataclass(frozen=True, slots=True)
class ShareCoordinatorConfig:
    """Kafka's `share.coordinator.*` settings Strom reads (Kafka 4.4's defaults)."""

    num_partitions: int = 50  # share.coordinator.state.topic.num.partitions
    replication_factor: int = 3  # share.coordinator.state.topic.replication.factor
    min_isr: int = 2  # share.coordinator.state.topic.min.isr
    segment_bytes: int = 104_857_600  # share.coordinator.state.topic.segment.bytes
    snapshot_every: int = 500  # share.coordinator.snapshot.update.records.per.snapshot
    prune_interval_ms: int = 300_000  # share.coordinator.state.topic.prune.interval.ms
    # share.coordinator.cold.partition.snapshot.interval.ms
    cold_snapshot_interval_ms: int = 300_000

"""Keeps the partitions hosted here in step with the metadata image.

When the image gains a partition assigned to this broker, its log is created; when a
topic disappears, its logs are deleted; when topic configs change, logs and partition
policies are updated. Handlers find partitions here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from strom.broker.partition import Partition, PartitionPolicy
from strom.cluster.image import MetadataImage, TopicInfo
from strom.config.broker import BrokerConfig
from strom.config.topic import typed_topic_value
from strom.storage import LogConfig, LogManager

log = logging.getLogger(__name__)


def _int(name: str, overrides: Mapping[str, str], props: Mapping[str, str]) -> int:
    value = typed_topic_value(name, overrides, props)
    assert isinstance(value, int)
    return value


def log_config_for(overrides: Mapping[str, str], props: Mapping[str, str]) -> LogConfig:
    return LogConfig(
        segment_bytes=_int("segment.bytes", overrides, props),
        segment_ms=_int("segment.ms", overrides, props),
        retention_ms=_int("retention.ms", overrides, props),
        retention_bytes=_int("retention.bytes", overrides, props),
        index_interval_bytes=_int("index.interval.bytes", overrides, props),
        segment_index_bytes=_int("segment.index.bytes", overrides, props),
        flush_messages=_int("flush.messages", overrides, props),
        flush_ms=_int("flush.ms", overrides, props),
        file_delete_delay_ms=_int("file.delete.delay.ms", overrides, props),
    )


def policy_for(overrides: Mapping[str, str], props: Mapping[str, str]) -> PartitionPolicy:
    timestamp_type = typed_topic_value("message.timestamp.type", overrides, props)
    return PartitionPolicy(
        max_message_bytes=_int("max.message.bytes", overrides, props),
        log_append_time=timestamp_type == "LogAppendTime",
        timestamp_before_max_ms=_int("message.timestamp.before.max.ms", overrides, props),
        timestamp_after_max_ms=_int("message.timestamp.after.max.ms", overrides, props),
        min_insync_replicas=_int("min.insync.replicas", overrides, props),
    )


class ReplicaManager:
    def __init__(
        self,
        config: BrokerConfig,
        logs: LogManager,
        clock: Callable[[], int],
    ) -> None:
        self.config = config
        self.logs = logs
        self.broker_id = config.broker_id
        self._clock = clock
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._topic_configs: dict[str, dict[str, str]] = {}

    def get(self, topic: str, partition: int) -> Partition | None:
        return self.partitions.get((topic, partition))

    def on_image(self, image: MetadataImage) -> None:
        """Apply a new metadata image: create, reconfigure and delete local partitions."""
        props = self.config.props
        for topic in image.topics.values():
            self._sync_topic(topic, props)
        live = set(image.topics)
        for key in [k for k in self.partitions if k[0] not in live]:
            self._drop(key)
        for gone in [t for t in self._topic_configs if t not in live]:
            del self._topic_configs[gone]

    def _sync_topic(self, topic: TopicInfo, props: Mapping[str, str]) -> None:
        config_changed = self._topic_configs.get(topic.name) != topic.configs
        self._topic_configs[topic.name] = dict(topic.configs)
        log_config = log_config_for(topic.configs, props)
        policy = policy_for(topic.configs, props)
        for info in topic.partitions.values():
            if self.broker_id not in info.replicas:
                continue
            key = (topic.name, info.partition)
            existing = self.partitions.get(key)
            if existing is None:
                log_ = self.logs.get_or_create(topic.name, info.partition, log_config)
                self.partitions[key] = Partition(
                    topic.name, info.partition, topic.topic_id, log_, policy, self._clock,
                    info.leader_epoch,
                )
            elif config_changed:
                existing.update(log_config, policy)
            if existing is not None:
                existing.leader_epoch = info.leader_epoch

    def _drop(self, key: tuple[str, int]) -> None:
        self.partitions.pop(key)
        self.logs.delete_log(*key)
        log.info("deleted partition %s-%d", *key)

    def log_config_lookup(self, image: MetadataImage) -> Callable[[str], LogConfig]:
        def lookup(topic: str) -> LogConfig:
            info = image.topics.get(topic)
            return log_config_for(info.configs if info else {}, self.config.props)

        return lookup

    def high_watermarks(self) -> dict[tuple[str, int], int]:
        return {k: p.high_watermark for k, p in self.partitions.items()}

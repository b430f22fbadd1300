"""Keeps the partitions hosted here in step with the metadata image.

When the image gains a partition assigned to this broker, its log is created; when a
topic disappears, its logs are deleted; when topic configs change, logs and partition
policies are updated. Handlers find partitions here and nowhere else.

Leadership also comes from the image: a partition led here becomes leader (and stops
fetching); one led elsewhere becomes a follower and is handed to the replica fetcher.
ISR changes the leader wants are written through the metadata store and adopted when
the image comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from strom.broker.partition import Partition, PartitionPolicy
from strom.cluster.image import MetadataImage, PartitionInfo, TopicInfo
from strom.config.broker import BROKER_CONFIGS, BrokerConfig
from strom.config.topic import typed_topic_value
from strom.storage import LogConfig, LogManager
from strom.storage.validator import RecordPolicy

if TYPE_CHECKING:
    from strom.broker.replica_fetcher import ReplicaFetcherManager
    from strom.cluster.store import MetadataStore

log = logging.getLogger(__name__)


def _int(name: str, overrides: Mapping[str, str], props: Mapping[str, str]) -> int:
    value = typed_topic_value(name, overrides, props)
    assert isinstance(value, int)
    return value


def _is_compacted(overrides: Mapping[str, str], props: Mapping[str, str]) -> bool:
    policy = typed_topic_value("cleanup.policy", overrides, props)
    return isinstance(policy, list) and "compact" in policy


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
        records=RecordPolicy(
            max_message_bytes=_int("max.message.bytes", overrides, props),
            log_append_time=timestamp_type == "LogAppendTime",
            timestamp_before_max_ms=_int("message.timestamp.before.max.ms", overrides, props),
            timestamp_after_max_ms=_int("message.timestamp.after.max.ms", overrides, props),
            compacted=_is_compacted(overrides, props),
            decompression_max_bytes=int(props.get("strom.decompression.max.bytes")
                                        or BROKER_CONFIGS["strom.decompression.max.bytes"].default
                                        or 0),
        ),
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
        self.fetchers: ReplicaFetcherManager | None = None
        self.store: MetadataStore | None = None
        self._startup_hw: dict[tuple[str, int], int] = {}

    def get(self, topic: str, partition: int) -> Partition | None:
        return self.partitions.get((topic, partition))

    def on_image(self, image: MetadataImage) -> None:
        """Apply a new metadata image: create, reconfigure and delete local partitions."""
        props = self.config.props
        for topic in image.topics.values():
            self._sync_topic(topic, props)
        for key in [k for k in self.partitions if not self._assigned_here(image, k)]:
            self._drop(key)
        live = set(image.topics)
        for gone in [t for t in self._topic_configs if t not in live]:
            del self._topic_configs[gone]

    def _assigned_here(self, image: MetadataImage, key: tuple[str, int]) -> bool:
        topic = image.topics.get(key[0])
        info = topic.partitions.get(key[1]) if topic is not None else None
        return info is not None and self.broker_id in info.replicas

    def _sync_topic(self, topic: TopicInfo, props: Mapping[str, str]) -> None:
        config_changed = self._topic_configs.get(topic.name) != topic.configs
        self._topic_configs[topic.name] = dict(topic.configs)
        mine = [info for info in topic.partitions.values() if self.broker_id in info.replicas]
        if config_changed or any((topic.name, i.partition) not in self.partitions for i in mine):
            # Typed settings are resolved only when something uses them: every ISR or
            # leader change publishes a new image, and most leave configs untouched.
            log_config = log_config_for(topic.configs, props)
            policy = policy_for(topic.configs, props)
        for info in mine:
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
            self._apply_role(self.partitions[key], info)

    def _apply_role(self, partition: Partition, info: PartitionInfo) -> None:
        key = (partition.topic, partition.index)
        me = self.broker_id
        hw = self._startup_hw.pop(key, None)
        if info.leader == me:
            if not partition.is_leader or partition.leader_epoch != info.leader_epoch:
                if self.fetchers is not None:
                    self.fetchers.unfollow(key)
                if partition.leader_id not in (-1, me):
                    log.info("became leader of %s-%d (epoch %d)", *key, info.leader_epoch)
            partition.become_leader(info.leader_epoch, info.replicas, info.isr,
                                    info.partition_epoch, me, hw)
            return
        moved = (partition.is_leader or partition.leader_id != info.leader
                 or partition.leader_epoch != info.leader_epoch)
        partition.become_follower(info.leader, info.leader_epoch, info.replicas, info.isr,
                                  info.partition_epoch, hw)
        if moved and self.fetchers is not None:
            log.info("following %d for %s-%d (epoch %d)", info.leader, *key, info.leader_epoch)
            self.fetchers.follow(partition, info.leader)

    def set_startup_high_watermarks(self, hws: Mapping[tuple[str, int], int]) -> None:
        self._startup_hw = dict(hws)

    # --- ISR changes ------------------------------------------------------------------

    def propose_isr(self, partition: Partition, isr: tuple[int, ...]) -> None:
        """Write a new ISR for a partition we lead; ignored if leadership moved meanwhile."""
        if self.store is None or self.broker_id not in isr:
            return
        me, epoch, index = self.broker_id, partition.leader_epoch, partition.index

        def change(topic: TopicInfo) -> TopicInfo | None:
            current = topic.partitions.get(index)
            if current is None or current.leader != me or current.leader_epoch != epoch:
                return None
            if set(current.isr) == set(isr):
                return None
            updated = replace(current, isr=isr, partition_epoch=current.partition_epoch + 1)
            return replace(topic, partitions={**topic.partitions, index: updated})

        try:
            if self.store.update_topic(partition.topic, change) is not None:
                log.info("ISR of %s-%d is now %s", partition.topic, index, list(isr))
        except Exception:
            log.exception("cannot change the ISR of %s-%d", partition.topic, index)

    def maybe_expand_isr(self, partition: Partition) -> None:
        proposed = partition.isr_candidates()
        if proposed is not None:
            self.propose_isr(partition, proposed)

    def shrink_lagging_isrs(self) -> None:
        lag_ms = self.config.get_int("replica.lag.time.max.ms")
        for partition in list(self.partitions.values()):
            if partition.is_leader:
                proposed = partition.lagging_isr(lag_ms)
                if proposed is not None:
                    self.propose_isr(partition, proposed)

    def _drop(self, key: tuple[str, int]) -> None:
        if self.fetchers is not None:
            self.fetchers.unfollow(key)
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

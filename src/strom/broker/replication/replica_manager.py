"""Keeps the partitions hosted here in step with the metadata image.

When the image gains a partition assigned to this broker, its log is created; when a
topic disappears, its logs are deleted; when topic configs change, logs and partition
policies are updated. Handlers find partitions here and nowhere else.

Creation and deletion go through ``ReplicaBuilder`` so that neither runs for long on the
event loop: partitions an admin request prepared are only adopted here, many new ones
are built in the background (``ready_listeners`` hear when they are), and a partition
whose log cannot be opened for want of file descriptors is *offline*
(``offline_reason``) rather than a failed start.

Leadership also comes from the image: a partition led here becomes leader (and stops
fetching); one led elsewhere becomes a follower and is handed to the replica fetcher.
ISR changes the leader wants are written through the metadata store and adopted when
the image comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from strom.broker.replication.partition import Partition, PartitionPolicy
from strom.broker.replication.replica_builder import Blueprint, Key, Outcome, ReplicaBuilder
from strom.broker.resource_budget import PartitionBudget, open_file_limit
from strom.cluster.image import MetadataImage, PartitionInfo, TopicInfo
from strom.config.broker import BROKER_CONFIGS, BrokerConfig
from strom.config.topic import typed_topic_value
from strom.storage import LogConfig, LogManager
from strom.storage.validator import RecordPolicy

if TYPE_CHECKING:
    from strom.broker.services import Followers, MetadataWriter

log = logging.getLogger(__name__)

INLINE_CREATE_MAX = 8  # more new partitions in one image are built in the background
OFFLINE_LOGGED = 20  # partitions that go offline are named one by one up to this; then a count


def _int(name: str, overrides: Mapping[str, str], props: Mapping[str, str]) -> int:
    value = typed_topic_value(name, overrides, props)
    assert isinstance(value, int)
    return value


def _cleanup_policy(overrides: Mapping[str, str], props: Mapping[str, str]) -> list[str]:
    policy = typed_topic_value("cleanup.policy", overrides, props)
    return policy if isinstance(policy, list) else []


def _is_compacted(overrides: Mapping[str, str], props: Mapping[str, str]) -> bool:
    return "compact" in _cleanup_policy(overrides, props)


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
        delete="delete" in _cleanup_policy(overrides, props),
        compact=_is_compacted(overrides, props),
        delete_retention_ms=_int("delete.retention.ms", overrides, props),
        min_compaction_lag_ms=_int("min.compaction.lag.ms", overrides, props),
        max_compaction_lag_ms=_int("max.compaction.lag.ms", overrides, props),
        min_cleanable_dirty_ratio=float(
            typed_topic_value("min.cleanable.dirty.ratio", overrides, props)  # type: ignore[arg-type]
        ),
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
        store: MetadataWriter,
        fetchers: Followers,
    ) -> None:
        self.config = config
        self.logs = logs
        self.broker_id = config.broker_id
        self._clock = clock
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._topic_configs: dict[str, dict[str, str]] = {}
        self.fetchers = fetchers
        self.store = store
        self._startup_hw: dict[tuple[str, int], int] = {}
        self.budget = PartitionBudget(open_file_limit(), config.get_int("strom.max.partitions"))
        self.builder = ReplicaBuilder(logs, self._settings, clock, self.budget.free_descriptors)
        self.ready_listeners: list[Callable[[MetadataImage], None]] = []
        self._image: MetadataImage | None = None
        self._background: set[asyncio.Task[None]] = set()

    def get(self, topic: str, partition: int) -> Partition | None:
        return self.partitions.get((topic, partition))

    def offline_reason(self, topic: str, partition: int) -> str | None:
        """Why an assigned partition has no log here (out of descriptors), else None."""
        return self.logs.offline.get((topic, partition))

    @property
    def offline_dirs(self) -> Collection[object]:
        """The log dirs taken offline by an I/O error (their partitions answer so)."""
        return self.logs.offline_dirs

    def hosted_count(self) -> int:
        """Partition replicas this broker hosts or is about to (the budget's count)."""
        return (len(self.partitions) + len(self.builder.prepared) + len(self.builder.building)
                + len(self.logs.offline))

    def _settings(self, configs: Mapping[str, str]) -> tuple[LogConfig, PartitionPolicy]:
        props = self.config.props
        return log_config_for(configs, props), policy_for(configs, props)

    def reconfigure_logs(self) -> None:
        """A broker default behind topic configs changed (a dynamic log.retention.ms, say):
        give every partition here its settings afresh; topic overrides still win."""
        settings: dict[str, tuple[LogConfig, PartitionPolicy]] = {}
        for (topic, _), partition in list(self.partitions.items()):
            if topic not in settings:
                settings[topic] = self._settings(self._topic_configs.get(topic, {}))
            partition.update(*settings[topic])

    def on_image(self, image: MetadataImage) -> None:
        """Apply a new metadata image: create, reconfigure and delete local partitions."""
        first, self._image = self._image is None, image
        props = self.config.props
        missing: list[Blueprint] = []
        for topic in image.topics.values():
            self._sync_topic(topic, props, missing)
        gone = [k for k in (*self.partitions, *self.logs.offline)
                if not self.assigned_here(image, k)]
        if gone:
            self._drop(gone)
        live = set(image.topics)
        for name in [t for t in self._topic_configs if t not in live]:
            del self._topic_configs[name]
        if missing:
            self._create(missing, inline=first or len(missing) <= INLINE_CREATE_MAX)

    def _create(self, missing: list[Blueprint], *, inline: bool) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            inline = True
        if inline:
            self._adopt_built(self.builder.build_now(missing), missing)
            return
        self.builder.building.update(bp.key for bp in missing)
        task = asyncio.ensure_future(self._create_in_background(missing))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _create_in_background(self, missing: list[Blueprint]) -> None:
        try:
            built = await self.builder.build_many(missing)
        finally:
            self.builder.building.difference_update(bp.key for bp in missing)
        self._adopt_built(built, missing)
        image = self._image
        if image is not None:
            for listener in list(self.ready_listeners):
                listener(image)

    def _adopt_built(self, built: Mapping[Key, Outcome], blueprints: Sequence[Blueprint]) -> None:
        """Adopt what was built if the current image still assigns it here.

        The image may have moved on while the logs were built: a topic deleted and created
        again under the same name meanwhile is adopted with its new configs, not the ones
        its blueprint carried (the log itself is empty either way)."""
        image = self._image
        built_with = {bp.key: bp.configs for bp in blueprints}
        unwanted = []
        failed = 0
        for key, outcome in built.items():
            topic = image.topics.get(key[0]) if image is not None else None
            info = self._info(image, key)
            if isinstance(outcome, OSError):
                self.logs.offline[key] = f"cannot create its log: {outcome.strerror or outcome}"
                failed += 1
                if failed <= OFFLINE_LOGGED:
                    log.error("partition %s-%d is offline: %s", *key, self.logs.offline[key])
            elif topic is None or info is None or key in self.partitions:
                unwanted.append(key)
            else:
                outcome.topic_id = topic.topic_id
                if built_with.get(key) != topic.configs:
                    outcome.update(*self._settings(topic.configs))
                self.partitions[key] = outcome
                self._apply_role(outcome, info)
        if failed > OFFLINE_LOGGED:
            log.error("%d partitions in all are offline: their logs could not be created; "
                      "raise `ulimit -n` (the open file limit) and restart", failed)
        if unwanted:
            self.builder.delete(unwanted)

    def _info(self, image: MetadataImage | None, key: Key) -> PartitionInfo | None:
        topic = image.topics.get(key[0]) if image is not None else None
        info = topic.partitions.get(key[1]) if topic is not None else None
        return info if info is not None and self.broker_id in info.replicas else None

    def assigned_here(self, image: MetadataImage, key: tuple[str, int]) -> bool:
        topic = image.topics.get(key[0])
        info = topic.partitions.get(key[1]) if topic is not None else None
        return info is not None and self.broker_id in info.replicas

    def _sync_topic(self, topic: TopicInfo, props: Mapping[str, str],
                    missing: list[Blueprint]) -> None:
        """Reconfigure and re-role the topic's partitions here; list the missing ones."""
        config_changed = self._topic_configs.get(topic.name) != topic.configs
        self._topic_configs[topic.name] = dict(topic.configs)
        settings: tuple[LogConfig, PartitionPolicy] | None = None
        for info in topic.partitions.values():
            if self.broker_id not in info.replicas:
                continue
            key = (topic.name, info.partition)
            existing = self.partitions.get(key)
            if existing is None:
                existing = self._adopt_prepared(key, topic)
                if existing is None:
                    if key not in self.builder.building and key not in self.logs.offline:
                        missing.append(Blueprint(key, topic.configs, info.leader_epoch,
                                                 topic.topic_id))
                    continue
            elif config_changed:
                # Typed settings are resolved only when something uses them: every ISR or
                # leader change publishes a new image, and most leave configs untouched.
                settings = settings or self._settings(topic.configs)
                existing.update(*settings)
            self._apply_role(existing, info)

    def _adopt_prepared(self, key: Key, topic: TopicInfo) -> Partition | None:
        prepared = self.builder.take_prepared(key)
        if prepared is None:
            return None
        partition = prepared.partition
        partition.topic_id = topic.topic_id
        if prepared.configs != topic.configs:
            partition.update(*self._settings(topic.configs))
        self.partitions[key] = partition
        return partition

    def _apply_role(self, partition: Partition, info: PartitionInfo) -> None:
        key = (partition.topic, partition.index)
        me = self.broker_id
        hw = self._startup_hw.pop(key, None)
        if info.leader == me:
            if not partition.is_leader or partition.leader_epoch != info.leader_epoch:
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
        if moved:
            log.info("following %d for %s-%d (epoch %d)", info.leader, *key, info.leader_epoch)
            self.fetchers.follow(partition, info.leader)

    def set_startup_high_watermarks(self, hws: Mapping[tuple[str, int], int]) -> None:
        self._startup_hw = dict(hws)

    # --- ISR changes ------------------------------------------------------------------

    def propose_isr(self, partition: Partition, isr: tuple[int, ...]) -> None:
        """Write a new ISR for a partition we lead; ignored if leadership moved meanwhile."""
        if self.broker_id not in isr:
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

    def _drop(self, keys: Sequence[Key]) -> None:
        for key in keys:
            self.fetchers.unfollow(key)
            if self.partitions.pop(key, None) is not None:
                log.info("deleted partition %s-%d", *key)
        self.builder.delete(keys)

    def log_config_lookup(self, image: MetadataImage) -> Callable[[str], LogConfig]:
        def lookup(topic: str) -> LogConfig:
            info = image.topics.get(topic)
            return log_config_for(info.configs if info else {}, self.config.props)

        return lookup

    def high_watermarks(self) -> dict[tuple[str, int], int]:
        return {k: p.high_watermark for k, p in self.partitions.items()}

"""The immutable picture of cluster metadata that everything above the store reads.

Changes never mutate an image: the store builds a new one and publishes it, so a handler
holding an image sees one consistent moment even while the cluster changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class BrokerInfo:
    broker_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    partition_epoch: int = 0
    adding: tuple[int, ...] = ()  # replicas being added by an ongoing reassignment
    removing: tuple[int, ...] = ()  # replicas to drop once the added ones are in sync
    controller_epoch: int = 0  # epoch of the controller that last decided this state

    @property
    def reassigning(self) -> bool:
        return bool(self.adding or self.removing)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: dict[int, PartitionInfo]
    configs: dict[str, str] = field(default_factory=dict)
    internal: bool = False

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


@dataclass(frozen=True)
class MetadataImage:
    cluster_id: str
    controller_id: int
    brokers: dict[int, BrokerInfo]
    topics: dict[str, TopicInfo]
    epoch: int = 0

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        for topic in self.topics.values():
            if topic.topic_id == topic_id:
                return topic
        return None

    def with_topic(self, topic: TopicInfo) -> MetadataImage:
        return replace(self, topics={**self.topics, topic.name: topic}, epoch=self.epoch + 1)

    def without_topic(self, name: str) -> MetadataImage:
        topics = dict(self.topics)
        topics.pop(name, None)
        return replace(self, topics=topics, epoch=self.epoch + 1)

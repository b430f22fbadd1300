"""The immutable picture of cluster metadata that everything above the store reads.

Changes never mutate an image: the store builds a new one and publishes it, so a handler
holding an image sees one consistent moment even while the cluster changes.

Because nothing here changes after construction, what is derived from an image or a
topic is computed once and kept on it (``functools.cached_property``; frozen dataclasses
without slots allow that): the topic-id map of an image, the live broker ids, and each
topic's ``derived`` dict, where the Metadata handler keeps the encoded entries of the
topic. A topic that changes is a new ``TopicInfo`` and starts with an empty one.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from strom.cluster.acls import AclTable


@dataclass(frozen=True)
class BrokerInfo:
    broker_id: int
    host: str
    port: int
    rack: str | None = None
    endpoints: tuple[tuple[str, str, int], ...] = field(default=(), compare=False)
    """Every advertised listener as (NAME, host, port); `host`/`port` are the first's.
    Clients are answered with the endpoint of the listener they came in on, brokers
    reach each other on the inter-broker listener's."""

    def endpoint(self, listener: str) -> tuple[str, int] | None:
        for name, host, port in self.endpoints:
            if name == listener:
                return host, port
        return None


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

    @cached_property
    def derived(self) -> dict[Hashable, Any]:
        """Values computed from this topic alone (e.g. its encoded Metadata entry, keyed
        by what else the bytes depend on); they live exactly as long as the topic does."""
        return {}


DEFAULT_BROKER_ENTITY = "<default>"
"""The entity of the cluster-wide dynamic broker defaults (Kafka's ZooKeeper name)."""


def broker_entity(broker_id: int | None) -> str:
    """The key of a broker's dynamic configs in `MetadataImage.broker_configs`: its id,
    or `<default>` (None) for the cluster-wide defaults."""
    return DEFAULT_BROKER_ENTITY if broker_id is None else str(broker_id)


@dataclass(frozen=True)
class MetadataImage:
    cluster_id: str
    controller_id: int
    brokers: dict[int, BrokerInfo]
    topics: dict[str, TopicInfo]
    epoch: int = 0
    broker_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Dynamic broker configs by entity (`broker_entity`): a store may hold only the
    entities this broker applies (its own and the defaults)."""
    user_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Configs of user entities by user name: SCRAM credentials in Kafka's stored form
    (`strom.broker.security.credentials`)."""
    group_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Group configs (the GROUP resource, `strom.config.group`) by group id; a group with
    no override is absent."""
    acls: AclTable = field(default_factory=dict)
    """ACL entries by resource pattern (`strom.cluster.acls`); a pattern with none is
    absent."""
    client_quotas: dict[str, dict[str, str]] = field(default_factory=dict)
    """Client quota configs by entity path (`strom.cluster.quotas`: `users/<u>`,
    `clients/<c>`, `users/<u>/clients/<c>`, names sanitized, `<default>` entities); a
    user's quotas sit in the same entity as its SCRAM credentials in the stores."""

    def dynamic_broker_configs(self, broker_id: int | None) -> dict[str, str]:
        return self.broker_configs.get(broker_entity(broker_id), {})

    @cached_property
    def topics_by_id(self) -> dict[uuid.UUID, TopicInfo]:
        """Every topic by its id, built on first use, once per image."""
        return {topic.topic_id: topic for topic in self.topics.values()}

    @cached_property
    def live_broker_ids(self) -> frozenset[int]:
        return frozenset(self.brokers)

    @cached_property
    def topics_by_name(self) -> tuple[TopicInfo, ...]:
        """Every topic in name order (an all-topics Metadata answer lists them so)."""
        return tuple(sorted(self.topics.values(), key=lambda t: t.name))

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self.topics_by_id.get(topic_id)

    def with_topic(self, topic: TopicInfo) -> MetadataImage:
        return replace(self, topics={**self.topics, topic.name: topic}, epoch=self.epoch + 1)

    def without_topic(self, name: str) -> MetadataImage:
        topics = dict(self.topics)
        topics.pop(name, None)
        return replace(self, topics=topics, epoch=self.epoch + 1)

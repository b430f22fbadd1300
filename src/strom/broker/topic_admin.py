"""Creating, growing and deleting topics: validation and replica placement.

Shared by CreateTopics, CreatePartitions, DeleteTopics and Metadata's auto-creation so
the four paths apply one set of rules. Errors carry Kafka's error name and message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strom.cluster.image import TopicInfo
from strom.cluster.store import MetadataError, validate_topic_name
from strom.config.defs import InvalidConfig
from strom.config.topic import validate_topic_overrides

if TYPE_CHECKING:
    from strom.broker.server import Broker

log = logging.getLogger(__name__)
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


@dataclass(frozen=True)
class TopicSpec:
    name: str
    num_partitions: int  # -1: broker default
    replication_factor: int  # -1: broker default
    assignments: Mapping[int, Sequence[int]]
    configs: Mapping[str, str | None]


def assign_replicas(
    brokers: Sequence[int], partitions: range, replication_factor: int, start: int = 0
) -> dict[int, list[int]]:
    """Round-robin placement with a shifting follower offset, as Kafka spreads replicas."""
    ordered = sorted(brokers)
    n = len(ordered)
    placement = {}
    for p in partitions:
        first = (start + p) % n
        shift = 1 + (p // n) % max(n - 1, 1)
        replicas = [ordered[first]]
        for r in range(1, replication_factor):
            replicas.append(ordered[(first + shift * r) % n] if n > 1 else ordered[0])
        placement[p] = list(dict.fromkeys(replicas))
    return placement


class TopicAdmin:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def _defaults(self) -> tuple[int, int]:
        config = self.broker.config
        return config.get_int("num.partitions"), config.get_int("default.replication.factor")

    def plan_create(self, spec: TopicSpec) -> tuple[dict[int, list[int]], dict[str, str]]:
        """Validate a creation and return (assignments, configs); raises MetadataError."""
        validate_topic_name(spec.name)
        image = self.broker.store.image()
        if spec.name in image.topics:
            raise MetadataError("topic_already_exists", f"Topic '{spec.name}' already exists.")
        default_partitions, default_rf = self._defaults()
        try:
            configs = validate_topic_overrides(spec.configs)
        except InvalidConfig as exc:
            raise MetadataError("invalid_config", str(exc)) from exc
        if spec.assignments:
            if spec.num_partitions != -1 or spec.replication_factor != -1:
                raise MetadataError(
                    "invalid_request",
                    "Both numPartitions or replicationFactor and replicasAssignments were set.",
                )
            return self._check_assignments(spec.assignments, range(len(spec.assignments))), configs
        partitions = default_partitions if spec.num_partitions == -1 else spec.num_partitions
        rf = default_rf if spec.replication_factor == -1 else spec.replication_factor
        if partitions <= 0:
            raise MetadataError("invalid_partitions", "Number of partitions must be larger than 0.")
        if rf <= 0:
            raise MetadataError(
                "invalid_replication_factor", "Replication factor must be larger than 0."
            )
        brokers = list(image.brokers)
        if rf > len(brokers):
            raise MetadataError(
                "invalid_replication_factor",
                f"Replication factor: {rf} larger than available brokers: {len(brokers)}.",
            )
        return assign_replicas(brokers, range(partitions), rf), configs

    def _check_assignments(
        self, assignments: Mapping[int, Sequence[int]], expected: range
    ) -> dict[int, list[int]]:
        brokers = set(self.broker.store.image().brokers)
        if sorted(assignments) != list(expected):
            raise MetadataError(
                "invalid_replica_assignment",
                f"Partitions should be a consecutive 0-based integer sequence from {expected}",
            )
        sizes = {len(r) for r in assignments.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise MetadataError(
                "invalid_replica_assignment", "All partitions should have the same number of replicas"
            )
        for p, replicas in assignments.items():
            if len(set(replicas)) != len(replicas):
                raise MetadataError(
                    "invalid_replica_assignment", f"Duplicate brokers in partition {p}'s replicas"
                )
            unknown = set(replicas) - brokers
            if unknown:
                raise MetadataError(
                    "invalid_replica_assignment", f"Unknown broker(s) {sorted(unknown)} in partition {p}"
                )
        return {p: list(r) for p, r in assignments.items()}

    def create(self, spec: TopicSpec, *, internal: bool = False) -> TopicInfo:
        assignments, configs = self.plan_create(spec)
        topic = self.broker.store.create_topic(spec.name, assignments, configs, internal=internal)
        log.info(
            "created topic %s with %d partition(s), replication factor %d",
            spec.name, len(assignments), len(assignments[0]),
        )
        return topic

    def auto_create(self, name: str) -> TopicInfo:
        return self.create(TopicSpec(name, -1, -1, {}, {}))

    def plan_partitions(
        self, name: str, count: int, assignments: Sequence[Sequence[int]] | None
    ) -> dict[int, list[int]]:
        image = self.broker.store.image()
        topic = image.topics.get(name)
        if topic is None:
            raise MetadataError("unknown_topic_or_partition", f"Topic {name} does not exist")
        current = topic.partition_count
        if count < current:
            raise MetadataError(
                "invalid_partitions",
                f"Topic currently has {current} partitions, which is higher than the requested {count}.",
            )
        if count == current:
            raise MetadataError("invalid_partitions", f"Topic already has {current} partitions.")
        new = range(current, count)
        rf = len(topic.partitions[0].replicas)
        if assignments:
            if len(assignments) != len(new):
                raise MetadataError(
                    "invalid_replica_assignment",
                    f"Increasing the number of partitions by {len(new)} but {len(assignments)} "
                    "assignments provided.",
                )
            return self._check_assignments(dict(zip(new, assignments, strict=True)), new)
        return assign_replicas(list(image.brokers), new, rf)

    def add_partitions(self, name: str, placement: Mapping[int, list[int]]) -> None:
        self.broker.store.add_partitions(name, placement)
        log.info("topic %s now has %d partition(s)", name, max(placement) + 1)

    def delete(self, name: str) -> None:
        if not self.broker.config.get_bool("delete.topic.enable"):
            raise MetadataError("topic_deletion_disabled", "Topic deletion is disabled.")
        self.broker.store.delete_topic(name)
        log.info("deleted topic %s", name)

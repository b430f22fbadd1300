"""Creating, growing and deleting topics: validation and replica placement.

Shared by CreateTopics, CreatePartitions, DeleteTopics and Metadata's auto-creation so
the four paths apply one set of rules. Errors carry Kafka's error name and message.
"""

from __future__ import annotations

import logging
import random
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


def _replica_index(first: int, shift: int, replica: int, n: int) -> int:
    """Kafka's follower placement: distinct brokers for every replica of a partition."""
    return (first + 1 + (shift + replica) % (n - 1)) % n


def _rack_alternated(brokers: Mapping[int, str | None]) -> list[int]:
    """Brokers ordered so that consecutive ones sit in different racks, as Kafka does."""
    by_rack: dict[str, list[int]] = {}
    for broker, rack in sorted(brokers.items()):
        by_rack.setdefault(rack or "", []).append(broker)
    ordered: list[int] = []
    racks = [by_rack[r] for r in sorted(by_rack)]
    for i in range(max(len(r) for r in racks)):
        ordered += [r[i] for r in racks if i < len(r)]
    return ordered


def assign_replicas(
    brokers: Sequence[int] | Mapping[int, str | None],
    partitions: range,
    replication_factor: int,
    start: int | None = None,
    shift: int | None = None,
) -> dict[int, list[int]]:
    """Spread replicas round-robin with a shifting follower offset (Kafka's algorithm).

    Leaders rotate over the brokers from a random start, so topics do not all lead on
    the first broker. With racks (a mapping broker -> rack), brokers are interleaved by
    rack and each partition's replicas avoid sharing a rack while any rack is unused.
    """
    racks = dict(brokers) if isinstance(brokers, Mapping) else dict.fromkeys(brokers)
    rack_aware = any(racks.values())
    ordered = _rack_alternated(racks) if rack_aware else sorted(racks)
    n = len(ordered)
    start = random.randrange(n) if start is None else start
    shift = random.randrange(n) if shift is None else shift
    placement: dict[int, list[int]] = {}
    for p in partitions:
        if p > 0 and (start + p) % n == 0:
            shift += 1
        first = (start + p) % n
        replicas = [ordered[first]]
        if n > 1:
            candidates = [ordered[_replica_index(first, shift, k, n)] for k in range(n - 1)]
            used_racks = {racks[ordered[first]]}
            for candidate in candidates:
                if len(replicas) == replication_factor:
                    break
                all_racks_used = len(used_racks) >= len(set(racks.values()))
                if rack_aware and racks[candidate] in used_racks and not all_racks_used:
                    continue
                replicas.append(candidate)
                used_racks.add(racks[candidate])
            for candidate in candidates:  # racks exhausted: fill with the rest in order
                if len(replicas) == replication_factor:
                    break
                if candidate not in replicas:
                    replicas.append(candidate)
        placement[p] = replicas
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
        racks = {b.broker_id: b.rack for b in image.brokers.values()}
        return assign_replicas(racks, range(partitions), rf), configs

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
        return assign_replicas({b.broker_id: b.rack for b in image.brokers.values()}, new, rf)

    def add_partitions(self, name: str, placement: Mapping[int, list[int]]) -> None:
        self.broker.store.add_partitions(name, placement)
        log.info("topic %s now has %d partition(s)", name, max(placement) + 1)

    def delete(self, name: str) -> None:
        if not self.broker.config.get_bool("delete.topic.enable"):
            raise MetadataError("topic_deletion_disabled", "Topic deletion is disabled.")
        self.broker.store.delete_topic(name)
        log.info("deleted topic %s", name)

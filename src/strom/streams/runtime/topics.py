"""Internal topics: how many partitions each sub-topology and internal topic has, and
creating the `-repartition` and `-changelog` topics with Kafka Streams' names and configs.

Tasks per sub-topology = the largest partition count of its source topics. A
repartition topic gets the task count of the sub-topology that writes it (unless the
topology fixes it); a changelog gets the task count of the sub-topology that owns the
store, since each task logs to its own partition. A sub-topology whose stores are shared
by several source topics (a join) needs them co-partitioned: equal counts, else a
`TopologyError`, as Kafka's co-partitioning check. An existing changelog with the wrong
partition count is an error too: its partitions would not match the tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from strom.client import KafkaClients
from strom.client.admin import ensure_topic
from strom.streams.errors import StreamsError, TopologyError
from strom.streams.topology import SubTopology, Topology, physical_topic


@dataclass
class Plan:
    """Partition counts by physical topic and tasks per sub-topology."""

    partitions: dict[str, int] = field(default_factory=dict)
    tasks: dict[int, int] = field(default_factory=dict)
    changelogs: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)


def plan(topology: Topology, application_id: str, external: dict[str, int]) -> Plan:
    """Partition counts given those of the external source topics."""
    return _Planner(topology, application_id, external).run()


class _Planner:
    def __init__(self, topology: Topology, application_id: str, external: dict[str, int]) -> None:
        self.topology = topology
        self.app = application_id
        self.result = Plan(partitions=dict(external))
        self.subs = topology.subtopologies()
        self.writers: dict[str, list[SubTopology]] = {}
        for sub in self.subs:
            for topic in sub.sink_topics:
                self.writers.setdefault(topic, []).append(sub)

    def run(self) -> Plan:
        for sub in self.subs:
            count = self.task_count(sub, frozenset())
            for store in sub.stores:
                builder = self.topology.store_builders[store]
                if builder.logging_enabled:
                    name = f"{self.app}-{self.topology.changelog_topic(store)}"
                    self.result.changelogs[name] = (count, dict(builder.changelog_config()))
        return self.result

    def task_count(self, sub: SubTopology, seen: frozenset[int]) -> int:
        if sub.id in self.result.tasks:
            return self.result.tasks[sub.id]
        if sub.id in seen:
            raise TopologyError(f"sub-topology {sub.id} reads its own output")
        follow = [t for t in sub.source_topics if self._copartitioned(t)]
        leading = [t for t in sub.source_topics if t not in follow]
        counts = [self.partitions_of(t, seen | {sub.id}) for t in leading]
        _check_copartitioned(sub, leading, counts)
        self.result.tasks[sub.id] = max(counts)
        for topic in follow:
            self.result.partitions[physical_topic(self.topology, topic, self.app)] = max(counts)
        return self.result.tasks[sub.id]

    def _copartitioned(self, topic: str) -> bool:
        internal = self.topology.internal_topics.get(topic)
        return internal is not None and internal.copartitioned

    def partitions_of(self, topic: str, seen: frozenset[int]) -> int:
        name = physical_topic(self.topology, topic, self.app)
        if name not in self.result.partitions:
            internal = self.topology.internal_topics.get(topic)
            if internal is None:
                raise StreamsError(f"source topic {name!r} does not exist")
            self.result.partitions[name] = internal.partitions or max(
                self.task_count(w, seen) for w in self.writers[topic])
        return self.result.partitions[name]


def _check_copartitioned(sub: SubTopology, topics: list[str], counts: list[int]) -> None:
    if sub.stores and len(set(counts)) > 1:
        raise TopologyError(
            f"sub-topology {sub.id} joins topics that are not co-partitioned: "
            f"{dict(zip(topics, counts, strict=True))}; repartition one side")


def external_partitions(clients: KafkaClients, topology: Topology) -> dict[str, int]:
    """Partition counts of the user's source topics (which must exist)."""
    topics = [t for t in topology.source_topics() if not topology.is_internal(t)]
    topics += [d.topic for d in topology.global_stores.values()]
    metadata = clients.topic_metadata(topics)
    return {topic: len(info.partitions) for topic, info in metadata.items()}


def create_internal_topics(clients: KafkaClients, topology: Topology, application_id: str,
                           the_plan: Plan, replication_factor: int) -> None:
    for topic, internal in topology.internal_topics.items():
        name = physical_topic(topology, topic, application_id)
        ensure_topic(clients, name, the_plan.partitions[name], replication_factor,
                     dict(internal.config))
    for name, (partitions, config) in the_plan.changelogs.items():
        if not ensure_topic(clients, name, partitions, replication_factor, config):
            existing = len(clients.topic_metadata([name])[name].partitions)
            if existing != partitions:
                raise StreamsError(f"changelog {name!r} has {existing} partitions, the "
                                   f"application needs {partitions}; reset the application")
        the_plan.partitions[name] = partitions
    _await_metadata(clients, the_plan)


def _await_metadata(clients: KafkaClients, the_plan: Plan) -> None:
    """Until the cluster's metadata shows every topic with its partitions: a consumer that
    subscribes to a topic its metadata lacks is not assigned it until the next refresh
    (librdkafka: every 5 minutes)."""
    deadline = time.monotonic() + clients.timeout
    while True:
        found = clients.list_topics().topics
        missing = [name for name, count in the_plan.partitions.items()
                   if name not in found or len(found[name].partitions) < count]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise StreamsError(f"topics not in the cluster's metadata: {missing}")
        time.sleep(0.1)

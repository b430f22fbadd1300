"""`Topology`: a graph of named sources, processors and sinks, with the stores they use.

The DSL compiles into this, and a user of the Processor API builds it directly, as in
Kafka Streams:

    topology = (Topology()
        .add_source("in", "orders", key_serde=Serdes.String)
        .add_processor("enrich", Enrich, "in")
        .add_state_store(Stores.key_value("customers"), "enrich")
        .add_sink("out", "enriched", "enrich"))

Nodes connected by edges or by a shared store form one *sub-topology*; each is run by one
task per partition of its source topics, which must therefore be co-partitioned (same
partition count; the runtime checks). Sub-topologies talk to each other only through
topics, typically the internal `-repartition` topics the DSL inserts when a key changes
before a grouping or join. Internal topics are named here without the application id;
`physical_topic` adds the `<application.id>-` prefix at run time, as Kafka Streams does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.streams.errors import TopologyError
from strom.streams.global_state import GlobalStoreDef
from strom.streams.processor import Processor, ProcessorSupplier
from strom.streams.record import Record
from strom.streams.serdes import Serde
from strom.streams.state.api import StoreBuilder
from strom.streams.state.stores import StoreSpec
from strom.streams.timestamps import TimestampExtractor

TopicNameExtractor = Callable[[Record], str]
Partitioner = Callable[[str, Any, Any, int], int | None]  # topic, key, value, partitions

REPARTITION_CONFIG: Mapping[str, str] = {
    # Kafka Streams' repartition topics: never compacted, kept until consumed and purged
    "cleanup.policy": "delete",
    "segment.bytes": "52428800",
    "retention.ms": "-1",
}


@dataclass
class SourceNode:
    name: str
    topics: list[str]
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    timestamp_extractor: TimestampExtractor | None = None
    offset_reset: str | None = None  # "earliest" | "latest"; None: the application's default


@dataclass
class ProcessorNode:
    name: str
    supplier: ProcessorSupplier
    parents: list[str]
    stores: list[str] = field(default_factory=list)


@dataclass
class SinkNode:
    name: str
    topic: str | TopicNameExtractor
    parents: list[str]
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    partitioner: Partitioner | None = None


Node = SourceNode | ProcessorNode | SinkNode


@dataclass(frozen=True)
class InternalTopic:
    """A topic the application creates: `<application.id>-<name>`."""

    name: str
    config: Mapping[str, str]
    partitions: int | None = None  # None: as many as the sub-topology that writes it reads
    # True: as many as the sub-topology that *reads* it has from its other sources (a
    # topic joined to a table there, such as the foreign-key join topics)
    copartitioned: bool = False


@dataclass
class SubTopology:
    """One connected part of the topology: what one task runs."""

    id: int
    nodes: list[str]
    source_topics: list[str]
    sink_topics: list[str]
    stores: list[str]


class Topology:
    """The processing graph. Build with `add_*`; nodes are kept in insertion order, which
    is a topological order because a parent must exist before its child."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.children: dict[str, list[str]] = {}
        self.store_builders: dict[str, StoreBuilder] = {}
        self.internal_topics: dict[str, InternalTopic] = {}
        self.global_stores: dict[str, GlobalStoreDef] = {}
        self._topic_sources: dict[str, str] = {}

    # --- building ---------------------------------------------------------------------

    def add_source(self, name: str, *topics: str, key_serde: Serde[Any] | None = None,
                   value_serde: Serde[Any] | None = None,
                   timestamp_extractor: TimestampExtractor | None = None,
                   offset_reset: str | None = None) -> Topology:
        if not topics:
            raise TopologyError(f"source {name!r} reads no topic")
        for topic in topics:
            if topic in self._topic_sources:
                raise TopologyError(f"topic {topic!r} is already read by source "
                                    f"{self._topic_sources[topic]!r}")
        self._add(SourceNode(name, list(topics), key_serde, value_serde, timestamp_extractor,
                             offset_reset), [])
        for topic in topics:
            self._topic_sources[topic] = name
        return self

    def add_processor(self, name: str, supplier: ProcessorSupplier | type[Processor],
                      *parents: str) -> Topology:
        if not parents:
            raise TopologyError(f"processor {name!r} has no parent")
        self._add(ProcessorNode(name, supplier, list(parents)), list(parents))
        return self

    def add_sink(self, name: str, topic: str | TopicNameExtractor, *parents: str,
                 key_serde: Serde[Any] | None = None, value_serde: Serde[Any] | None = None,
                 partitioner: Partitioner | None = None) -> Topology:
        if not parents:
            raise TopologyError(f"sink {name!r} has no parent")
        self._add(SinkNode(name, topic, list(parents), key_serde, value_serde, partitioner),
                  list(parents))
        return self

    def add_state_store(self, builder: StoreBuilder, *processor_names: str) -> Topology:
        if builder.name in self.store_builders:
            raise TopologyError(f"store {builder.name!r} is already added")
        self.store_builders[builder.name] = builder
        self.connect_processor_and_state_stores(*processor_names, stores=[builder.name])
        return self

    def connect_processor_and_state_stores(self, *processor_names: str,
                                           stores: list[str]) -> Topology:
        for processor in processor_names:
            node = self.nodes.get(processor)
            if not isinstance(node, ProcessorNode):
                raise TopologyError(f"{processor!r} is not a processor of this topology")
            for store in stores:
                if store not in self.store_builders:
                    raise TopologyError(f"store {store!r} is not added")
                if store not in node.stores:
                    node.stores.append(store)
        return self

    def add_global_store(self, spec: StoreSpec, topic: str, key_serde: Serde[Any] | None = None,
                         value_serde: Serde[Any] | None = None) -> Topology:
        """A key-value store holding the latest value of every key of `topic` (all its
        partitions), in every instance; readable by any processor."""
        if spec.name in self.store_builders or spec.name in self.global_stores:
            raise TopologyError(f"store {spec.name!r} is already added")
        if topic in self._topic_sources:
            raise TopologyError(f"topic {topic!r} is already read by a source")
        self.global_stores[spec.name] = GlobalStoreDef(spec, topic, key_serde, value_serde)
        return self

    def add_internal_topic(self, name: str, config: Mapping[str, str] = REPARTITION_CONFIG,
                           partitions: int | None = None, copartitioned: bool = False
                           ) -> Topology:
        """Declare `name` (without the application id) as a topic the runtime creates."""
        self.internal_topics[name] = InternalTopic(name, dict(config), partitions,
                                                   copartitioned)
        return self

    def _add(self, node: Node, parents: list[str]) -> None:
        if node.name in self.nodes:
            raise TopologyError(f"a node named {node.name!r} already exists")
        for parent in parents:
            if parent not in self.nodes:
                raise TopologyError(f"{node.name!r}: parent {parent!r} does not exist")
            if isinstance(self.nodes[parent], SinkNode):
                raise TopologyError(f"{node.name!r}: a sink ({parent!r}) has no children")
        self.nodes[node.name] = node
        self.children[node.name] = []
        for parent in parents:
            self.children[parent].append(node.name)

    # --- reading ----------------------------------------------------------------------

    def source_for_topic(self, topic: str) -> SourceNode:
        return self.nodes[self._topic_sources[topic]]  # type: ignore[return-value]

    def source_topics(self) -> list[str]:
        return list(self._topic_sources)

    def is_internal(self, topic: str) -> bool:
        return topic in self.internal_topics

    def changelog_topic(self, store: str) -> str:
        """The changelog's name without the application id (Kafka's `<store>-changelog`)."""
        return f"{store}-changelog"

    def subtopologies(self) -> list[SubTopology]:
        """Connected components of nodes (joined by edges and shared stores), numbered in
        the order of their first node, as Kafka Streams numbers them."""
        groups = _Components(list(self.nodes))
        for name, node in self.nodes.items():
            for parent in getattr(node, "parents", []):
                groups.union(name, parent)
        for store in self.store_builders:
            users = [n for n, node in self.nodes.items()
                     if isinstance(node, ProcessorNode) and store in node.stores]
            for other in users[1:]:
                groups.union(users[0], other)
        return [self._subtopology(i, members) for i, members in enumerate(groups.components())]

    def _subtopology(self, index: int, members: list[str]) -> SubTopology:
        sources: list[str] = []
        sinks: list[str] = []
        stores: list[str] = []
        for name in members:
            node = self.nodes[name]
            if isinstance(node, SourceNode):
                sources.extend(node.topics)
            elif isinstance(node, SinkNode) and isinstance(node.topic, str):
                sinks.append(node.topic)
            elif isinstance(node, ProcessorNode):
                stores.extend(s for s in node.stores if s not in stores)
        return SubTopology(index, members, sources, sinks, stores)

    def describe(self) -> str:
        """The topology as text, laid out like Kafka's TopologyDescription."""
        lines = ["Topologies:"]
        for sub in self.subtopologies():
            lines.append(f"   Sub-topology: {sub.id}")
            for name in sub.nodes:
                lines.extend(self._describe_node(name))
        for name, definition in self.global_stores.items():
            lines.append(f"   Global store: {name} (topic: {definition.topic})")
        return "\n".join(lines) + "\n"

    def _describe_node(self, name: str) -> Iterator[str]:
        node = self.nodes[name]
        if isinstance(node, SourceNode):
            yield f"    Source: {name} (topics: [{', '.join(node.topics)}])"
        elif isinstance(node, ProcessorNode):
            yield f"    Processor: {name} (stores: [{', '.join(node.stores)}])"
        else:
            topic = node.topic if isinstance(node.topic, str) else "<extractor>"
            yield f"    Sink: {name} (topic: {topic})"
        if self.children[name]:
            yield f"      --> {', '.join(self.children[name])}"
        parents = getattr(node, "parents", [])
        if parents:
            yield f"      <-- {', '.join(parents)}"


def physical_topic(topology: Topology, topic: str, application_id: str) -> str:
    """The topic's name on the cluster: internal topics get the application id prefix."""
    return f"{application_id}-{topic}" if topology.is_internal(topic) else topic


class _Components:
    """Union-find over names, components listed in the order of their first member."""

    def __init__(self, names: list[str]) -> None:
        self._order = {n: i for i, n in enumerate(names)}
        self._parent = {n: n for n in names}

    def find(self, name: str) -> str:
        while self._parent[name] != name:
            self._parent[name] = self._parent[self._parent[name]]
            name = self._parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            first, second = sorted((ra, rb), key=self._order.__getitem__)
            self._parent[second] = first

    def components(self) -> list[list[str]]:
        found: dict[str, list[str]] = {}
        for name in self._order:
            found.setdefault(self.find(name), []).append(name)
        return sorted(found.values(), key=lambda members: self._order[members[0]])

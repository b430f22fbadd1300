"""The narrow faces of the broker: what a handler or component may ask of the rest.

`Broker` (the server module) assembles the parts; nothing else imports it. A component
gets the faces it uses through its constructor, and a handler through its
`RequestContext`, so each can be built and tested with small fakes: a unit test of
ListOffsets needs a partition directory and nothing else. The faces are Protocols the
real parts satisfy structurally (`ReplicaManager` is a `PartitionDirectory`,
`GroupHost` a `GroupCoordination`, `TopicAdmin` a `TopicAdministration`, a
`MetadataStore` a `MetadataWriter`, `BrokerMetrics` a `RequestMetrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kio.schema.errors import ErrorCode

if TYPE_CHECKING:
    from strom.broker.log_cleaning import LogCleaning
    from strom.broker.observability.metrics import BrokerMetrics
    from strom.broker.quotas import ClientQuotas
    from strom.broker.replication.partition import Partition
    from strom.broker.replication.peer import PeerChannel
    from strom.broker.replication.replica_manager import ReplicaManager
    from strom.broker.topic_admin import CreatePlan, TopicSpec
    from strom.cluster.acls import Ace, Resource
    from strom.cluster.image import MetadataImage, TopicInfo
    from strom.cluster.store import MetadataError
    from strom.config.broker import BrokerConfig
    from strom.coordinator.group.coordinator import GroupCoordinator
    from strom.coordinator.transaction.coordinator import TransactionCoordinator
    from strom.storage import LogManager


class MetadataView(Protocol):
    """The current metadata image: topics, brokers, the controller."""

    def image(self) -> MetadataImage: ...


class MetadataWriter(MetadataView, Protocol):
    """The image plus the writes handlers make themselves (leader elections,
    reassignments, AlterConfigs on topics and on dynamic broker configs); topic creation
    and deletion go through `TopicAdministration`."""

    def update_topic(
        self, name: str, change: Callable[[TopicInfo], TopicInfo | None]
    ) -> TopicInfo | None: ...

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo: ...

    def set_broker_configs(self, broker_id: int | None, configs: Mapping[str, str]) -> None: ...

    def set_user_configs(self, user: str, configs: Mapping[str, str]) -> None: ...

    def set_group_configs(self, group_id: str, configs: Mapping[str, str]) -> None: ...

    def set_client_quotas(self, path: str, quotas: Mapping[str, str]) -> None: ...

    def set_acls(self, resource: Resource, entries: frozenset[Ace]) -> None: ...


class PartitionDirectory(Protocol):
    """The partitions hosted here, by (topic, index)."""

    def get(self, topic: str, partition: int) -> Partition | None: ...

    def offline_reason(self, topic: str, partition: int) -> str | None: ...

    def maybe_expand_isr(self, partition: Partition) -> None: ...

    @property
    def offline_dirs(self) -> Collection[object]: ...


class GroupCoordination(Protocol):
    """Consumer groups: the coordinator and where a group's coordinator lives."""

    @property
    def coordinator(self) -> GroupCoordinator: ...

    def coordinator_for(self, group_id: str) -> tuple[ErrorCode, int]: ...

    def on_offsets_marker(self, partition: int, producer_id: int, committed: bool) -> None:
        """A transaction marker reached `__consumer_offsets-<partition>`."""
        ...


class TransactionCoordination(Protocol):
    """Transactions: the coordinator, where a transactional id's coordinator lives, and
    KIP-890 verification of a transactional batch for the partition side."""

    @property
    def coordinator(self) -> TransactionCoordinator: ...

    def coordinator_for(self, transactional_id: str) -> tuple[ErrorCode, int]: ...

    async def verify_partition(self, transactional_id: str, producer_id: int,
                               producer_epoch: int, topic: str, partition: int) -> ErrorCode: ...

    async def add_partition(self, transactional_id: str, producer_id: int, producer_epoch: int,
                            topic: str, partition: int) -> ErrorCode: ...

    @property
    def transaction_version(self) -> int:
        """The finalized `transaction.version` feature ApiVersions advertises (1 or 2)."""
        ...


class TopicAdministration(Protocol):
    """Create, grow and delete topics under the broker's rules and budget."""

    async def create_topics(self, specs: Sequence[TopicSpec],
                            validate_only: bool) -> list[CreatePlan]: ...

    async def add_partitions(self, name: str, count: int,
                             assignments: Sequence[Sequence[int]] | None,
                             validate_only: bool) -> None: ...

    async def delete_topics(self, names: Sequence[str]) -> dict[str, MetadataError | None]: ...

    def auto_create(self, name: str) -> TopicInfo: ...

    def create(self, spec: TopicSpec, *, internal: bool = False) -> TopicInfo: ...


class RequestMetrics(Protocol):
    """Per-topic traffic counters handlers feed."""

    def produced(self, topic: str, size: int, records: int) -> None: ...

    def fetched(self, topic: str, data: bytes | bytearray | memoryview) -> None: ...


class ProducerIds(Protocol):
    """Producer ids for InitProducerId."""

    def next_id(self) -> int: ...


class Followers(Protocol):
    """Replication of the partitions this broker follows (the replica fetchers)."""

    def follow(self, partition: Partition, leader_id: int) -> None: ...

    def unfollow(self, key: tuple[str, int]) -> None: ...

    def stop(self) -> None: ...


class ReplicaHost(Protocol):
    """What the replica fetchers use: who we are, where leaders are, how to reach them."""

    @property
    def broker_id(self) -> int: ...

    @property
    def config(self) -> BrokerConfig: ...

    @property
    def store(self) -> MetadataView: ...

    @property
    def peers(self) -> PeerChannel: ...


class BrokerStatus(Protocol):
    """What the metrics collector and the /readyz probe read, at scrape time only."""

    @property
    def broker_id(self) -> int: ...

    @property
    def cluster_id(self) -> str: ...

    @property
    def ready(self) -> bool: ...

    @property
    def connections(self) -> Collection[object]: ...

    @property
    def metrics(self) -> BrokerMetrics: ...

    @property
    def store(self) -> MetadataView: ...

    @property
    def replicas(self) -> ReplicaManager: ...

    @property
    def groups(self) -> GroupCoordination: ...

    @property
    def logs(self) -> LogManager: ...

    @property
    def cleaning(self) -> LogCleaning: ...

    @property
    def quotas(self) -> ClientQuotas: ...


@dataclass(frozen=True, slots=True)
class Services:
    """Every face a handler may use, built once by the server and shared by all
    requests; a handler reaches for the ones it needs through its `RequestContext`."""

    broker_id: int
    config: BrokerConfig
    metadata: MetadataWriter
    partitions: PartitionDirectory
    groups: GroupCoordination
    admin: TopicAdministration
    metrics: RequestMetrics
    producer_ids: ProducerIds
    transactions: TransactionCoordination | None = None  # None: no coordinator (tests)
    quotas: ClientQuotas | None = None  # None: no client quotas (tests)

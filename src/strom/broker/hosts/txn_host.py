"""Hosts the transaction coordinator in the broker: its log, its topic, its leadership,
and the way its markers reach partition leaders.

As `GroupHost` does for `__consumer_offsets`, the host loads the `__transaction_state`
partitions this broker leads on every metadata image and unloads those that moved; the
partition's leader epoch is the coordinator epoch the loaded shard stamps on its markers.

Markers (`PartitionMarkers`, Kafka's TransactionMarkerChannelManager's transport): a
partition led here is written by the local marker writer; a partition led elsewhere gets
a WriteTxnMarkers request over a `PeerChannel` of the host's own. Not the replica
fetchers' channel: a peer answers WriteTxnMarkers once the marker is replicated, which
needs this broker's fetcher on that same peer, and a shared connection (one request at a
time) would wait on itself, as Kafka keeps the marker channel on its own network client.
A leader that moved or is unknown is an error the coordinator retries.

KIP-890 part 1 (`verify_partition`): the partition side asks whether a transactional
batch belongs to an open transaction, locally when the coordinator is here, otherwise
with AddPartitionsToTxn v4 `verify_only` to the coordinator's broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from strom.broker.hosts.group_host import PartitionOffsetsLog
from strom.cluster.image import MetadataImage
from strom.cluster.store import MetadataError
from strom.coordinator.runtime import LoopScheduler
from strom.coordinator.transaction.config import TRANSACTION_TOPIC, MarkerWriter, TxnConfig
from strom.coordinator.transaction.coordinator import TransactionCoordinator
from strom.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from strom.broker.replication.peer import PeerChannel
    from strom.broker.services import MetadataView, PartitionDirectory, TopicAdministration
    from strom.config.broker import BrokerConfig

log = logging.getLogger(__name__)
SEGMENT_BYTES = 104_857_600  # transaction.state.log.segment.bytes
WRITE_TXN_MARKERS_VERSION = 1
ADD_PARTITIONS_VERIFY_VERSION = 4


class PartitionMarkers:
    """The `MarkerWriter` the coordinator uses: local leader or WriteTxnMarkers to a peer."""

    def __init__(self, broker_id: int, metadata: MetadataView, peers: PeerChannel,
                 local: MarkerWriter | None) -> None:
        self.broker_id = broker_id
        self.metadata = metadata
        self.peers = peers
        self.local = local

    async def write_marker(self, topic: str, partition: int, producer_id: int,
                           producer_epoch: int, committed: bool,
                           coordinator_epoch: int) -> ErrorCode:
        image = self.metadata.image()
        info = image.topics.get(topic)
        state = None if info is None else info.partitions.get(partition)
        if state is None:
            return ErrorCode.unknown_topic_or_partition
        if state.leader == self.broker_id and self.local is not None:
            return await self.local.write_marker(topic, partition, producer_id, producer_epoch,
                                                 committed, coordinator_epoch)
        broker = image.brokers.get(state.leader)
        if broker is None:
            return ErrorCode.not_leader_or_follower
        return await self._remote(broker.broker_id, broker.host, broker.port, topic, partition,
                                  producer_id, producer_epoch, committed, coordinator_epoch)

    async def _remote(self, broker_id: int, host: str, port: int, topic: str, partition: int,
                      producer_id: int, producer_epoch: int, committed: bool,
                      coordinator_epoch: int) -> ErrorCode:
        tp = (topic, partition)
        answers = await self._remote_batch(broker_id, host, port, [tp], producer_id,
                                           producer_epoch, committed, coordinator_epoch)
        return answers[tp]

    async def write_markers(self, partitions: list[tuple[str, int]], producer_id: int,
                            producer_epoch: int, committed: bool, coordinator_epoch: int
                            ) -> dict[tuple[str, int], ErrorCode]:
        """Every marker of a transaction at once: the local ones in parallel, one
        WriteTxnMarkers per other broker with all its partitions (as Kafka's channel)."""
        image = self.metadata.image()
        out: dict[tuple[str, int], ErrorCode] = {}
        local: list[tuple[str, int]] = []
        remote: dict[int, list[tuple[str, int]]] = {}
        for tp in partitions:
            info = image.topics.get(tp[0])
            state = None if info is None else info.partitions.get(tp[1])
            if state is None:
                out[tp] = ErrorCode.unknown_topic_or_partition
            elif state.leader == self.broker_id and self.local is not None:
                local.append(tp)
            elif state.leader not in image.brokers:
                out[tp] = ErrorCode.not_leader_or_follower
            else:
                remote.setdefault(state.leader, []).append(tp)
        calls = [self._local_batch(local, producer_id, producer_epoch, committed,
                                   coordinator_epoch)]
        for broker_id, tps in remote.items():
            broker = image.brokers[broker_id]
            calls.append(self._remote_batch(broker_id, broker.host, broker.port, tps,
                                            producer_id, producer_epoch, committed,
                                            coordinator_epoch))
        for answers in await asyncio.gather(*calls):
            out.update(answers)
        return out

    async def _local_batch(self, partitions: list[tuple[str, int]], producer_id: int,
                           producer_epoch: int, committed: bool, coordinator_epoch: int
                           ) -> dict[tuple[str, int], ErrorCode]:
        if not partitions or self.local is None:
            return {}
        local = self.local
        codes = await asyncio.gather(*(
            local.write_marker(t, p, producer_id, producer_epoch, committed, coordinator_epoch)
            for t, p in partitions))
        return dict(zip(partitions, codes, strict=True))

    async def _remote_batch(self, broker_id: int, host: str, port: int,
                            partitions: list[tuple[str, int]], producer_id: int,
                            producer_epoch: int, committed: bool, coordinator_epoch: int
                            ) -> dict[tuple[str, int], ErrorCode]:
        from kio.schema.write_txn_markers.v1.request import WriteTxnMarkersRequest

        from strom.broker.replication.peer import PeerError
        from strom.protocol.schema import build

        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        request = build(WriteTxnMarkersRequest, markers=[{
            "producer_id": producer_id, "producer_epoch": producer_epoch,
            "transaction_result": committed, "coordinator_epoch": coordinator_epoch,
            "topics": [{"name": t, "partition_indexes": ps} for t, ps in by_topic.items()]}])
        out = dict.fromkeys(partitions, ErrorCode.unknown_server_error)
        try:
            response = await self.peers.connection(broker_id, host, port).request(
                ApiKey.WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION, request)
        except PeerError as exc:
            log.info("WriteTxnMarkers to broker %d failed: %s; retried", broker_id, exc)
            return dict.fromkeys(partitions, ErrorCode.coordinator_not_available)
        for marker in response.markers:
            for result in marker.topics:
                for p in result.partitions:
                    key = (result.name, int(p.partition_index))
                    if key in out:
                        out[key] = ErrorCode(p.error_code)
        return out


class TransactionHost:
    def __init__(self, config: BrokerConfig, clock: Callable[[], int], metadata: MetadataView,
                 partitions: PartitionDirectory, admin: TopicAdministration,
                 new_producer_id: Callable[[], int],
                 local_markers: MarkerWriter | None = None) -> None:
        from strom.broker.replication.peer import PeerChannel

        self.config = config
        self.metadata = metadata
        self.partitions = partitions
        self.admin = admin
        self.broker_id = config.broker_id
        self.peers = PeerChannel(self.broker_id)
        self.num_partitions = config.get_int("transaction.state.log.num.partitions")
        self.markers = PartitionMarkers(self.broker_id, metadata, self.peers, local_markers)
        self.coordinator = TransactionCoordinator(
            PartitionOffsetsLog(partitions, clock, TRANSACTION_TOPIC),
            TxnConfig(
                num_partitions=self.num_partitions,
                max_timeout_ms=config.get_int("transaction.max.timeout.ms"),
                id_expiration_ms=config.get_int("transactional.id.expiration.ms"),
                abort_interval_ms=_int(config, "transaction.abort.timed.out.transaction."
                                       "cleanup.interval.ms", 10_000),
                remove_expired_interval_ms=_int(config, "transaction.remove.expired."
                                                "transaction.cleanup.interval.ms", 3_600_000),
                offsets_partitions=config.get_int("offsets.topic.num.partitions"),
            ),
            LoopScheduler(),
            clock,
            new_producer_id,
            self.markers,
            self._partition_exists,
        )

    @property
    def transaction_version(self) -> int:
        return self.config.get_int("strom.transaction.version")

    async def stop(self) -> None:
        """Stop sending markers (the next coordinator resends them) and close the channel."""
        await self.coordinator.stop()
        self.peers.close()

    def _partition_exists(self, topic: str, partition: int) -> bool:
        info = self.metadata.image().topics.get(topic)
        return info is not None and partition in info.partitions

    def ensure_topic(self) -> ErrorCode:
        """Create `__transaction_state` on first use, as Kafka does."""
        image = self.metadata.image()
        if TRANSACTION_TOPIC in image.topics:
            return ErrorCode.none
        wanted_rf = self.config.get_int("transaction.state.log.replication.factor")
        if self.config.get_str("zookeeper.connect") and len(image.brokers) < wanted_rf:
            log.info("not creating %s yet: %d live broker(s), replication factor %d",
                     TRANSACTION_TOPIC, len(image.brokers), wanted_rf)
            return ErrorCode.coordinator_not_available
        rf = max(1, min(wanted_rf, len(image.brokers)))
        min_isr = min(self.config.get_int("transaction.state.log.min.isr"), rf)
        from strom.broker.topic_admin import TopicSpec

        spec = TopicSpec(TRANSACTION_TOPIC, self.num_partitions, rf, {}, {
            "cleanup.policy": "compact",
            "min.insync.replicas": str(min_isr),
            "segment.bytes": str(SEGMENT_BYTES),
            "compression.type": "uncompressed",
            "unclean.leader.election.enable": "false",
        })
        try:
            self.admin.create(spec, internal=True)
        except MetadataError as exc:
            if exc.error != ErrorCode.topic_already_exists:
                log.error("cannot create %s: %s", TRANSACTION_TOPIC, exc)
                return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def on_image(self, image: MetadataImage) -> None:
        topic = image.topics.get(TRANSACTION_TOPIC)
        me = self.broker_id
        leading: dict[int, int] = {}
        if topic is not None:
            leading = {p.partition: p.leader_epoch for p in topic.partitions.values()
                       if p.leader == me}
        led = {p for p in leading if self.partitions.get(TRANSACTION_TOPIC, p)}
        coordinator = self.coordinator
        coordinator.loading = set(leading) - led
        for partition in sorted((coordinator.owned | set(coordinator.failed)) - led):
            coordinator.unload(partition)
        for partition in sorted(coordinator.owned & led):
            if coordinator.coordinator_epoch(partition) != leading[partition]:
                coordinator.unload(partition)  # a new leader epoch: load again, as Kafka
        for partition in sorted(led - coordinator.owned - set(coordinator.failed)):
            coordinator.load(partition, leading[partition])

    def coordinator_for(self, transactional_id: str) -> tuple[ErrorCode, int]:
        """(error, leader broker id) of the id's `__transaction_state` partition."""
        error = self.ensure_topic()
        if error != ErrorCode.none:
            return error, -1
        topic = self.metadata.image().topics[TRANSACTION_TOPIC]
        info = topic.partitions.get(self.coordinator.partition_for(transactional_id))
        if info is None or info.leader < 0:
            return ErrorCode.coordinator_not_available, -1
        return ErrorCode.none, info.leader

    async def verify_partition(self, transactional_id: str, producer_id: int,
                               producer_epoch: int, topic: str, partition: int) -> ErrorCode:
        """KIP-890 part 1: is (topic, partition) in this producer's open transaction?"""
        tp = (topic, partition)
        index = self.coordinator.partition_for(transactional_id)
        if index in self.coordinator.owned:
            return self.coordinator.verify(transactional_id, producer_id, producer_epoch,
                                           [tp])[tp]
        return await self._ask_coordinator(index, transactional_id, producer_id,
                                           producer_epoch, tp, verify_only=True)

    async def add_partition(self, transactional_id: str, producer_id: int, producer_epoch: int,
                            topic: str, partition: int) -> ErrorCode:
        """KIP-890 part 2 (transaction version 2): a produce v12+ or TxnOffsetCommit v5
        adds its partition to the producer's transaction itself, through the coordinator."""
        tp = (topic, partition)
        index = self.coordinator.partition_for(transactional_id)
        if index in self.coordinator.owned:
            return await self.coordinator.add_partitions(transactional_id, producer_id,
                                                         producer_epoch, [tp])
        return await self._ask_coordinator(index, transactional_id, producer_id,
                                           producer_epoch, tp, verify_only=False)

    async def _ask_coordinator(self, index: int, transactional_id: str, producer_id: int,
                               producer_epoch: int, tp: tuple[str, int], verify_only: bool
                               ) -> ErrorCode:
        image = self.metadata.image()
        info = image.topics.get(TRANSACTION_TOPIC)
        state = None if info is None else info.partitions.get(index)
        broker = None if state is None else image.brokers.get(state.leader)
        if broker is None or broker.broker_id == self.broker_id:
            return self.coordinator.ownership_error(transactional_id)
        return await self._remote(broker.broker_id, broker.host, broker.port, transactional_id,
                                  producer_id, producer_epoch, tp, verify_only)

    async def _remote(self, broker_id: int, host: str, port: int, transactional_id: str,
                      producer_id: int, producer_epoch: int, tp: tuple[str, int],
                      verify_only: bool) -> ErrorCode:
        from kio.schema.add_partitions_to_txn.v4.request import AddPartitionsToTxnRequest

        from strom.broker.replication.peer import PeerError
        from strom.protocol.schema import build

        request = build(AddPartitionsToTxnRequest, transactions=[{
            "transactional_id": transactional_id, "producer_id": producer_id,
            "producer_epoch": producer_epoch, "verify_only": verify_only,
            "topics": [{"name": tp[0], "partitions": [tp[1]]}]}])
        try:
            response: Any = await self.peers.connection(broker_id, host, port).request(
                ApiKey.ADD_PARTITIONS_TO_TXN, ADD_PARTITIONS_VERIFY_VERSION, request)
        except PeerError as exc:
            log.info("verification at broker %d failed: %s", broker_id, exc)
            return ErrorCode.not_coordinator
        if response.error_code != ErrorCode.none:
            return ErrorCode(response.error_code)
        for txn in response.results_by_transaction:
            for topic in txn.topic_results:
                for result in topic.results_by_partition:
                    if topic.name == tp[0] and int(result.partition_index) == tp[1]:
                        return ErrorCode(result.partition_error_code)
        return ErrorCode.unknown_server_error


def _int(config: BrokerConfig, name: str, default: int) -> int:
    raw = config.raw(name)
    return default if raw is None else int(raw)

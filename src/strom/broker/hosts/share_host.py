"""Hosts the share coordinator (KIP-932) and the partition leader's persister.

The share coordinator keeps share-partition state in `__share_group_state` (Kafka's
ShareCoordinatorService): one `ShareCoordinatorShard` per partition of that topic led
here, run by the `CoordinatorRuntime` as the group and transaction coordinators are,
its records appended to and replayed from the partition's log. A shard is loaded when
a request first needs it and reloaded when the partition's leader epoch moved (the
previous leader's writes then fail with NOT_COORDINATOR), so a broker that becomes the
leader of a state partition serves it from the replicated log.

The persister (Kafka's DefaultStatePersister) is the partition leader's side: it finds
the coordinator of a share-partition as FindCoordinator key type 2 does (the leader of
the state partition its key `group:topicId:partition` maps to) and asks it —
directly when it is this broker, else with Initialize/Read/Write/Delete/
ReadShareGroupStateSummary (83-87) over a `PeerChannel` of its own. Every call retries
a moving coordinator for a few seconds, then answers the last error.

Housekeeping, as Kafka's ShareCoordinatorService schedules it: every
`share.coordinator.cold.partition.snapshot.interval.ms` each loaded shard snapshots its
share-partitions whose latest record is an update, and every
`share.coordinator.state.topic.prune.interval.ms` the records of each state partition
led here below its oldest needed snapshot are deleted (DeleteRecords' path: the log
start offset moves, followers follow it). The topic keeps Kafka's `retention.ms=-1`:
pruning, not time, bounds it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kio.schema.errors import ErrorCode

from strom.broker.hosts.group_host import PartitionOffsetsLog
from strom.cluster.store import MetadataError
from strom.coordinator.group.config import LogRecord
from strom.coordinator.runtime import CoordinatorNotActive, CoordinatorRuntime, LoopScheduler
from strom.coordinator.share_state.config import (
    STATE_TOPIC,
    ShareCoordinatorConfig,
    partition_for,
)
from strom.coordinator.share_state.records import (
    NO_COUNT,
    ShareKey,
    ShareRecord,
    ShareRecordError,
    StateBatch,
    decode,
)
from strom.coordinator.share_state.shard import ShareCoordinatorShard, ShareState
from strom.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from strom.broker.context import RequestContext
    from strom.broker.replication.peer import PeerChannel
    from strom.broker.services import MetadataView, PartitionDirectory, TopicAdministration
    from strom.config.broker import BrokerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_S = 10.0
RETRIABLE = frozenset({ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
                       ErrorCode.coordinator_load_in_progress})


def settings(config: BrokerConfig) -> ShareCoordinatorConfig:
    def num(name: str, default: int) -> int:
        raw = config.raw(f"share.coordinator.{name}")
        return default if raw is None else int(raw)

    return ShareCoordinatorConfig(
        num_partitions=num("state.topic.num.partitions", 50),
        replication_factor=num("state.topic.replication.factor", 3),
        min_isr=num("state.topic.min.isr", 2),
        segment_bytes=num("state.topic.segment.bytes", 104_857_600),
        snapshot_every=num("snapshot.update.records.per.snapshot", 500),
        prune_interval_ms=num("state.topic.prune.interval.ms", 300_000),
        cold_snapshot_interval_ms=num("cold.partition.snapshot.interval.ms", 300_000))


class ShareStateHost:
    """The share coordinator's shards on this broker and the persister to any of them."""

    def __init__(self, config: BrokerConfig, metadata: MetadataView,
                 partitions: PartitionDirectory, admin: TopicAdministration,
                 clock: Callable[[], int]) -> None:
        from strom.broker.replication.peer import PeerChannel

        self.config = config
        self.settings = settings(config)
        self.metadata = metadata
        self.partitions = partitions
        self.admin = admin
        self.clock = clock
        self.broker_id = config.broker_id
        self.log = _StateLog(partitions, clock, self._placed)
        self.runtime: CoordinatorRuntime[ShareCoordinatorShard, ShareRecord] = \
            CoordinatorRuntime(self.log, LoopScheduler(), lambda r: r.entry(), STATE_TOPIC)
        self.epochs: dict[int, int] = {}  # state partition -> leader epoch it was loaded at
        self.peers: PeerChannel = PeerChannel(self.broker_id)

    # --- the topic and who coordinates a key ---------------------------------------------

    def ensure_topic(self) -> ErrorCode:
        """Create `__share_group_state` on first use (replication factor capped by the
        live brokers, as `__consumer_offsets`); Kafka's configs: delete policy, min
        ISR, segment bytes, producer compression; no time retention (see below)."""
        image = self.metadata.image()
        if STATE_TOPIC in image.topics:
            return ErrorCode.none
        wanted = self.settings.replication_factor
        if self.config.get_str("zookeeper.connect") and len(image.brokers) < wanted:
            return ErrorCode.coordinator_not_available
        rf = max(1, min(wanted, len(image.brokers)))
        from strom.broker.topic_admin import TopicSpec

        spec = TopicSpec(STATE_TOPIC, self.settings.num_partitions, rf, {}, {
            "cleanup.policy": "delete", "compression.type": "producer",
            "min.insync.replicas": str(min(self.settings.min_isr, rf)),
            "segment.bytes": str(self.settings.segment_bytes),
            # as Kafka 4.4: time retention would delete a live snapshot; the prune job
            # deletes what no share-partition needs any more
            "retention.ms": "-1",
            "unclean.leader.election.enable": "false"})
        try:
            self.admin.create(spec, internal=True)
        except MetadataError as exc:
            if exc.error != ErrorCode.topic_already_exists:
                log.error("cannot create %s: %s", STATE_TOPIC, exc)
                return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def state_partition(self, key: ShareKey) -> int:
        return partition_for(key[0], key[1], key[2], self.settings.num_partitions)

    def coordinator_for(self, key: ShareKey) -> tuple[ErrorCode, int]:
        """(error, broker id) of the share-partition's coordinator (FindCoordinator 2)."""
        error = self.ensure_topic()
        if error != ErrorCode.none:
            return error, -1
        topic = self.metadata.image().topics.get(STATE_TOPIC)
        info = None if topic is None else topic.partitions.get(self.state_partition(key))
        if info is None or info.leader < 0:
            return ErrorCode.coordinator_not_available, -1
        return ErrorCode.none, info.leader

    # --- the coordinator side (handlers 83-87 and local callers) -----------------------

    def ready(self, partition: int) -> ErrorCode:
        """Load (or reload at a new leader epoch) the shard of a state partition led
        here; NOT_COORDINATOR if it is not led here."""
        target = self.partitions.get(STATE_TOPIC, partition)
        if target is None or not target.is_leader:
            if partition in self.runtime.shards:
                self.runtime.unload(partition)
                self.epochs.pop(partition, None)
            return ErrorCode.not_coordinator
        epoch = target.leader_epoch
        if partition in self.runtime.shards and self.epochs.get(partition) == epoch:
            return ErrorCode.none
        if not self.runtime.load(partition, lambda _timer: self._build(partition)):
            return ErrorCode.not_coordinator
        self.epochs[partition] = epoch
        return ErrorCode.none

    def _placed(self, partition: int, offset: int) -> None:
        """An append to ``partition`` starts at ``offset``: its records' replay learns it."""
        shard = self.runtime.shards.get(partition)
        if shard is not None:
            shard.cursor = offset

    def _build(self, partition: int) -> ShareCoordinatorShard:
        shard = ShareCoordinatorShard(self.clock, self.settings.snapshot_every)
        skipped = 0
        for entry in self.log.replay(partition):
            if not isinstance(entry, LogRecord) or entry.key is None:
                continue
            try:
                shard.cursor = entry.offset
                shard.replay(decode(entry.key, entry.value))
            except ShareRecordError:
                skipped += 1
        if skipped:
            log.warning("%s-%d: %d records skipped at load", STATE_TOPIC, partition, skipped)
        return shard

    async def local(self, key: ShareKey, op: Callable[[ShareCoordinatorShard], Any]) -> Any:
        """Run a shard operation for ``key`` here: (error, response)."""
        partition = self.state_partition(key)
        error = self.ready(partition)
        if error != ErrorCode.none:
            return error, None
        try:
            return ErrorCode.none, await self.runtime.write(partition, op)
        except CoordinatorNotActive:
            return ErrorCode.not_coordinator, None

    # --- housekeeping: cold-partition snapshots and pruning ---------------------------

    def start_housekeeping(self) -> None:
        """Schedule both jobs on the running loop (each reschedules itself)."""
        loop = asyncio.get_running_loop()
        self._every(loop, self.settings.cold_snapshot_interval_ms, self.snapshot_cold)
        self._every(loop, self.settings.prune_interval_ms, self.prune)

    @staticmethod
    def _every(loop: asyncio.AbstractEventLoop, interval_ms: int,
               job: Callable[[], None]) -> None:
        delay = max(interval_ms, 1) / 1000

        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("share coordinator housekeeping failed")
            loop.call_later(delay, run)

        loop.call_later(delay, run)

    def snapshot_cold(self) -> None:
        """A fresh snapshot of every idle share-partition in the shards led here."""
        for partition in list(self.runtime.shards):
            if self.ready(partition) != ErrorCode.none:
                continue
            try:
                self.runtime.execute(partition, lambda shard: shard.snapshot_cold())
            except CoordinatorNotActive:
                continue

    def prune(self) -> None:
        """Delete each state partition's records below the oldest needed snapshot."""
        from strom.storage import KafkaStorageError, OffsetOutOfRange

        for partition in list(self.runtime.shards):
            if self.ready(partition) != ErrorCode.none:
                continue
            target = self.partitions.get(STATE_TOPIC, partition)
            if target is None:
                continue
            offset = self.runtime.shards[partition].prunable_offset(target.high_watermark)
            if offset is None or offset <= target.log_start_offset:
                continue
            try:
                low = target.delete_records_before(offset)
            except (OffsetOutOfRange, KafkaStorageError) as exc:
                log.info("cannot prune %s-%d: %s", STATE_TOPIC, partition, exc)
                continue
            log.info("%s-%d pruned: log start offset %d", STATE_TOPIC, partition, low)

    # --- the persister (the partition leader's side) ----------------------------------

    async def _call(self, key: ShareKey, local: Callable[[], Awaitable[tuple[ErrorCode, T]]],
                    remote: Callable[[int], Awaitable[tuple[ErrorCode, T]]]
                    ) -> tuple[ErrorCode, T | None]:
        """Ask the key's coordinator, retrying while it moves or loads."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_S
        while True:
            error, broker = self.coordinator_for(key)
            result: T | None = None
            if error == ErrorCode.none:
                error, result = await (local() if broker == self.broker_id else remote(broker))
            if error not in RETRIABLE or loop.time() > deadline:
                return error, result
            await asyncio.sleep(0.1)

    async def read(self, key: ShareKey, leader_epoch: int
                   ) -> tuple[ErrorCode, ShareState | None]:
        async def here() -> tuple[ErrorCode, ShareState | None]:
            error, answer = await self.local(key, lambda s: s.read(key, leader_epoch))
            return (error, None) if error != ErrorCode.none else answer

        error, state = await self._call(key, here, lambda b: self._remote_read(b, key,
                                                                             leader_epoch))
        return error, state

    async def write(self, key: ShareKey, state_epoch: int, leader_epoch: int,
                    start_offset: int, batches: tuple[StateBatch, ...]) -> ErrorCode:
        async def here() -> tuple[ErrorCode, None]:
            error, answer = await self.local(key, lambda s: s.write(
                key, state_epoch, leader_epoch, start_offset, batches))
            return (answer if error == ErrorCode.none else error), None

        error, _ = await self._call(key, here, lambda b: self._remote_write(
            b, key, state_epoch, leader_epoch, start_offset, batches))
        return error

    async def initialize(self, key: ShareKey, state_epoch: int, start_offset: int
                         ) -> ErrorCode:
        async def here() -> tuple[ErrorCode, None]:
            error, answer = await self.local(key, lambda s: s.initialize(key, state_epoch,
                                                                          start_offset))
            return (answer if error == ErrorCode.none else error), None

        error, _ = await self._call(key, here, lambda b: self._remote_simple(
            b, ApiKey.INITIALIZE_SHARE_GROUP_STATE, key,
            {"state_epoch": state_epoch, "start_offset": start_offset}))
        return error

    async def delete(self, key: ShareKey) -> ErrorCode:
        async def here() -> tuple[ErrorCode, None]:
            error, answer = await self.local(key, lambda s: s.delete(key))
            return (answer if error == ErrorCode.none else error), None

        error, _ = await self._call(key, here, lambda b: self._remote_simple(
            b, ApiKey.DELETE_SHARE_GROUP_STATE, key, {}))
        return error

    async def summary(self, key: ShareKey) -> tuple[ErrorCode, ShareState | None]:
        async def here() -> tuple[ErrorCode, ShareState | None]:
            partition = self.state_partition(key)
            error = self.ready(partition)
            if error != ErrorCode.none:
                return error, None
            return ErrorCode.none, self.runtime.shards[partition].summary(key)

        return await self._call(key, here, lambda b: self._remote_summary(b, key))

    # --- requests to another broker's share coordinator -------------------------------

    async def _request(self, broker_id: int, api_key: ApiKey, key: ShareKey,
                       partition: dict[str, Any]) -> tuple[ErrorCode, Any]:
        """One share-state request for one share-partition: (error, its partition result)."""
        from strom.broker.replication.peer import PeerError
        from strom.protocol import apis
        from strom.protocol.schema import build

        broker = self.metadata.image().brokers.get(broker_id)
        if broker is None:
            return ErrorCode.coordinator_not_available, None
        spec = apis.request_spec(api_key, 0)
        assert spec is not None
        request: Any = build(spec.request_type, group_id=key[0], topics=[{
            "topic_id": key[1], "partitions": [{"partition": key[2], **partition}]}])
        try:
            response: Any = await self.peers.connection(broker_id, broker.host, broker.port) \
                .request(api_key, 0, request)
        except PeerError as exc:
            log.info("%s to broker %d failed: %s", api_key.name, broker_id, exc)
            return ErrorCode.coordinator_not_available, None
        for topic in response.results:
            for result in topic.partitions:
                return ErrorCode(result.error_code), result
        return ErrorCode.unknown_server_error, None

    async def _remote_simple(self, broker_id: int, api_key: ApiKey, key: ShareKey,
                             fields: dict[str, Any]) -> tuple[ErrorCode, None]:
        error, _ = await self._request(broker_id, api_key, key, fields)
        return error, None

    async def _remote_write(self, broker_id: int, key: ShareKey, state_epoch: int,
                            leader_epoch: int, start_offset: int,
                            batches: tuple[StateBatch, ...]) -> tuple[ErrorCode, None]:
        rows = [{"first_offset": b.first_offset, "last_offset": b.last_offset,
                 "delivery_state": b.delivery_state, "delivery_count": b.delivery_count}
                for b in batches]
        return await self._remote_simple(broker_id, ApiKey.WRITE_SHARE_GROUP_STATE, key, {
            "state_epoch": state_epoch, "leader_epoch": leader_epoch,
            "start_offset": start_offset, "state_batches": rows})

    async def _remote_read(self, broker_id: int, key: ShareKey, leader_epoch: int
                           ) -> tuple[ErrorCode, ShareState | None]:
        error, result = await self._request(broker_id, ApiKey.READ_SHARE_GROUP_STATE, key,
                                            {"leader_epoch": leader_epoch})
        if error != ErrorCode.none or result is None or int(result.start_offset) < 0:
            return error, None
        batches = tuple(StateBatch(int(b.first_offset), int(b.last_offset),
                                   int(b.delivery_state), int(b.delivery_count))
                        for b in result.state_batches)
        return error, ShareState(int(result.state_epoch), leader_epoch,
                                 int(result.start_offset), batches, NO_COUNT)

    async def _remote_summary(self, broker_id: int, key: ShareKey
                              ) -> tuple[ErrorCode, ShareState | None]:
        error, result = await self._request(broker_id, ApiKey.READ_SHARE_GROUP_STATE_SUMMARY,
                                            key, {"leader_epoch": -1})
        if error != ErrorCode.none or result is None or int(result.start_offset) < 0:
            return error, None
        return error, ShareState(int(result.state_epoch), int(result.leader_epoch),
                                 int(result.start_offset), ())


class _StateLog(PartitionOffsetsLog):
    """`__share_group_state`'s log; tells the host where each append starts, so the
    shard knows the offset of every snapshot (what pruning needs)."""

    def __init__(self, partitions: PartitionDirectory, clock: Callable[[], int],
                 placed: Callable[[int, int], None]) -> None:
        super().__init__(partitions, clock, STATE_TOPIC)
        self.placed = placed

    def append(self, partition: int, entries: list[tuple[bytes, bytes | None]]) -> ErrorCode:
        target = self.partitions.get(self.topic, partition)
        start = -1 if target is None else target.log_end_offset
        error = super().append(partition, entries)
        if error == ErrorCode.none:
            self.placed(partition, start)
        return error


# One host per broker, kept beside (and living as long as) its partition directory.
_HOSTS: weakref.WeakKeyDictionary[object, ShareStateHost] = weakref.WeakKeyDictionary()


def host_of(ctx: RequestContext) -> ShareStateHost:
    """This broker's share state host, made on first use."""
    found = _HOSTS.get(ctx.partitions)
    if found is None:
        found = _HOSTS[ctx.partitions] = ShareStateHost(
            ctx.config, ctx.metadata, ctx.partitions, ctx.admin, _now_ms)
        found.start_housekeeping()
        transactions = getattr(ctx.services, "transactions", None)
        _reach_like(found.peers, getattr(transactions, "peers", None))
    return found


def _reach_like(peers: PeerChannel, model: object) -> None:
    """Reach other brokers as ``model`` (the transaction coordinator's channel) does: the
    server points it at the inter-broker listener with its TLS and SASL at start, before
    this host is made."""
    settings = vars(model) if model is not None and hasattr(model, "__dict__") else {}
    connect, endpoint = settings.get("_connect"), settings.get("_endpoint")
    if connect is not None and endpoint is not None:
        peers.use(connect, endpoint)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def topic_key(group_id: str, topic_id: uuid.UUID, partition: int) -> ShareKey:
    return (group_id, topic_id, partition)

"""Hosts the group coordinator in the broker: its log, its topic, its leadership.

The coordinator owns exactly the `__consumer_offsets` partitions this broker leads. On
every metadata image the host loads partitions that became ours and unloads those that
moved away, so the coordinator follows partition leadership (the seam the replicated
cluster relies on).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from strom.cluster.image import MetadataImage
from strom.cluster.store import MetadataError
from strom.config.group import GroupConfigs
from strom.coordinator.group.config import GroupConfig, LogRecord, MarkerEntry, UnreadableBatch
from strom.coordinator.group.consumer_group import ConsumerConfig
from strom.coordinator.group.coordinator import GroupCoordinator
from strom.coordinator.runtime import LoopScheduler
from strom.protocol import records
from strom.storage import markers

if TYPE_CHECKING:
    from strom.broker.replication.partition import Partition
    from strom.broker.services import MetadataView, PartitionDirectory, TopicAdministration
    from strom.config.broker import BrokerConfig

log = logging.getLogger(__name__)
OFFSETS_TOPIC = "__consumer_offsets"
REPLICATION_TIMEOUT_S = 5.0  # offsets.commit.timeout.ms
LOAD_BUFFER_BYTES = 4 << 20  # offsets.load.buffer.size: bytes read per step of a replay
# Replay caps what one batch may cost. The coordinator writes small uncompressed batches
# (one record per committed partition); anything beyond these is not its own and is
# skipped rather than allowed to exhaust memory (a decompression bomb, a lying count).
REPLAY_MAX_DECOMPRESSED = 64 << 20
REPLAY_MAX_RECORDS = 1 << 20
MAX_CORRUPT_SKIP = 10_000  # offsets tried past a corrupt stored batch before giving up


class PartitionOffsetsLog:
    """`OffsetsLog` over the broker's own `__consumer_offsets` partitions."""

    def __init__(self, partitions: PartitionDirectory, clock: Callable[[], int],
                 topic: str = OFFSETS_TOPIC) -> None:
        self.partitions = partitions
        self.clock = clock
        self.topic = topic  # the transaction coordinator reads __transaction_state alike

    def append(self, partition: int, entries: list[tuple[bytes, bytes | None]]) -> ErrorCode:
        target = self.partitions.get(self.topic, partition)
        if target is None or not target.is_leader:
            return ErrorCode.not_coordinator
        batch = records.encode_batch(list(entries), timestamp_ms=self.clock())
        result = target.append(batch)
        if result.error != ErrorCode.none:
            log.error("cannot write to %s-%d: %s", self.topic, partition, result.message)
            return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def append_transactional(self, partition: int, entries: list[tuple[bytes, bytes | None]],
                             producer_id: int, producer_epoch: int) -> ErrorCode:
        """TxnOffsetCommit's records: one transactional batch of the producer, without a
        sequence (as Kafka's coordinator writes it), ended later by the producer's marker."""
        target = self.partitions.get(self.topic, partition)
        if target is None or not target.is_leader:
            return ErrorCode.not_coordinator
        batch = bytearray(records.encode_batch(
            list(entries), timestamp_ms=self.clock(), producer_id=producer_id,
            producer_epoch=producer_epoch, attributes=records.Attr.TRANSACTIONAL))
        _, header = next(records.scan_batches(batch))
        result = target.append_validated(batch, [header])
        if result.error != ErrorCode.none:
            log.info("transactional offsets of producer %d refused by %s-%d: %s", producer_id,
                     self.topic, partition, result.message)
            return result.error
        return ErrorCode.none

    async def wait_durable(self, partition: int) -> ErrorCode:
        target = self.partitions.get(self.topic, partition)
        if target is None or not target.is_leader:
            return ErrorCode.not_coordinator
        waiter = target.wait_for_high_watermark(target.log.log_end_offset)
        try:
            replicated = await asyncio.wait_for(waiter, REPLICATION_TIMEOUT_S)
        except TimeoutError:
            return ErrorCode.coordinator_not_available
        return ErrorCode.none if replicated else ErrorCode.not_coordinator

    def replay(self, partition: int) -> Iterator[LogRecord | UnreadableBatch | MarkerEntry]:
        """Every record up to the log end; never raises for what the log holds.

        The log end, not the high watermark, as Kafka's coordinators load: a leader just
        elected may not know the high watermark its predecessor reached yet, and a
        record its predecessor acknowledged (replicated here) lies beyond it.

        A batch that cannot be decoded (CRC mismatch, bad codec payload, more than
        `REPLAY_MAX_DECOMPRESSED` once decompressed, records that do not parse) is
        yielded as an `UnreadableBatch` and replay goes on after it, as it does past a
        batch the storage refuses to serve (damage on disk). Bytes that do not even frame
        as a batch end the replay there, also as an `UnreadableBatch`. A log that cannot
        be read at all (its directory offline) raises `OffsetsLogUnreadable`: the load
        fails and the partition's groups answer NOT_COORDINATOR.
        """
        target = self.partitions.get(self.topic, partition)
        if target is None:
            return
        offset = target.log.log_start_offset
        while offset < target.log.log_end_offset:
            chunk, skipped = _read_or_skip(target, offset)
            if skipped is not None:
                yield skipped
                offset = skipped.last_offset + 1
                continue
            if not chunk:
                return
            start = offset
            for pos, header in records.scan_batches(chunk):
                yield from _batch_entries(chunk, pos, header, offset)
                offset = max(offset, header.next_offset)
            if offset == start:
                yield UnreadableBatch(start, target.log.log_end_offset - 1,
                                      "no well-formed batch here; the rest of the log is unread")
                return


class OffsetsLogUnreadable(Exception):
    """The offsets partition's log cannot be read where replay needs it."""


def _read_or_skip(target: Partition, offset: int) -> tuple[bytes, UnreadableBatch | None]:
    """Read at ``offset``; if storage refuses the batch there as corrupt, find the next
    offset it serves (a few steps: coordinator batches span few offsets) and report the
    range in between as unreadable."""
    result = target.read(offset, LOAD_BUFFER_BYTES, up_to_log_end=True)
    if result.error == ErrorCode.none:
        return result.records, None
    hw = target.log.log_end_offset
    if result.error == ErrorCode.corrupt_message:
        for resume in range(offset + 1, min(offset + MAX_CORRUPT_SKIP, hw) + 1):
            if resume == hw or target.read(resume, 1, up_to_log_end=True).error == ErrorCode.none:
                return b"", UnreadableBatch(offset, resume - 1, "the log holds a corrupt batch "
                                            "here (the storage error above names file and byte)")
    raise OffsetsLogUnreadable(f"cannot read {OFFSETS_TOPIC}-{target.index} at offset {offset}: "
                               f"{result.error.name}")


def _batch_entries(chunk: bytes, pos: int, header: records.BatchHeader, start: int
                   ) -> Iterator[LogRecord | UnreadableBatch | MarkerEntry]:
    """The records of one batch at or after ``start``, or why the batch cannot be read;
    a transaction marker as a `MarkerEntry`."""
    if header.next_offset <= start:
        return
    if header.is_control:
        yield from _marker_entry(chunk, pos, header)
        return
    reason = None
    if header.records_count > REPLAY_MAX_RECORDS:
        reason = f"{header.records_count} records, more than {REPLAY_MAX_RECORDS}"
    elif records.crc_of(chunk, pos, header.size) != header.crc:
        reason = "CRC-32C mismatch"
    if reason is None:
        try:
            decoded = records.decode_records(memoryview(chunk)[pos : pos + header.size],
                                             max_decompressed=REPLAY_MAX_DECOMPRESSED)
        except ValueError as exc:  # InvalidBatch, DecompressionError
            reason = str(exc) or type(exc).__name__
    if reason is not None:
        yield UnreadableBatch(header.base_offset, header.last_offset, reason)
        return
    producer_id = header.producer_id if header.is_transactional else -1
    for record in decoded:
        if record.offset >= start:
            yield LogRecord(record.offset, header.base_offset, record.key, record.value,
                            producer_id)


def _marker_entry(chunk: bytes, pos: int, header: records.BatchHeader
                  ) -> Iterator[MarkerEntry]:
    """The marker of a control batch (none for a damaged or unknown one: Kafka skips it)."""
    try:
        marker = markers.parse(memoryview(chunk)[pos : pos + header.size])
    except ValueError:
        return
    if marker is not None:
        yield MarkerEntry(header.base_offset, header.producer_id, marker.committed)


def _names(value: str | None) -> tuple[str, ...]:
    """A list config's entries (`group.consumer.assignors`)."""
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


class GroupHost:
    def __init__(self, config: BrokerConfig, clock: Callable[[], int], metadata: MetadataView,
                 partitions: PartitionDirectory, admin: TopicAdministration) -> None:
        self.config = config
        self.metadata = metadata
        self.partitions = partitions
        self.admin = admin
        self.broker_id = config.broker_id
        self._topic_ids: dict[str, uuid.UUID] = {}  # the last image's topics, to see deletions
        self.num_partitions = config.get_int("offsets.topic.num.partitions")
        self._topics_of: tuple[MetadataImage, dict[str, tuple[uuid.UUID, int]]] | None = None
        self.group_configs = GroupConfigs(
            lambda group_id: metadata.image().group_configs.get(group_id, {}),
            lambda: config.props)
        """Each group's resolved group configs (the GROUP resource): the read seam for
        the consumer and share group coordinators."""
        self.coordinator = GroupCoordinator(
            PartitionOffsetsLog(partitions, clock),
            GroupConfig(
                num_partitions=self.num_partitions,
                min_session_timeout_ms=config.get_int("group.min.session.timeout.ms"),
                max_session_timeout_ms=config.get_int("group.max.session.timeout.ms"),
                initial_rebalance_delay_ms=config.get_int("group.initial.rebalance.delay.ms"),
                max_group_size=config.get_int("group.max.size"),
                offset_metadata_max_bytes=config.get_int("offset.metadata.max.bytes"),
                offsets_retention_ms=config.get_int("offsets.retention.minutes") * 60_000,
                consumer=ConsumerConfig(
                    session_timeout_ms=config.get_int("group.consumer.session.timeout.ms"),
                    heartbeat_interval_ms=config.get_int("group.consumer.heartbeat.interval.ms"),
                    max_size=config.get_int("group.consumer.max.size"),
                    assignors=_names(config.get_str("group.consumer.assignors")),
                    migration_policy=(config.get_str("group.consumer.migration.policy")
                                      or "bidirectional").strip().lower(),
                    per_group=self._consumer_timeouts),
            ),
            LoopScheduler(),
            clock,
            self._partition_exists,
            topics=self._topics,
        )

    def _consumer_timeouts(self, group_id: str) -> tuple[int, int]:
        resolved = self.group_configs.for_group(group_id)
        return resolved.consumer_session_timeout_ms, resolved.consumer_heartbeat_interval_ms

    def _topics(self) -> dict[str, tuple[uuid.UUID, int]]:
        """Name -> (id, partition count) of every topic: what consumer groups subscribe to
        (built once per metadata image: every consumer heartbeat asks)."""
        image = self.metadata.image()
        if self._topics_of is None or self._topics_of[0] is not image:
            self._topics_of = (image, {name: (info.topic_id, info.partition_count)
                                       for name, info in image.topics.items()})
        return self._topics_of[1]

    def _partition_exists(self, topic: str, partition: int) -> bool:
        info = self.metadata.image().topics.get(topic)
        return info is not None and partition in info.partitions

    def ensure_topic(self) -> ErrorCode:
        """Create `__consumer_offsets` on first use, as Kafka does; returns an error name."""
        image = self.metadata.image()
        if OFFSETS_TOPIC in image.topics:
            return ErrorCode.none
        wanted_rf = self.config.get_int("offsets.topic.replication.factor")
        if self.config.get_str("zookeeper.connect") and len(image.brokers) < wanted_rf:
            # As Kafka: a cluster waits for enough brokers rather than creating an
            # under-replicated offsets topic it could never grow.
            log.info("not creating %s yet: %d live broker(s), replication factor %d",
                     OFFSETS_TOPIC, len(image.brokers), wanted_rf)
            return ErrorCode.coordinator_not_available
        rf = min(wanted_rf, len(image.brokers))
        if rf < wanted_rf:
            log.info("creating %s with replication factor %d (%d configured, %d broker(s))",
                     OFFSETS_TOPIC, rf, wanted_rf, len(image.brokers))
        from strom.broker.topic_admin import TopicSpec

        spec = TopicSpec(OFFSETS_TOPIC, self.num_partitions, rf, {}, {
            "cleanup.policy": "compact",
            "segment.bytes": str(self.config.get_int("offsets.topic.segment.bytes")),
            "compression.type": "producer",
        })
        try:
            self.admin.create(spec, internal=True)
        except MetadataError as exc:
            if exc.error != ErrorCode.topic_already_exists:
                log.error("cannot create %s: %s", OFFSETS_TOPIC, exc)
                return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def on_image(self, image: MetadataImage) -> None:
        topic_ids = {name: info.topic_id for name, info in image.topics.items()}
        deleted = {name for name, topic_id in self._topic_ids.items()
                   if topic_ids.get(name) != topic_id}
        self._topic_ids = topic_ids
        if deleted:  # (a topic deleted and created again has a new id)
            self.coordinator.drop_topics(deleted)
        topic = image.topics.get(OFFSETS_TOPIC)
        me = self.broker_id
        leading = set()
        if topic is not None:
            leading = {p.partition for p in topic.partitions.values() if p.leader == me}
        led = {p for p in leading if self.partitions.get(OFFSETS_TOPIC, p)}
        coordinator = self.coordinator
        # Led here but its replica is not built yet: clients are told to retry.
        coordinator.loading = leading - led
        for partition in sorted((coordinator.owned | set(coordinator.failed)) - led):
            coordinator.unload(partition)
        # A partition whose load failed is not retried on every image, only when its
        # leadership comes back (Kafka retries a failed shard on a new leader epoch).
        for partition in sorted(led - coordinator.owned - set(coordinator.failed)):
            coordinator.load(partition)

    def on_offsets_marker(self, partition: int, producer_id: int, committed: bool) -> None:
        """A transaction marker reached ``__consumer_offsets-<partition>`` (the
        `LocalMarkerWriter` hook): commit or drop the transaction's pending offsets."""
        self.coordinator.complete_transaction(partition, producer_id, committed)

    def coordinator_for(self, group_id: str) -> tuple[ErrorCode, int]:
        """(error, leader broker id) of the group's offsets partition."""
        error = self.ensure_topic()
        if error != ErrorCode.none:
            return error, -1
        topic = self.metadata.image().topics[OFFSETS_TOPIC]
        info = topic.partitions.get(self.coordinator.partition_for(group_id))
        if info is None or info.leader < 0:
            return ErrorCode.coordinator_not_available, -1
        return ErrorCode.none, info.leader

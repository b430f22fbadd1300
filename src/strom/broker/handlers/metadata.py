"""Metadata (3): brokers, controller, topics and partition leadership.

Unknown topics are created here when both the broker (`auto.create.topics.enable`) and
the request (`allow_auto_topic_creation`, implied before v4) allow it, as Kafka does;
otherwise they are answered with UNKNOWN_TOPIC_OR_PARTITION, which the Java tools expect.

The answer is written by `strom.protocol.metadata_response`, not by kio: each topic's
entry is encoded once per version and kept on the (immutable) `TopicInfo` with what else
its bytes depend on (the live brokers, the authorized-operations value), so answering for
10,000 partitions is a join of cached bytes. Entries that depend on this broker's failed
log dirs are encoded afresh each time and never cached.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.broker.security.api_authorization import LISTED, OPERATIONS
from strom.broker.topic_admin import INTERNAL_TOPICS
from strom.cluster.image import MetadataImage, TopicInfo
from strom.cluster.store import MetadataError
from strom.protocol.api_keys import ApiKey
from strom.protocol.framing import EncodedBody
from strom.protocol.metadata_response import (
    AUTHORIZED_OPERATIONS_UNKNOWN,
    BrokerRow,
    MetadataWriter,
    PartitionRow,
    writer,
)
from strom.protocol.schema import uuid_or_none

log = logging.getLogger(__name__)
LEADER_NOT_AVAILABLE = int(ErrorCode.leader_not_available)


@dataclass(frozen=True, slots=True)
class Missing:
    """A requested topic that is not answered with its partitions."""

    name: str | None
    topic_id: uuid.UUID | None
    error_code: int


Answer = TopicInfo | Missing


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    errors: tuple[int, ...]


def partition_rows(topic: TopicInfo, live: Collection[int], me: int = -1,
                   offline_here: Collection[int] = ()) -> Iterator[PartitionRow]:
    """The topic's partitions as Metadata reports them: a leader that is not a live
    broker is no leader (LEADER_NOT_AVAILABLE), replicas on dead brokers are offline, and
    so is this broker's replica of a partition in ``offline_here`` (its log dir failed:
    Kafka reports it so once its controller heard, and clients stop sending there)."""
    partitions = topic.partitions
    for index in sorted(partitions):
        p = partitions[index]
        leader = p.leader if p.leader in live else -1
        offline = tuple(r for r in p.replicas if r not in live)
        if index in offline_here:
            if me not in offline:
                offline += (me,)
            if leader == me:
                leader = -1
        code = 0 if leader != -1 else LEADER_NOT_AVAILABLE
        yield PartitionRow(code, index, leader, p.leader_epoch, p.replicas, p.isr, offline)


def encode_topic(w: MetadataWriter, topic: TopicInfo, live: Collection[int], me: int = -1,
                 offline_here: Collection[int] = (),
                 authorized_operations: int = AUTHORIZED_OPERATIONS_UNKNOWN) -> Encoded:
    rows = list(partition_rows(topic, live, me, offline_here))
    entry = w.topic(0, topic.name, topic.topic_id, topic.internal, w.partitions(rows),
                    authorized_operations)
    return Encoded(entry, tuple(r.error_code for r in rows if r.error_code))


def cached_topic(w: MetadataWriter, topic: TopicInfo, image: MetadataImage,
                 authorized_operations: int = AUTHORIZED_OPERATIONS_UNKNOWN) -> Encoded:
    """The topic's entry, encoded once per version for as long as neither the topic nor
    the set of live brokers changes."""
    key = ("metadata", w.version, authorized_operations)
    live = image.live_broker_ids
    hit = topic.derived.get(key)
    if hit is not None and hit[0] == live:
        return hit[1]
    encoded = encode_topic(w, topic, live, authorized_operations=authorized_operations)
    topic.derived[key] = (live, encoded)
    return encoded


def _lookup_or_create(ctx: RequestContext, name: str, auto_create: bool) -> Answer:
    image = ctx.metadata.image()
    topic = image.topics.get(name)
    if topic is not None:
        return topic
    if not auto_create or name in INTERNAL_TOPICS:
        return Missing(name, None, ErrorCode.unknown_topic_or_partition)
    try:
        return ctx.admin.auto_create(name)
    except MetadataError as exc:
        if exc.error == ErrorCode.topic_already_exists:
            return _lookup_or_create(ctx, name, False)
        log.info("auto-creation of %r refused: %s", name, exc)
        return Missing(name, None, exc.error)


def _answers(ctx: RequestContext, request: Any, image: MetadataImage) -> list[Answer]:
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        listed = LISTED.get()  # under an authorizer: those the principal may Describe
        if listed is None:
            return list(image.topics_by_name)
        return [t for t in image.topics_by_name if listed(t.name)]
    auto_create = ctx.config.get_bool("auto.create.topics.enable") and getattr(
        request, "allow_auto_topic_creation", True
    )
    answers: list[Answer] = []
    for item in requested:
        name = getattr(item, "name", None)
        topic_id = uuid_or_none(getattr(item, "topic_id", None))
        if not name and topic_id is not None:  # the Java client sends "" with an id
            topic = image.topic_by_id(topic_id)
            answers.append(topic or Missing(None, topic_id, ErrorCode.unknown_topic_id))
        else:
            answers.append(_lookup_or_create(ctx, name or "", auto_create))
    return answers


@dispatch.handles(ApiKey.METADATA, 0, 13)
async def handle(ctx: RequestContext, request: Any) -> EncodedBody:
    answers = _answers(ctx, request, ctx.metadata.image())
    image = ctx.metadata.image()  # auto-creation may have published a newer one
    w = writer(ctx.api_version)
    offline = _offline_here(ctx, answers)
    entries: list[bytes] = []
    errors: list[int] = []
    ops = OPERATIONS.get()  # KIP-430 authorized operations, when the request asks
    for answer in answers:
        if isinstance(answer, Missing):
            entries.append(w.topic(answer.error_code, answer.name, answer.topic_id, False, ()))
            errors.append(answer.error_code)
            continue
        here = offline.get(answer.name)
        allowed = AUTHORIZED_OPERATIONS_UNKNOWN if ops is None else ops("Topic", answer.name)
        encoded = (cached_topic(w, answer, image, allowed) if here is None else
                   encode_topic(w, answer, image.live_broker_ids, ctx.broker_id, here, allowed))
        entries.append(encoded.data)
        errors += encoded.errors
    brokers = [BrokerRow(b.broker_id, *ctx.endpoint(b), b.rack)
               for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)]
    cluster = AUTHORIZED_OPERATIONS_UNKNOWN if ops is None else ops("Cluster", "kafka-cluster")
    return EncodedBody(w.body(brokers, image.cluster_id, image.controller_id, entries,
                              cluster_authorized_operations=cluster), errors)


def _offline_here(ctx: RequestContext, answers: list[Answer]) -> dict[str, set[int]]:
    """The partitions, by topic, whose replica here sits in a failed log dir."""
    if not ctx.partitions.offline_dirs:
        return {}
    out: dict[str, set[int]] = {}
    for topic in answers:
        if isinstance(topic, Missing):
            continue
        for index in topic.partitions:
            partition = ctx.partitions.get(topic.name, index)
            if partition is not None and partition.log.offline is not None:
                out.setdefault(topic.name, set()).add(index)
    return out

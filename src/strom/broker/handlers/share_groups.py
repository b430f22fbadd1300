"""Share groups (KIP-932): ShareGroupHeartbeat (76), ShareGroupDescribe (77), ShareFetch
(78) and ShareAcknowledge (79).

Kafka 4.4 serves share groups by default (its `share.version` feature is finalized at 1
or more on a new cluster), and so does Strom: `strom.share.version` is 1 by default and
ApiVersions lists it as the finalized `share.version`. At 0 (and without Kafka 4.0's
switch, `share` in `group.coordinator.rebalance.protocols`) share groups are off:
ApiVersions then does not list these APIs (nor 83-87, 90-92) and a request for one is
refused with UNSUPPORTED_VERSION.

Heartbeat and describe go to the group's coordinator shard (`strom.coordinator.share`);
fetch and acknowledge run on the partitions' leader, on the share-partitions and share
sessions of `strom.broker.share.manager`, one `ShareManager` per broker, whose state is
kept by the share coordinator in `__share_group_state` (`strom.broker.share.persister`,
`strom.broker.hosts.share_host`): a new leader resumes where the old one was.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.consumer_groups import described_absent
from strom.broker.hosts.share_host import host_of
from strom.broker.network import dispatch
from strom.broker.share.isolation import skipped_offsets
from strom.broker.share.manager import FINAL_EPOCH, ShareManager, ShareSettings, manager_of
from strom.broker.share.offset_reset import start_offset
from strom.broker.share.partition import SharePartition
from strom.broker.share.persister import CoordinatorPersister
from strom.coordinator.share import service
from strom.coordinator.share.group import ShareGroup, ShareHeartbeat
from strom.coordinator.share.group import ShareSettings as MembershipSettings
from strom.protocol.api_keys import ApiKey
from strom.protocol.metadata_response import AUTHORIZED_OPERATIONS_UNKNOWN
from strom.protocol.records import read_header
from strom.protocol.schema import millis

SHARE_APIS = frozenset(int(k) for k in (
    ApiKey.SHARE_GROUP_HEARTBEAT, ApiKey.SHARE_GROUP_DESCRIBE, ApiKey.SHARE_FETCH,
    ApiKey.SHARE_ACKNOWLEDGE, ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS,
    ApiKey.ALTER_SHARE_GROUP_OFFSETS, ApiKey.DELETE_SHARE_GROUP_OFFSETS,
    ApiKey.INITIALIZE_SHARE_GROUP_STATE, ApiKey.READ_SHARE_GROUP_STATE,
    ApiKey.WRITE_SHARE_GROUP_STATE, ApiKey.DELETE_SHARE_GROUP_STATE,
    ApiKey.READ_SHARE_GROUP_STATE_SUMMARY))


def share_version(config: Any) -> int:
    """The finalized `share.version` (Kafka 4.4's switch for share groups): 1 by
    `strom.share.version` (the default, as a new Kafka 4.4 cluster) or by `share` in
    `group.coordinator.rebalance.protocols` (Kafka 4.0's early-access switch)."""
    protocols = config.get_str("group.coordinator.rebalance.protocols") or ""
    if "share" in {p.strip().lower() for p in protocols.split(",")}:
        return 1
    return config.get_int("strom.share.version")


def share_enabled(ctx: RequestContext) -> bool:
    return share_version(ctx.config) >= 1


def manager(ctx: RequestContext) -> ShareManager:
    """This broker's share manager, kept beside (and living as long as) its partitions."""
    found = manager_of(ctx.partitions) or manager_of(ctx.partitions, lambda: _new_manager(ctx))
    assert found is not None
    return found


def _new_manager(ctx: RequestContext) -> ShareManager:
    metadata = ctx.metadata

    def topic_id(name: str) -> uuid.UUID | None:
        topic = metadata.image().topics.get(name)
        return None if topic is None else topic.topic_id

    def clock() -> int:
        return int(time.time() * 1000)

    store = CoordinatorPersister(host_of(ctx), topic_id)
    sessions = int(ctx.config.raw("group.share.max.share.sessions") or "2000")
    return ShareManager(clock, store, sessions)


def _setting(ctx: RequestContext, group_id: str, name: str, default: str) -> str:
    """A group config override (GROUP resource ``share.x``), else the broker's
    (``group.share.x``), else Kafka's default."""
    overrides = getattr(ctx.metadata.image(), "group_configs", {}).get(group_id, {})
    value = overrides.get(name) or ctx.config.raw(f"group.{name}")
    return default if value is None else value


def _renew_enabled(ctx: RequestContext, group_id: str) -> bool:
    """``share.renew.acknowledge.enable``: a group config with no broker synonym in
    Kafka 4.4 (its ShareGroupConfigProvider falls back to true)."""
    overrides = getattr(ctx.metadata.image(), "group_configs", {}).get(group_id, {})
    return str(overrides.get("share.renew.acknowledge.enable", "true")).lower() == "true"


def settings(ctx: RequestContext, group_id: str) -> ShareSettings:
    return ShareSettings(
        lock_ms=int(_setting(ctx, group_id, "share.record.lock.duration.ms", "30000")),
        delivery_limit=int(_setting(ctx, group_id, "share.delivery.count.limit", "5")),
        max_in_flight=int(_setting(ctx, group_id, "share.partition.max.record.locks", "2000")),
        auto_offset_reset=_setting(ctx, group_id, "share.auto.offset.reset", "latest"),
        renew_enabled=_renew_enabled(ctx, group_id))


def _connection_closed(services: Any, peer: str) -> None:
    """A client connection closed: its share sessions end, their records released."""
    found = manager_of(services.partitions)
    if found is not None and found.sessions:
        found.disconnected(peer)


dispatch.DISCONNECT_LISTENERS.append(_connection_closed)


# --- ShareGroupHeartbeat / ShareGroupDescribe ----------------------------------------------


def _membership_settings(ctx: RequestContext, group_id: str) -> MembershipSettings:
    return MembershipSettings(
        session_timeout_ms=int(_setting(ctx, group_id, "share.session.timeout.ms", "45000")),
        heartbeat_interval_ms=int(_setting(ctx, group_id, "share.heartbeat.interval.ms",
                                           "5000")),
        max_size=int(ctx.config.raw("group.share.max.size") or "200"))


def _assignment(assignment: dict[uuid.UUID, frozenset[int]] | None) -> dict[str, Any] | None:
    if assignment is None:
        return None
    return {"topic_partitions": [{"topic_id": t, "partitions": sorted(ps)}
                                 for t, ps in sorted(assignment.items()) if ps]}


@dispatch.handles(ApiKey.SHARE_GROUP_HEARTBEAT, 1, 1)
async def share_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    if not share_enabled(ctx):
        return ctx.respond(error_code=ErrorCode.unsupported_version, member_epoch=-1)
    host_of(ctx).ensure_topic()  # __share_group_state ready before the members' first fetch
    topics = request.subscribed_topic_names
    result = await service.heartbeat(ctx.groups.coordinator, ShareHeartbeat(
        group_id=request.group_id, member_id=request.member_id,
        member_epoch=int(request.member_epoch), rack_id=request.rack_id,
        subscribed_topics=None if topics is None else tuple(topics),
        client_id=ctx.client_id or "", client_host="/" + ctx.peer.rsplit(":", 1)[0],
    ), _membership_settings(ctx, request.group_id), manager(ctx).close)
    return ctx.respond(error_code=result.error, error_message=result.message,
                       member_id=result.member_id, member_epoch=result.member_epoch,
                       heartbeat_interval=result.heartbeat_interval_ms,
                       assignment=_assignment(result.assignment))


def _member(member: Any, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {"member_id": member.member_id, "rack_id": member.rack_id,
            "member_epoch": member.member_epoch, "client_id": member.client_id,
            "client_host": member.client_host,
            "subscribed_topic_names": list(member.subscribed_topics),
            "assignment": {"topic_partitions": [
                {"topic_id": t, "topic_name": names.get(t, ""), "partitions": sorted(ps)}
                for t, ps in sorted(member.assigned.items()) if ps]}}


def _described(ctx: RequestContext, group_id: str) -> dict[str, Any]:
    error, group = service.describe(ctx.groups.coordinator, group_id)
    ops = AUTHORIZED_OPERATIONS_UNKNOWN
    if group is None:
        return described_absent(group_id, error)
    names = {t.topic_id: t.name for t in ctx.metadata.image().topics.values()}
    return {"error_code": ErrorCode.none, "group_id": group_id, "group_state": group.state,
            "group_epoch": group.epoch, "assignment_epoch": group.assignment_epoch,
            "assignor_name": "simple",
            "members": [_member(m, names) for m in group.members.values()],
            "authorized_operations": ops}


@dispatch.handles(ApiKey.SHARE_GROUP_DESCRIBE, 1, 1)
async def share_group_describe(ctx: RequestContext, request: Any) -> Any:
    if not share_enabled(ctx):
        return ctx.respond(groups=[described_absent(g, ErrorCode.unsupported_version, "")
                                   for g in request.group_ids])
    return ctx.respond(groups=[_described(ctx, g) for g in request.group_ids])


def forget_group(ctx: RequestContext, group_id: str) -> None:
    """DeleteGroups removed ``group_id``: its share-partitions loaded here go, their
    state deleted at the share coordinator."""
    if share_enabled(ctx):
        task = asyncio.get_running_loop().create_task(manager(ctx).forget_group(group_id))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)


_PENDING: set[asyncio.Task[None]] = set()


def listed_groups(ctx: RequestContext, states: set[str]) -> list[ShareGroup]:
    """ListGroups' share rows (none while share groups are off)."""
    return service.listed(ctx.groups.coordinator, states) if share_enabled(ctx) else []


# --- ShareFetch / ShareAcknowledge ---------------------------------------------------------


def _leader(partition: Any) -> dict[str, int]:
    return {"leader_id": partition.leader_id if partition is not None else -1,
            "leader_epoch": partition.leader_epoch if partition is not None else -1}


class _Target:
    """One requested (topic id, partition): its name, partition and share-partition."""

    def __init__(self, ctx: RequestContext, group_id: str, topic_id: uuid.UUID,
                 index: int) -> None:
        self.topic_id, self.index, self.group_id = topic_id, index, group_id
        topic = ctx.metadata.image().topic_by_id(topic_id)
        self.partition = None if topic is None else ctx.partitions.get(topic.name, index)
        self.error = ErrorCode.none
        self.share: SharePartition | None = None
        self.read_committed = (_setting(ctx, group_id, "share.isolation.level",
                                        "read_uncommitted") == "read_committed")
        self.key = (group_id, "" if topic is None else topic.name, index)
        if topic is None:
            self.error = ErrorCode.unknown_topic_id
        elif self.partition is None or not self.partition.is_leader:
            self.error = ErrorCode.not_leader_or_follower

    async def load(self, ctx: RequestContext) -> None:
        """The share-partition, from the share coordinator unless loaded here."""
        part = self.partition
        if self.error != ErrorCode.none or part is None:
            return
        error, self.share = await manager(ctx).load(
            self.key, settings(ctx, self.group_id),
            lambda reset: start_offset(part, reset, lambda: int(time.time() * 1000)),
            self.topic_id, part.leader_epoch)
        if error != ErrorCode.none:
            self.error = ErrorCode.coordinator_not_available \
                if error != ErrorCode.unknown_topic_id else error


async def _acknowledge(ctx: RequestContext, target: _Target, member_id: str,
                       batches: Any) -> ErrorCode:
    """Apply a member's acknowledgements; answered once the share coordinator has the
    new state (Kafka's persister write before the answer)."""
    if target.share is None:
        return target.error
    error = target.share.acknowledge(
        member_id, [(int(b.first_offset), int(b.last_offset),
                     tuple(int(t) for t in b.acknowledge_types)) for b in batches])
    if error == ErrorCode.none:
        error = await manager(ctx).persist(target.key)
    return error


def _batches_end(data: bytes, high_watermark: int) -> int:
    """The offset after the last whole batch in ``data`` (at most the high watermark)."""
    pos, end = 0, -1
    while pos + 61 <= len(data):
        header = read_header(data, pos)
        end = header.base_offset + header.last_offset_delta + 1
        pos += 12 + header.batch_length
    return min(end, high_watermark) if end >= 0 else -1


async def _fetch_one(ctx: RequestContext, target: _Target, member_id: str, max_records: int,
                     max_bytes: int) -> tuple[bytes, list[dict[str, int]]]:
    """Acquire records of one share-partition and read the batches holding them."""
    share, partition = target.share, target.partition
    if share is None or partition is None:
        return b"", []
    if share.expire_locks():  # released or archived by the lock: durable before redelivery
        await manager(ctx).persist(target.key)
    start = share.next_fetch_offset()
    committed = target.read_committed
    if start >= (partition.last_stable_offset if committed else partition.high_watermark):
        return b"", []
    result = partition.read(start, max_bytes, read_committed=committed)
    if result.error != ErrorCode.none or not result.records:
        if result.error == ErrorCode.offset_out_of_range:
            share.move_start(partition.log_start_offset)
        return b"", []
    data = bytes(result.records)
    upto = _batches_end(data, result.last_stable_offset if committed else result.high_watermark)
    if committed:
        share.archive(skipped_offsets(data, result.aborted), upto)
    acquired = share.acquire(member_id, upto, max_records)
    rows = [{"first_offset": a.first_offset, "last_offset": a.last_offset,
             "delivery_count": a.delivery_count} for a in acquired]
    return (bytes(result.records) if rows else b""), rows


async def _targets(ctx: RequestContext, group_id: str, pairs: Any
                   ) -> dict[tuple[uuid.UUID, int], _Target]:
    targets = {(t, p): _Target(ctx, group_id, t, p) for t, p in pairs}
    for target in targets.values():
        await target.load(ctx)
    return targets


def _partition_row(target: _Target, ack_error: ErrorCode | None, data: bytes,
                   acquired: list[dict[str, int]]) -> dict[str, Any]:
    return {"partition_index": target.index, "error_code": target.error,
            "acknowledge_error_code": int(ack_error or ErrorCode.none),
            "current_leader": _leader(target.partition), "records": data,
            "acquired_records": acquired}


def _by_topic(rows: dict[tuple[uuid.UUID, int], dict[str, Any]]) -> list[dict[str, Any]]:
    topics: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for (topic_id, _), row in rows.items():
        topics.setdefault(topic_id, []).append(row)
    return [{"topic_id": t, "partitions": ps} for t, ps in topics.items()]


def _requested_acks(request: Any) -> dict[tuple[uuid.UUID, int], Any]:
    return {(t.topic_id, int(p.partition_index)): p.acknowledgement_batches
            for t in request.topics for p in t.partitions if p.acknowledgement_batches}


async def _fetch_rounds(ctx: RequestContext, request: Any, member_id: str,
                        targets: dict[tuple[uuid.UUID, int], _Target]
                        ) -> dict[tuple[uuid.UUID, int], tuple[bytes, list[dict[str, int]]]]:
    """Acquire until something is acquired or max_wait passes (long poll)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + millis(request.max_wait) / 1000
    while True:
        budget = int(request.max_bytes)
        fetched: dict[tuple[uuid.UUID, int], tuple[bytes, list[dict[str, int]]]] = {}
        for tp, target in targets.items():
            data, rows = await _fetch_one(ctx, target, member_id, int(request.max_records),
                                          max(budget, 1))
            budget -= len(data)
            fetched[tp] = (data, rows)
        remaining = deadline - loop.time()
        if any(rows for _, rows in fetched.values()) or remaining <= 0:
            return fetched
        waiters = [t.partition.wait_for_append() for t in targets.values()
                   if t.partition is not None and t.share is not None]
        await asyncio.wait(waiters or [loop.create_future()], timeout=min(remaining, 0.25),
                           return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()


def _share_request_error(ctx: RequestContext, request: Any) -> tuple[ErrorCode, str | None]:
    if not share_enabled(ctx):
        return ErrorCode.unsupported_version, None
    if not request.group_id:
        return ErrorCode.invalid_group_id, "The group id in the request must not be empty."
    if not request.member_id:
        return ErrorCode.invalid_request, "Member id must not be empty."
    return ErrorCode.none, None


@dispatch.handles(ApiKey.SHARE_FETCH, 1, 2)
async def share_fetch(ctx: RequestContext, request: Any) -> Any:
    error, message = _share_request_error(ctx, request)
    lock_ms = settings(ctx, request.group_id or "").lock_ms
    if error != ErrorCode.none:
        return ctx.respond(error_code=error, error_message=message, responses=[])
    acks = _requested_acks(request)
    epoch = int(request.share_session_epoch)
    added = [(t.topic_id, int(p.partition_index)) for t in request.topics for p in t.partitions]
    forgotten = [(t.topic_id, int(p)) for t in request.forgotten_topics_data for p in t.partitions]
    shares = manager(ctx)
    error, session = shares.open(request.group_id, request.member_id, epoch, added, forgotten,
                                 bool(acks), ctx.peer)
    if session is None:
        return ctx.respond(error_code=error, responses=[], acquisition_lock_timeout=lock_ms)
    targets = await _targets(ctx, request.group_id, [*session.partitions, *acks])
    ack_errors = {tp: await _acknowledge(ctx, targets[tp], request.member_id, b)
                  for tp, b in acks.items()}
    if epoch == FINAL_EPOCH:
        shares.close(request.group_id, request.member_id)
        fetched: dict[tuple[uuid.UUID, int], tuple[bytes, list[dict[str, int]]]] = {}
    else:
        fetching = {tp: t for tp, t in targets.items() if tp in session.partitions}
        fetched = await _fetch_rounds(ctx, request, request.member_id, fetching)
    rows = {tp: _partition_row(t, ack_errors.get(tp), *fetched.get(tp, (b"", [])))
            for tp, t in targets.items()}
    return ctx.respond(error_code=ErrorCode.none, acquisition_lock_timeout=lock_ms,
                       responses=_by_topic(rows))


@dispatch.handles(ApiKey.SHARE_ACKNOWLEDGE, 1, 2)
async def share_acknowledge(ctx: RequestContext, request: Any) -> Any:
    error, message = _share_request_error(ctx, request)
    lock_ms = settings(ctx, request.group_id or "").lock_ms
    if error != ErrorCode.none:
        return ctx.respond(error_code=error, error_message=message, responses=[])
    shares = manager(ctx)
    epoch = int(request.share_session_epoch)
    error = shares.acknowledging(request.group_id, request.member_id, epoch)
    if error != ErrorCode.none:
        return ctx.respond(error_code=error, responses=[], acquisition_lock_timeout=lock_ms)
    acks = _requested_acks(request)
    targets = await _targets(ctx, request.group_id, acks)
    rows = {}
    for tp, target in targets.items():
        code = await _acknowledge(ctx, target, request.member_id, acks[tp])
        rows[tp] = {"partition_index": target.index, "error_code": code,
                    "current_leader": _leader(target.partition)}
    if epoch == FINAL_EPOCH:
        shares.close(request.group_id, request.member_id)
    return ctx.respond(error_code=ErrorCode.none, acquisition_lock_timeout=lock_ms,
                       responses=_by_topic(rows))

"""The share coordinator's inter-broker APIs (KIP-932): InitializeShareGroupState (83),
ReadShareGroupState (84), WriteShareGroupState (85), DeleteShareGroupState (86) and
ReadShareGroupStateSummary (87), answered per share-partition by the shard of its
`__share_group_state` partition on this broker (`strom.broker.hosts.share_host`);
NOT_COORDINATOR for a share-partition whose state partition is not led here. Partition
leaders call them through their persister; they need ClusterAction (brokers only).
Versions as Kafka 4.4's: Write and ReadSummary v1 carry DeliveryCompleteCount.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.share_groups import share_enabled
from strom.broker.hosts.share_host import host_of
from strom.broker.network import dispatch
from strom.coordinator.share_state.records import ShareKey, StateBatch
from strom.coordinator.share_state.shard import ShareState
from strom.protocol.api_keys import ApiKey

PartitionAnswer = Callable[[RequestContext, ShareKey, Any], Awaitable[dict[str, Any]]]


async def _answer_all(ctx: RequestContext, request: Any, answer: PartitionAnswer) -> Any:
    results = []
    for topic in request.topics:
        rows = []
        for part in topic.partitions:
            key = (request.group_id, topic.topic_id, int(part.partition))
            if not share_enabled(ctx):
                row: dict[str, Any] = {"error_code": ErrorCode.unsupported_version}
            else:
                row = await answer(ctx, key, part)
            rows.append({"partition": key[2], **row})
        results.append({"topic_id": topic.topic_id, "partitions": rows})
    return ctx.respond(results=results)


async def _initialize(ctx: RequestContext, key: ShareKey, part: Any) -> dict[str, Any]:
    error, answer = await host_of(ctx).local(key, lambda s: s.initialize(
        key, int(part.state_epoch), int(part.start_offset)))
    return {"error_code": answer if error == ErrorCode.none else error}


async def _write(ctx: RequestContext, key: ShareKey, part: Any) -> dict[str, Any]:
    batches = tuple(StateBatch(int(b.first_offset), int(b.last_offset), int(b.delivery_state),
                               int(b.delivery_count)) for b in part.state_batches)
    count = int(getattr(part, "delivery_complete_count", -1))  # v1
    error, answer = await host_of(ctx).local(key, lambda s: s.write(
        key, int(part.state_epoch), int(part.leader_epoch), int(part.start_offset), batches,
        count))
    return {"error_code": answer if error == ErrorCode.none else error}


async def _delete(ctx: RequestContext, key: ShareKey, _part: Any) -> dict[str, Any]:
    error, answer = await host_of(ctx).local(key, lambda s: s.delete(key))
    return {"error_code": answer if error == ErrorCode.none else error}


def _state_row(error: ErrorCode, state: ShareState | None) -> dict[str, Any]:
    """A read's answer; a share-partition never initialized has start offset -1."""
    if error != ErrorCode.none or state is None:
        return {"error_code": error, "state_epoch": 0, "leader_epoch": -1,
                "start_offset": -1, "delivery_complete_count": -1, "state_batches": []}
    return {"error_code": ErrorCode.none, "state_epoch": state.state_epoch,
            "leader_epoch": state.leader_epoch, "start_offset": state.start_offset,
            "delivery_complete_count": state.delivery_complete_count,
            "state_batches": [{"first_offset": b.first_offset, "last_offset": b.last_offset,
                               "delivery_state": b.delivery_state,
                               "delivery_count": b.delivery_count} for b in state.batches]}


async def _read(ctx: RequestContext, key: ShareKey, part: Any) -> dict[str, Any]:
    error, answer = await host_of(ctx).local(key, lambda s: s.read(key, int(part.leader_epoch)))
    if error != ErrorCode.none:
        return _state_row(error, None)
    return _state_row(*answer)


async def _summary(ctx: RequestContext, key: ShareKey, _part: Any) -> dict[str, Any]:
    host = host_of(ctx)
    partition = host.state_partition(key)
    error = host.ready(partition)
    state = host.runtime.shards[partition].summary(key) if error == ErrorCode.none else None
    return _state_row(error, state)


def find_share_coordinator(ctx: RequestContext, key: str) -> tuple[ErrorCode, int]:
    """FindCoordinator key type 2 (`group:topicId:partition`, the topic id in Kafka's
    text): (error, broker id); INVALID_REQUEST for a key of another shape."""
    parts = key.rsplit(":", 2)
    try:
        topic_id = uuid.UUID(bytes=base64.urlsafe_b64decode(parts[1] + "=="))
        share_key = (parts[0], topic_id, int(parts[2]))
    except (IndexError, ValueError):
        return ErrorCode.invalid_request, -1
    if not share_enabled(ctx):
        return ErrorCode.coordinator_not_available, -1
    return host_of(ctx).coordinator_for(share_key)


@dispatch.handles(ApiKey.INITIALIZE_SHARE_GROUP_STATE, 0, 0)
async def initialize_share_group_state(ctx: RequestContext, request: Any) -> Any:
    return await _answer_all(ctx, request, _initialize)


@dispatch.handles(ApiKey.READ_SHARE_GROUP_STATE, 0, 0)
async def read_share_group_state(ctx: RequestContext, request: Any) -> Any:
    return await _answer_all(ctx, request, _read)


@dispatch.handles(ApiKey.WRITE_SHARE_GROUP_STATE, 0, 1)
async def write_share_group_state(ctx: RequestContext, request: Any) -> Any:
    return await _answer_all(ctx, request, _write)


@dispatch.handles(ApiKey.DELETE_SHARE_GROUP_STATE, 0, 0)
async def delete_share_group_state(ctx: RequestContext, request: Any) -> Any:
    return await _answer_all(ctx, request, _delete)


@dispatch.handles(ApiKey.READ_SHARE_GROUP_STATE_SUMMARY, 0, 1)
async def read_share_group_state_summary(ctx: RequestContext, request: Any) -> Any:
    return await _answer_all(ctx, request, _summary)

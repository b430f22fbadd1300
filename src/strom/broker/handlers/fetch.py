"""Fetch (1): serve record batches, long-polling until min_bytes or max_wait.

Limits follow Kafka: `partition_max_bytes` per partition and `max_bytes` for the whole
response, except that the first non-empty partition always gets at least one whole batch
so a consumer can never be stuck behind a batch larger than its limits (KIP-74).

Fetch sessions (KIP-227) are answered with session id 0, which tells the client to keep
sending full requests; that is always correct, only less compact.

The answer is written by `strom.protocol.fetch_response` as a list of buffers: the record
batches read from the segments go to the socket as they are, never joined into one
response object.

A fetch with a replica id is a follower replicating: it reads up to the log end rather
than the high watermark, and its fetch offset tells the leader how far it has come.
Only live brokers may fetch as replicas (CVE-2018-1288).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import (
    NONE,
    check_leader_epoch,
    missing_partition_error,
    resolve_topic,
)
from strom.broker.network import dispatch
from strom.broker.quotas.throttling import fetch_byte_cap, fetch_throttle, hold_for_old_clients
from strom.broker.replication.partition import Partition
from strom.protocol import fetch_response
from strom.protocol.api_keys import ApiKey
from strom.protocol.framing import EncodedBody
from strom.protocol.schema import build, millis, uuid_or_none

READ_COMMITTED = 1


def _empty(index: int, code: ErrorCode, hw: int = -1, log_start: int = -1) -> dict[str, Any]:
    return {"partition_index": index, "error_code": code, "high_watermark": hw,
            "last_stable_offset": hw, "log_start_offset": log_start, "records": b"",
            "aborted_transactions": None, "preferred_read_replica": -1}


class _FetchPlan:
    """Resolves the request's partitions once; `collect` reads them, possibly repeatedly."""

    def __init__(self, ctx: RequestContext, request: Any) -> None:
        self.ctx = ctx
        self.request = request
        self.isolation = int(getattr(request, "isolation_level", 0))
        replica_state = getattr(request, "replica_state", None)
        self.replica_id = int(replica_state.replica_id if replica_state is not None
                              else getattr(request, "replica_id", -1))
        self.targets: list[tuple[Any, str | None, Any, list[Any]]] = []
        self.byte_cap = fetch_byte_cap(ctx) if self.replica_id < 0 else None  # quota
        self.partitions: list[Partition] = []
        for topic_req in request.topics:
            name = getattr(topic_req, "topic", None)
            topic_id = uuid_or_none(getattr(topic_req, "topic_id", None))
            topic, code = resolve_topic(ctx, name, topic_id)
            self.targets.append((topic_req, name, topic_id, [topic, code]))
            if topic is None:
                continue
            for part in topic_req.partitions:
                partition = ctx.partitions.get(topic.name, part.partition)
                if partition is not None:
                    self.partitions.append(partition)

    def collect(self) -> tuple[list[dict[str, Any]], int, bool]:
        """Read every partition; returns (topic responses, bytes, any error)."""
        remaining = int(getattr(self.request, "max_bytes", 2**31 - 1))
        if self.byte_cap is not None:
            remaining = min(remaining, self.byte_cap)
        total = 0
        errored = False
        responses = []
        for topic_req, name, topic_id, (topic, code) in self.targets:
            parts = []
            for part in topic_req.partitions:
                if topic is None:
                    parts.append(_empty(part.partition, code))
                    errored = True
                    continue
                entry = self._read_partition(topic.name, part, remaining, first=total == 0)
                size = len(entry["records"])
                total += size
                remaining -= size
                errored |= entry["error_code"] != NONE
                parts.append(entry)
            responses.append({"topic": name, "topic_id": topic_id, "partitions": parts})
        return responses, total, errored

    def record_replica_positions(self) -> None:
        """Before reading: a follower's fetch offsets are its log ends (ISR, HW)."""
        if self.replica_id < 0:
            return
        replicas = self.ctx.partitions
        for topic_req, _, _, (topic, _) in self.targets:
            if topic is None:
                continue
            for part in topic_req.partitions:
                partition = replicas.get(topic.name, part.partition)
                if partition is not None and partition.is_leader:
                    partition.record_follower_fetch(self.replica_id, int(part.fetch_offset))
                    replicas.maybe_expand_isr(partition)

    def _read_partition(self, topic: str, part: Any, remaining: int, first: bool) -> dict[str, Any]:
        partition = self.ctx.partitions.get(topic, part.partition)
        if partition is None:
            return _empty(part.partition, missing_partition_error(self.ctx, topic, part.partition))
        if not partition.is_leader:
            entry = _empty(part.partition, ErrorCode.not_leader_or_follower)
            entry["current_leader"] = {"leader_id": partition.leader_id,
                                       "leader_epoch": partition.leader_epoch}
            return entry
        epoch_error = check_leader_epoch(
            int(getattr(part, "current_leader_epoch", -1)), partition.leader_epoch
        )
        if epoch_error != NONE:
            return _empty(part.partition, epoch_error)
        limit = min(int(part.partition_max_bytes), max(remaining, 0))
        result = partition.read(int(part.fetch_offset), limit, min_one_batch=first,
                                up_to_log_end=self.replica_id >= 0,
                                read_committed=self.isolation == READ_COMMITTED)
        code = result.error
        if code == ErrorCode.kafka_storage_error and self.ctx.api_version <= 5:
            code = ErrorCode.not_leader_or_follower  # Kafka's down-conversion: v5- clients
        entry = _empty(part.partition, code, result.high_watermark, result.log_start_offset)
        entry["last_stable_offset"] = result.last_stable_offset
        entry["records"] = result.records
        if self.isolation == READ_COMMITTED:
            entry["aborted_transactions"] = [{"producer_id": pid, "first_offset": first}
                                             for pid, first in result.aborted]
        return entry


@dispatch.handles(ApiKey.FETCH, 4, 17)
async def handle(ctx: RequestContext, request: Any) -> Any:
    plan = _FetchPlan(ctx, request)
    if plan.replica_id >= 0 and plan.replica_id not in ctx.metadata.image().brokers:
        return build(ctx.response_type(), error_code=ErrorCode.cluster_authorization_failed,
                     responses=[])
    plan.record_replica_positions()
    max_wait_ms = millis(request.max_wait)
    min_bytes = int(request.min_bytes)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_ms / 1000
    while True:
        responses, total, errored = plan.collect()
        remaining = deadline - loop.time()
        if total >= min_bytes or errored or remaining <= 0 or not plan.partitions:
            break
        waiters = [p.wait_for_append() for p in plan.partitions]
        await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    parts, errors = fetch_response.encode(ctx.api_version, responses)
    if plan.replica_id < 0:
        throttle_ms = fetch_throttle(ctx, sum(map(len, parts)))
        if throttle_ms > 0:  # over its quota: an empty answer, as Kafka gives
            await hold_for_old_clients(ctx, throttle_ms, 8)
            parts, errors = fetch_response.encode(ctx.api_version, [],
                                                  throttle_time_ms=throttle_ms)
            return EncodedBody(parts, errors)
    _count_out(ctx, request, plan, responses)
    return EncodedBody(parts, errors)  # the batches read from segments, written as they are


def _count_out(ctx: RequestContext, request: Any, plan: _FetchPlan,
               responses: list[dict[str, Any]]) -> None:
    """Bytes and records sent to consumers (not to followers), for the metrics."""
    state = getattr(request, "replica_state", None)
    if int(state.replica_id if state is not None else getattr(request, "replica_id", -1)) >= 0:
        return
    for (_, _, _, (topic, _)), response in zip(plan.targets, responses, strict=True):
        if topic is not None:
            for entry in response["partitions"]:
                if entry["records"]:
                    ctx.metrics.fetched(topic.name, entry["records"])

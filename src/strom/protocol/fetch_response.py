"""Fetch responses (API 1, v4-v17) written as a list of buffers, the records not joined.

A fetch answer is almost all record batches read from segment files. Built as a kio
entity and written by kio's writer, every byte of them was copied twice more (into the
writer's buffer, then out of it); here the fixed fields are packed with ``struct`` and
each partition's records stay the buffer the log read, so the connection hands the kernel
a list of buffers (``transport.writelines``). The bytes are exactly what kio writes for
the same values (``tests/unit/protocol/test_fetch_response.py`` checks every version).

Input is what the Fetch handler builds for kio (the dicts ``schema.build`` takes):
topics ``{"topic" | "topic_id", "partitions"}`` and partitions with
``partition_index, error_code, high_watermark, last_stable_offset, log_start_offset,
aborted_transactions, preferred_read_replica, records`` and, optionally,
``current_leader`` (``{"leader_id", "leader_epoch"}``) and ``diverging_epoch``
(``{"epoch", "end_offset"}``).

Layout by version (Kafka's ``FetchResponse.json``)::

    response   throttle_time_ms i32, [v7+ error_code i16, session_id i32], responses[]
               [v16+ tagged 0: node_endpoints, written only when there are some]
    topic      topic string (v13+: topic_id uuid), partitions[]
    partition  partition_index i32, error_code i16, high_watermark i64,
               last_stable_offset i64, [v5+ log_start_offset i64],
               aborted_transactions[]? (producer_id i64, first_offset i64),
               [v11+ preferred_read_replica i32], records?
               [v12+ tagged 0: diverging_epoch, 1: current_leader, when not the default]

From v12 on (flexible versions) strings, arrays and records carry compact lengths and
every structure ends with its tagged fields.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from strom.protocol.metadata_response import _uvarint

Buffer = bytes | bytearray | memoryview
INLINE_RECORDS = 1024  # smaller record sets are copied into the fixed fields' buffer
_FLEXIBLE_FROM = 12
_TOPIC_ID_FROM = 13
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_HEAD_V4 = struct.Struct(">i")  # throttle_time_ms
_HEAD_V7 = struct.Struct(">ihi")  # throttle_time_ms, error_code, session_id
_PARTITION_V4 = struct.Struct(">ihqq")  # index, error, high watermark, last stable offset
_PARTITION_V5 = struct.Struct(">ihqqq")  # ... log start offset
_ABORTED = struct.Struct(">qq")
_EPOCH_END = struct.Struct(">iq")  # diverging_epoch: epoch, end_offset
_LEADER = struct.Struct(">ii")  # current_leader: leader_id, leader_epoch
_NO_LEADER = {"leader_id": -1, "leader_epoch": -1}
_NO_DIVERGENCE = {"epoch": -1, "end_offset": -1}


class _Parts:
    """Fixed fields accumulate in one bytearray; a large record set ends it and is kept
    as its own buffer."""

    __slots__ = ("head", "parts")

    def __init__(self) -> None:
        self.head = bytearray()
        self.parts: list[Buffer] = []

    def records(self, data: Buffer) -> None:
        if len(data) < INLINE_RECORDS:
            self.head += data
            return
        self.parts += (self.head, data)
        self.head = bytearray()

    def done(self) -> list[Buffer]:
        self.parts.append(self.head)
        return self.parts


def encode(version: int, responses: Sequence[Mapping[str, Any]], *, error_code: int = 0,
           session_id: int = 0, throttle_time_ms: int = 0) -> tuple[list[Buffer], list[int]]:
    """The response body as buffers (their join is kio's encoding) and its non-zero
    error codes, for the broker's metrics."""
    flexible = version >= _FLEXIBLE_FROM
    out = _Parts()
    if version >= 7:
        out.head += _HEAD_V7.pack(throttle_time_ms, error_code, session_id)
    else:
        out.head += _HEAD_V4.pack(throttle_time_ms)
    errors = [error_code] if error_code else []
    _length(out.head, len(responses), flexible)
    for topic in responses:
        _topic(out, version, flexible, topic, errors)
    if flexible:
        out.head += b"\0"  # no node_endpoints: Strom sends no leader hints by endpoint
    return out.done(), errors


def _length(head: bytearray, count: int, flexible: bool) -> None:
    head += _uvarint(count + 1) if flexible else _I32.pack(count)


def _string(head: bytearray, value: str, flexible: bool) -> None:
    data = value.encode()
    head += _uvarint(len(data) + 1) if flexible else _I16.pack(len(data))
    head += data


def _topic(out: _Parts, version: int, flexible: bool, topic: Mapping[str, Any],
           errors: list[int]) -> None:
    if version >= _TOPIC_ID_FROM:
        topic_id = topic.get("topic_id")
        out.head += topic_id.bytes if isinstance(topic_id, uuid.UUID) else bytes(16)
    else:
        _string(out.head, topic.get("topic") or "", flexible)
    partitions = topic["partitions"]
    _length(out.head, len(partitions), flexible)
    for partition in partitions:
        _partition(out, version, flexible, partition, errors)
    if flexible:
        out.head += b"\0"


def _partition(out: _Parts, version: int, flexible: bool, p: Mapping[str, Any],
               errors: list[int]) -> None:
    error = int(p["error_code"])
    if error:
        errors.append(error)
    fixed = (int(p["partition_index"]), error, int(p["high_watermark"]),
             int(p.get("last_stable_offset", -1)))
    head = out.head
    if version >= 5:
        head += _PARTITION_V5.pack(*fixed, int(p.get("log_start_offset", -1)))
    else:
        head += _PARTITION_V4.pack(*fixed)
    _aborted(head, p.get("aborted_transactions"), flexible)
    if version >= 11:
        head += _I32.pack(int(p.get("preferred_read_replica", -1)))
    records = p.get("records")
    if records is None:
        head += b"\0" if flexible else b"\xff\xff\xff\xff"
    else:
        head += _uvarint(len(records) + 1) if flexible else _I32.pack(len(records))
        out.records(records)
    if flexible:
        _partition_tags(out.head, p)


def _aborted(head: bytearray, aborted: Sequence[Mapping[str, int]] | None,
             flexible: bool) -> None:
    if aborted is None:
        head += b"\0" if flexible else b"\xff\xff\xff\xff"
        return
    _length(head, len(aborted), flexible)
    for txn in aborted:
        head += _ABORTED.pack(int(txn["producer_id"]), int(txn["first_offset"]))
        if flexible:
            head += b"\0"


def _partition_tags(head: bytearray, p: Mapping[str, Any]) -> None:
    """Tagged fields in tag order, each only when it differs from its default (as kio
    writes them): 0 diverging_epoch, 1 current_leader."""
    tags: list[bytes] = []
    diverging = p.get("diverging_epoch") or _NO_DIVERGENCE
    if (diverging["epoch"], diverging["end_offset"]) != (-1, -1):
        body = _EPOCH_END.pack(int(diverging["epoch"]), int(diverging["end_offset"])) + b"\0"
        tags.append(b"\0" + _uvarint(len(body)) + body)
    leader = p.get("current_leader") or _NO_LEADER
    if (leader["leader_id"], leader["leader_epoch"]) != (-1, -1):
        body = _LEADER.pack(int(leader["leader_id"]), int(leader["leader_epoch"])) + b"\0"
        tags.append(b"\1" + _uvarint(len(body)) + body)
    head += _uvarint(len(tags))
    for tag in tags:
        head += tag

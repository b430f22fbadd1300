"""Fetch responses written as buffers (`strom.protocol.fetch_response`): the join of the
buffers is byte for byte what kio writes for the same values, every version the broker
serves, and a large record set is handed on as the very object the log read."""

from __future__ import annotations

import io
import random
import uuid
from typing import Any

import pytest
from kio.serial import entity_writer

from strom.protocol import apis, fetch_response, framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build

VERSIONS = range(4, 18)
TRIALS = 60


def _kio(version: int, responses: list[dict[str, Any]], error_code: int = 0,
         session_id: int = 0) -> bytes:
    response_type = apis.response_type(ApiKey.FETCH, version)
    entity = build(response_type, {"throttle_time": 0, "error_code": error_code,
                                   "session_id": session_id, "responses": responses})
    out = io.BytesIO()
    entity_writer(response_type)(out, entity)
    return out.getvalue()


def _partition(rng: random.Random, index: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "partition_index": index,
        "error_code": rng.choice([0, 0, 1, 3, 6, 56]),
        "high_watermark": rng.randrange(-1, 2**40),
        "last_stable_offset": rng.randrange(-1, 2**40),
        "log_start_offset": rng.randrange(-1, 2**40),
        "records": rng.choice([b"", None, rng.randbytes(rng.randrange(1, 3000))]),
        "aborted_transactions": rng.choice([None, [], [
            {"producer_id": rng.randrange(2**40), "first_offset": rng.randrange(2**40)}
            for _ in range(rng.randrange(1, 4))]]),
        "preferred_read_replica": -1,
    }
    if rng.random() < 0.3:
        entry["current_leader"] = {"leader_id": rng.randrange(-1, 4),
                                   "leader_epoch": rng.randrange(-1, 4)}
    if rng.random() < 0.2:
        entry["diverging_epoch"] = {"epoch": rng.randrange(-1, 4),
                                    "end_offset": rng.randrange(-1, 4)}
    return entry


def _responses(rng: random.Random) -> list[dict[str, Any]]:
    return [{"topic": rng.choice(["t", "ünïcode", "x" * 249]),
             "topic_id": rng.choice([uuid.uuid4(), None]),
             "partitions": [_partition(rng, i) for i in range(rng.randrange(0, 4))]}
            for _ in range(rng.randrange(0, 3))]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_writes_what_kio_writes(version: int) -> None:
    rng = random.Random(version)
    for _ in range(TRIALS):
        responses = _responses(rng)
        error_code, session_id = rng.choice([0, 0, 31]), rng.choice([0, 7])
        parts, errors = fetch_response.encode(version, responses, error_code=error_code,
                                              session_id=session_id)
        assert b"".join(parts) == _kio(version, responses, error_code, session_id)
        expected = [error_code] if error_code else []
        expected += [p["error_code"] for t in responses for p in t["partitions"]
                     if p["error_code"]]
        assert errors == expected


def test_large_record_sets_are_the_logs_own_buffers_and_small_ones_are_inlined() -> None:
    big, small = bytes(64 * 1024), b"tiny batch"
    responses = [{"topic": "t", "partitions": [
        {"partition_index": i, "error_code": 0, "high_watermark": 9, "last_stable_offset": 9,
         "log_start_offset": 0, "records": records, "aborted_transactions": None,
         "preferred_read_replica": -1}
        for i, records in enumerate([big, small, big])]}]
    parts, _ = fetch_response.encode(12, responses)
    assert sum(part is big for part in parts) == 2
    assert not any(part is small for part in parts)
    assert len(parts) == 5  # fields, big, fields + small + fields, big, tail


def test_response_buffers_join_to_the_encoded_frame() -> None:
    body = framing.EncodedBody(*fetch_response.encode(13, [{"topic_id": uuid.uuid4(), "partitions": [
        {"partition_index": 0, "error_code": 0, "high_watermark": 1, "last_stable_offset": 1,
         "log_start_offset": 0, "records": bytes(5000), "aborted_transactions": None,
         "preferred_read_replica": -1}]}]))
    buffers = framing.response_buffers(42, ApiKey.FETCH, 13, body)
    assert b"".join(buffers) == framing.encode_response(42, ApiKey.FETCH, 13, body)
    assert buffers[2] is body.parts[1]  # header, fields, records: never copied

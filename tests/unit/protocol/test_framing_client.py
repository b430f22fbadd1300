"""The client half of the codec (`encode_request`, `decode_response`) against the server
half (`decode_request`, `encode_response`), for the APIs a broker sends to another."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.protocol import apis, framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build

# (api key, version, request fields, response fields): what strom.broker.replication.peer sends.
PEER_CALLS: list[tuple[ApiKey, int, dict[str, Any], dict[str, Any]]] = [
    (ApiKey.FETCH, 12,
     {"replica_id": 2, "max_wait": 500, "min_bytes": 1, "max_bytes": 1 << 20, "session_id": 0,
      "session_epoch": -1, "topics": [{"topic": "t", "partitions": [{
          "partition": 0, "current_leader_epoch": 3, "fetch_offset": 10,
          "last_fetched_epoch": 2, "log_start_offset": 0, "partition_max_bytes": 1024}]}]},
     {"error_code": ErrorCode.none, "session_id": 0, "responses": [{"topic": "t", "partitions": [{
         "partition_index": 0, "error_code": ErrorCode.none, "high_watermark": 12,
         "last_stable_offset": 12, "log_start_offset": 0, "records": b"\x00" * 7}]}]}),
    (ApiKey.OFFSET_FOR_LEADER_EPOCH, 4,
     {"replica_id": 2, "topics": [{"topic": "t", "partitions": [
         {"partition": 1, "current_leader_epoch": 5, "leader_epoch": 4}]}]},
     {"topics": [{"topic": "t", "partitions": [
         {"partition": 1, "error_code": ErrorCode.fenced_leader_epoch, "leader_epoch": 4,
          "end_offset": 99}]}]}),
    (ApiKey.API_VERSIONS, 0, {}, {"error_code": ErrorCode.none, "api_keys": [
        {"api_key": 0, "min_version": 0, "max_version": 13}]}),
    (ApiKey.METADATA, 1, {"topics": [{"name": "t"}]}, {"brokers": [], "topics": []}),
]


@pytest.mark.parametrize(("api_key", "version", "fields", "_"), PEER_CALLS,
                         ids=lambda v: str(v) if isinstance(v, (int, ApiKey)) else "")
def test_a_request_written_by_the_client_half_is_read_back_by_the_server_half(
        api_key: ApiKey, version: int, fields: dict[str, Any], _: object) -> None:
    spec = apis.request_spec(api_key, version)
    assert spec is not None
    body = build(spec.request_type, **fields)
    frame = framing.encode_request(41, api_key, version, body, "strom-broker-2")
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    decoded = framing.decode_request(frame[4:])
    assert (decoded.api_key, decoded.api_version, decoded.correlation_id) == (api_key, version, 41)
    assert decoded.client_id == "strom-broker-2"
    assert decoded.body == body


@pytest.mark.parametrize(("api_key", "version", "_", "fields"), PEER_CALLS,
                         ids=lambda v: str(v) if isinstance(v, (int, ApiKey)) else "")
def test_a_response_written_by_the_server_half_is_read_back_by_the_client_half(
        api_key: ApiKey, version: int, _: object, fields: dict[str, Any]) -> None:
    body = build(apis.response_type(api_key, version), **fields)
    frame = framing.encode_response(7, api_key, version, body)
    decoded = framing.decode_response(frame[4:], api_key, version)
    assert decoded.correlation_id == 7
    assert decoded.body == body


def test_a_version_without_a_schema_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(LookupError):
        framing.encode_request(1, ApiKey.FETCH, 999, object(), None)


def test_api_keys_are_kafkas_and_cover_every_schema_kio_knows() -> None:
    from kio.schema.index import api_key_map

    assert {int(k): k.name.lower() for k in ApiKey} == dict(api_key_map)
    assert ApiKey.PRODUCE == 0 and ApiKey.API_VERSIONS == 18 and ApiKey.ELECT_LEADERS == 43

"""ApiVersions without a socket: the answer is the handler registry, nothing else.

The context gives the handler no face at all (every one is `Unused`): ApiVersions must
not need the broker.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from strom.broker.handlers import api_versions, list_offsets, offsets, topics
from strom.broker.network import dispatch
from support.handler_context import broker_config, call, context, request

API_VERSIONS, LIST_OFFSETS, OFFSET_FETCH, CREATE_TOPICS = 18, 2, 9, 19
CONSUMER_GROUP_HEARTBEAT, SHARE_GROUP_HEARTBEAT = 68, 76
SHARE_CLIENT_APIS = {76, 77, 78, 79}  # registered by api_versions' own import
REGISTERED = (list_offsets, offsets, topics)  # importing a handler module registers it


def _ranges(response: object) -> dict[int, tuple[int, int]]:
    return {int(k.api_key): (int(k.min_version), int(k.max_version))
            for k in response.api_keys}  # type: ignore[attr-defined]


def test_every_version_answers_the_registry_without_touching_the_broker() -> None:
    for version in range(4):
        ctx = context(API_VERSIONS, version)
        response = call(api_versions.handle, ctx, request(API_VERSIONS, version))
        assert response.error_code == ErrorCode.none
        ranges = _ranges(response)
        # KIP-848 and KIP-932 by default, as Kafka 4.4 serves both
        assert ranges == {key: (lo, hi) for key, lo, hi in dispatch.advertised()}
        assert SHARE_GROUP_HEARTBEAT in ranges
        assert ranges[API_VERSIONS] == (0, 4)
        assert ranges[LIST_OFFSETS][1] >= 7 and ranges[OFFSET_FETCH][1] >= 8
        assert CREATE_TOPICS in ranges


def test_the_answer_is_in_key_order() -> None:
    response = call(api_versions.handle, context(API_VERSIONS, 3), request(API_VERSIONS, 3))
    keys = [int(k.api_key) for k in response.api_keys]
    assert keys == sorted(keys)


def test_an_unknown_version_is_answered_as_v0_with_unsupported_version() -> None:
    """KIP-511: the client learns our ranges from a v0 body and asks again."""
    frame = api_versions.unsupported_version_response(41)
    size, correlation_id = int.from_bytes(frame[:4], "big"), int.from_bytes(frame[4:8], "big")
    assert size == len(frame) - 4 and correlation_id == 41
    error_code = int.from_bytes(frame[8:10], "big", signed=True)
    assert error_code == ErrorCode.unsupported_version


def test_share_version_zero_turns_share_groups_off() -> None:
    """`strom.share.version=0`: no KIP-932 API listed and no finalized share.version."""
    config = broker_config(**{"strom.share.version": "0"})
    ctx = context(API_VERSIONS, 3, config=config)
    response = call(api_versions.handle, ctx, request(API_VERSIONS, 3))
    ranges = _ranges(response)
    assert not api_versions.SHARE_APIS & ranges.keys()
    assert CONSUMER_GROUP_HEARTBEAT in ranges
    assert "share.version" not in {f.name for f in response.finalized_features}


def test_share_version_is_a_finalized_feature_by_default() -> None:
    """As on a new Kafka 4.4 cluster: share.version finalized, the KIP-932 APIs listed;
    Kafka 4.0's switch (`share` in the protocols) turns them on at version 0 too."""
    response = call(api_versions.handle, context(API_VERSIONS, 3), request(API_VERSIONS, 3))
    finalized = {f.name: int(f.max_version_level) for f in response.finalized_features}
    assert finalized["share.version"] == 1
    assert _ranges(response).keys() >= SHARE_CLIENT_APIS
    config = broker_config(**{"strom.share.version": "0",
                              "group.coordinator.rebalance.protocols": "classic,share"})
    ranges = _ranges(call(api_versions.handle, context(API_VERSIONS, 3, config=config),
                          request(API_VERSIONS, 3)))
    assert ranges.keys() >= SHARE_CLIENT_APIS

"""The golden exchanges (tests/golden/<client>-<version>/, see support/golden.py) through
the codec, no broker: every request real clients sent decodes with
`strom.protocol.framing` and kio writes it back byte for byte, and every response Strom
gave decodes with kio, leaves no byte unread and is written back byte for byte.

A field kio does not model (an unknown tagged field, a newer schema) would make a
request lose bytes on the way through, and a response Strom writes that kio reads
differently would show up here first. The recorded sessions themselves must cover the
APIs a client speaks in a produce/consume/group/admin session.
"""

from __future__ import annotations

import struct

import pytest

from strom.protocol import apis
from support.golden import (
    LIBRDKAFKA_METADATA_TAIL,
    Exchange,
    all_exchanges,
    correlation_id_of_request,
    load_sessions,
    manifest,
    request_round_trip,
    response_round_trip,
)

METADATA, API_VERSIONS, UNSUPPORTED_VERSION = 3, 18, 35
EXCHANGES = all_exchanges()
# what every recorded session must contain; kcat has no admin API, so no CreateTopics
REQUIRED = {"api_versions", "metadata", "produce", "fetch", "list_offsets", "find_coordinator",
            "join_group", "sync_group", "offset_commit", "create_topics"}
NOT_SENT_BY = {"kcat": {"create_topics"}}


def test_every_client_session_covers_the_apis_of_a_session() -> None:
    sessions = load_sessions()
    recorded = manifest()["sessions"]
    assert set(sessions) == set(recorded), "manifest.json and the directories disagree"
    assert {entry["client"] for entry in recorded.values()} == {
        "confluent-kafka", "kafka-python", "kcat", "java"}
    for name, exchanges in sessions.items():
        client = recorded[name]["client"]
        sent = {apis.api_name(e.api_key) for e in exchanges}
        missing = REQUIRED - NOT_SENT_BY.get(client, set()) - sent
        assert not missing, f"{name} recorded no {sorted(missing)}"


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: e.id)
def test_a_recorded_request_round_trips_through_framing_and_kio(exchange: Exchange) -> None:
    trip = request_round_trip(exchange.request)
    assert trip.written == trip.original[:len(trip.written)], (
        f"kio wrote {len(trip.written)} bytes that differ from the client's "
        f"{len(trip.original)}")
    if trip.body is None:
        # a version newer than kio's schemas: only ApiVersions may come so (KIP-511), and
        # Strom answers it as v0 with UNSUPPORTED_VERSION and the versions it serves
        assert exchange.api_key == API_VERSIONS, "a request kio cannot read"
        assert struct.unpack_from(">h", exchange.response, 8)[0] == UNSUPPORTED_VERSION
    elif trip.tail:
        # librdkafka's all-topics Metadata: a count placeholder's last bytes, which Kafka
        # ignores too; nothing else may be left over
        assert exchange.api_key == METADATA and exchange.api_version >= 9, trip.tail
        assert trip.body.topics is None and len(trip.tail) == LIBRDKAFKA_METADATA_TAIL
        assert exchange.client.startswith(("confluent-kafka", "kcat"))


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: e.id)
def test_a_recorded_response_round_trips_through_kio(exchange: Exchange) -> None:
    decoded, rewritten = response_round_trip(exchange.response, exchange.api_key,
                                             exchange.api_version)
    assert decoded.correlation_id == correlation_id_of_request(exchange.request)
    assert decoded.unread == 0, f"{decoded.unread} bytes of Strom's answer kio did not read"
    assert rewritten == exchange.response, "kio writes Strom's answer back differently"

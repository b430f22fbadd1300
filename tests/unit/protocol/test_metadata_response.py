"""The hand-written Metadata response writer against kio's writer, every version."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strom.protocol import apis, framing
from strom.protocol.framing import EncodedBody
from strom.protocol.metadata_response import BrokerRow, PartitionRow, writer
from strom.protocol.schema import build

VERSIONS = range(14)
TOPIC_ID = uuid.UUID("6737fe04-43f5-4c78-beef-1727430d2d40")


def kio_bytes(version: int, brokers: list[BrokerRow], cluster_id: str | None,
              controller_id: int, topics: list[dict[str, Any]]) -> bytes:
    body = build(
        apis.response_type(3, version),
        brokers=[b._asdict() for b in brokers],
        cluster_id=cluster_id,
        controller_id=controller_id,
        topics=[{**t, "partitions": [p._asdict() for p in t["partitions"]]} for t in topics],
        cluster_authorized_operations=-(2**31),
    )
    return framing.encode_response(42, 3, version, body)


def fast_bytes(version: int, brokers: list[BrokerRow], cluster_id: str | None,
               controller_id: int, topics: list[dict[str, Any]]) -> bytes:
    w = writer(version)
    entries = [w.topic(t["error_code"], t["name"], t["topic_id"], t.get("is_internal", False),
                       w.partitions(t["partitions"]),
                       t.get("topic_authorized_operations", -(2**31))) for t in topics]
    body = EncodedBody(w.body(brokers, cluster_id, controller_id, entries))
    return framing.encode_response(42, 3, version, body)


BROKERS = [BrokerRow(1, "broker-1.example", 9092, None), BrokerRow(2, "b2", 19092, "rack-ä")]
TOPICS: list[dict[str, Any]] = [
    {"error_code": 0, "name": "events", "topic_id": TOPIC_ID, "is_internal": False,
     "partitions": [PartitionRow(0, 0, 1, 3, (1, 2), (1, 2), ()),
                    PartitionRow(5, 1, -1, 7, (3, 2), (2,), (3,)),  # leader not available
                    PartitionRow(0, 2, 2, 0, (2, 1, 3), (2, 1), (3,))]},
    {"error_code": 0, "name": "__consumer_offsets", "topic_id": uuid.uuid4(),
     "is_internal": True, "partitions": [PartitionRow(0, i, 1, 0, (1,), (1,), ())
                                         for i in range(50)]},
    {"error_code": 3, "name": "missing", "topic_id": None, "partitions": []},
    {"error_code": 0, "name": "ünïcode-topic", "topic_id": uuid.uuid4(), "partitions": [],
     "topic_authorized_operations": 0x5F8},
]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_encodes_as_kio_does(version: int) -> None:
    assert fast_bytes(version, BROKERS, "cluster-xyz", 1, TOPICS) == kio_bytes(
        version, BROKERS, "cluster-xyz", 1, TOPICS)


@pytest.mark.parametrize("version", VERSIONS)
def test_no_brokers_no_topics_and_a_null_cluster_id(version: int) -> None:
    assert fast_bytes(version, [], None, -1, []) == kio_bytes(version, [], None, -1, [])


@pytest.mark.parametrize("version", [12, 13])
def test_unknown_topic_id_has_a_null_name_from_v12(version: int) -> None:
    topics = [{"error_code": 100, "name": None, "topic_id": TOPIC_ID, "partitions": []}]
    assert fast_bytes(version, BROKERS, "c", 1, topics) == kio_bytes(version, BROKERS, "c", 1,
                                                                     topics)


@pytest.mark.parametrize("version", [10, 11])
def test_a_null_name_before_v12_is_refused_like_kio(version: int) -> None:
    topics = [{"error_code": 100, "name": None, "topic_id": TOPIC_ID, "partitions": []}]
    with pytest.raises(TypeError):
        kio_bytes(version, BROKERS, "c", 1, topics)
    with pytest.raises(TypeError):
        fast_bytes(version, BROKERS, "c", 1, topics)


def test_long_arrays_and_strings_use_multi_byte_compact_lengths() -> None:
    replicas = tuple(range(200))  # a compact length of 201 takes two varint bytes
    topics = [{"error_code": 0, "name": "t" * 300, "topic_id": TOPIC_ID,
               "partitions": [PartitionRow(0, 0, 0, 1, replicas, replicas[:130], replicas[5:])]}]
    for version in VERSIONS:
        assert fast_bytes(version, BROKERS, "c", 1, topics) == kio_bytes(version, BROKERS, "c",
                                                                         1, topics)


ids = st.integers(min_value=-1, max_value=2**31 - 1)
rows = st.builds(PartitionRow, st.sampled_from([0, 5, 9, 56]), st.integers(0, 10_000), ids,
                 st.integers(-1, 2**31 - 1), st.lists(ids, max_size=5).map(tuple),
                 st.lists(ids, max_size=5).map(tuple), st.lists(ids, max_size=3).map(tuple))
topics = st.builds(
    lambda name, tid, internal, parts, ops: {
        "error_code": 0, "name": name, "topic_id": tid, "is_internal": internal,
        "partitions": parts, "topic_authorized_operations": ops},
    st.text(min_size=1, max_size=20), st.none() | st.uuids(), st.booleans(),
    st.lists(rows, max_size=8), st.integers(-(2**31), 2**31 - 1))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(VERSIONS), st.lists(topics, max_size=4), st.none() | st.text(max_size=30))
def test_generated_responses_match_kio(version: int, generated: list[dict[str, Any]],
                                       cluster_id: str | None) -> None:
    assert fast_bytes(version, BROKERS, cluster_id, 2, generated) == kio_bytes(
        version, BROKERS, cluster_id, 2, generated)

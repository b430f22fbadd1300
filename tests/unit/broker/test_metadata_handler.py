"""The Metadata handler's cached fast path against kio's encoder, without sockets.

The reference below is the handler as it was before the fast path (entries built as
dicts, fitted by ``schema.build`` and written by kio): for every version the bytes on
the wire must not change.
"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers import metadata
from strom.broker.observability.metrics import BrokerMetrics
from strom.cluster.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo
from strom.protocol import apis, framing
from strom.protocol.schema import build

VERSIONS = range(14)
UNKNOWN_OPS = -(2**31)


def _topic(name: str, partitions: dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]],
           internal: bool = False) -> TopicInfo:
    return TopicInfo(name, uuid.uuid4(), {
        i: PartitionInfo(i, leader, 4 + i, replicas, isr)
        for i, (leader, replicas, isr) in partitions.items()}, internal=internal)


EVENTS = _topic("events", {0: (1, (1, 2), (1, 2)), 1: (3, (3, 1), (3,)),  # 3 is dead
                           2: (2, (2, 3, 1), (2, 1)), 3: (-1, (3,), ())})
OFFSETS = _topic("__consumer_offsets", {i: (1, (1,), (1,)) for i in range(10)}, internal=True)
WIDE = _topic("wide", {i: (1 + i % 2, (1 + i % 2, 2 - i % 2), (1 + i % 2,)) for i in range(300)})
BROKERS = {1: BrokerInfo(1, "h1", 9092), 2: BrokerInfo(2, "h2", 9093, "r2")}
IMAGE = MetadataImage("cluster-1", 2, BROKERS, {t.name: t for t in (WIDE, EVENTS, OFFSETS)})


def _fake_ctx(image: MetadataImage, version: int, offline: set[tuple[str, int]] = frozenset()
              ) -> RequestContext:
    def replica(topic: str, index: int) -> Any:
        failed = "disk gone" if (topic, index) in offline else None
        return SimpleNamespace(log=SimpleNamespace(offline=failed))

    services = SimpleNamespace(
        broker_id=1,
        metadata=SimpleNamespace(image=lambda: image),
        config=SimpleNamespace(get_bool=lambda name: False),
        partitions=SimpleNamespace(get=replica, offline_dirs={"/d"} if offline else set()),
    )
    return RequestContext(services, 3, version, 7, "test", "peer")  # type: ignore[arg-type]


def _request(version: int, names: list[str] | None = None,
             ids: list[uuid.UUID] | None = None) -> Any:
    if names is None and ids is None:
        topics = [] if version == 0 else None
    else:
        topics = [{"name": n} for n in names or []] + [{"name": None, "topic_id": i}
                                                        for i in ids or []]
    return build(apis.request_spec(3, version).request_type, topics=topics,
                 allow_auto_topic_creation=False)


def _answer(ctx: RequestContext, request: Any) -> bytes:
    body = asyncio.run(metadata.handle(ctx, request))
    return framing.encode_response(7, 3, ctx.api_version, body)


# --- the reference: the pre-fast-path handler ----------------------------------------------


def _reference_entry(topic: TopicInfo, image: MetadataImage, offline: set[tuple[str, int]]
                     ) -> dict[str, Any]:
    partitions = []
    for p in sorted(topic.partitions.values(), key=lambda p: p.partition):
        live = p.leader in image.brokers
        entry = {"error_code": ErrorCode.none if live else ErrorCode.leader_not_available,
                 "partition_index": p.partition, "leader_id": p.leader if live else -1,
                 "leader_epoch": p.leader_epoch, "replica_nodes": list(p.replicas),
                 "isr_nodes": list(p.isr),
                 "offline_replicas": [r for r in p.replicas if r not in image.brokers]}
        if (topic.name, p.partition) in offline:
            if 1 not in entry["offline_replicas"]:
                entry["offline_replicas"].append(1)
            if entry["leader_id"] == 1:
                entry.update(leader_id=-1, error_code=ErrorCode.leader_not_available)
        partitions.append(entry)
    return {"error_code": ErrorCode.none, "name": topic.name, "topic_id": topic.topic_id,
            "is_internal": topic.internal, "partitions": partitions,
            "topic_authorized_operations": UNKNOWN_OPS}


def _reference(image: MetadataImage, version: int, entries: list[dict[str, Any]]) -> bytes:
    body = build(apis.response_type(3, version),
                 brokers=[{"node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
                          for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)],
                 cluster_id=image.cluster_id, controller_id=image.controller_id,
                 topics=entries, cluster_authorized_operations=UNKNOWN_OPS)
    return framing.encode_response(7, 3, version, body)


def _reference_all(image: MetadataImage, version: int,
                   offline: set[tuple[str, int]] = frozenset()) -> bytes:
    entries = [_reference_entry(t, image, offline)
               for t in sorted(image.topics.values(), key=lambda t: t.name)]
    return _reference(image, version, entries)


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_all_topics_as_kio_encodes_them(version: int) -> None:
    ctx = _fake_ctx(IMAGE, version)
    expected = _reference_all(IMAGE, version)
    assert _answer(ctx, _request(version)) == expected
    assert _answer(ctx, _request(version)) == expected  # from the cache this time


@pytest.mark.parametrize("version", VERSIONS)
def test_named_and_unknown_topics(version: int) -> None:
    ctx = _fake_ctx(IMAGE, version)
    entries = [_reference_entry(EVENTS, IMAGE, set()),
               {"error_code": ErrorCode.unknown_topic_or_partition, "name": "nope",
                "topic_id": None, "partitions": []},
               _reference_entry(OFFSETS, IMAGE, set())]
    request = _request(version, ["events", "nope", "__consumer_offsets"])
    assert _answer(ctx, request) == _reference(IMAGE, version, entries)


@pytest.mark.parametrize("version", [12, 13])
def test_topics_by_id_known_and_unknown(version: int) -> None:
    ctx = _fake_ctx(IMAGE, version)
    stranger = uuid.uuid4()
    entries = [_reference_entry(WIDE, IMAGE, set()),
               {"error_code": ErrorCode.unknown_topic_id, "name": None, "topic_id": stranger,
                "partitions": []}]
    request = _request(version, ids=[WIDE.topic_id, stranger])
    assert _answer(ctx, request) == _reference(IMAGE, version, entries)


@pytest.mark.parametrize("version", VERSIONS)
def test_replicas_in_a_failed_log_dir_here_are_offline_and_never_cached(version: int) -> None:
    offline = {("events", 0), ("events", 1), ("wide", 3)}
    image = MetadataImage("c", 1, BROKERS, dict(IMAGE.topics))
    healthy = _answer(_fake_ctx(image, version), _request(version))  # fills the cache
    assert _answer(_fake_ctx(image, version, offline), _request(version)) == _reference_all(
        image, version, offline)
    assert _answer(_fake_ctx(image, version), _request(version)) == healthy


def test_a_broker_leaving_changes_the_cached_entries() -> None:
    before = _answer(_fake_ctx(IMAGE, 9), _request(9))
    fewer = MetadataImage("cluster-1", 2, {1: BROKERS[1]}, dict(IMAGE.topics))
    after = _answer(_fake_ctx(fewer, 9), _request(9))
    assert after != before
    assert after == _reference_all(fewer, 9)
    assert _answer(_fake_ctx(IMAGE, 9), _request(9)) == before


def test_the_response_lists_its_errors_for_the_metrics() -> None:
    ctx = _fake_ctx(IMAGE, 1)
    body = asyncio.run(metadata.handle(ctx, _request(1, ["events", "nope"])))
    assert sorted(body.errors) == sorted([ErrorCode.leader_not_available] * 2
                                         + [ErrorCode.unknown_topic_or_partition])
    metrics = BrokerMetrics(1)
    metrics.request_done(3, 0.001, body)
    assert metrics.apis[3].errors == {"LEADER_NOT_AVAILABLE": 2, "UNKNOWN_TOPIC_OR_PARTITION": 1}


"""CreateTopics and CreatePartitions answer once the metadata is written, before the
partitions' logs exist (Kafka's controller commits the records, answers, and each broker
creates the logs when it applies them). Until a log exists, Produce and Fetch answer a
retriable error; once it exists, both work.

The real `TopicAdmin`, `ReplicaManager`, `LocalMetadataStore` and handlers; the only seam
is a gate in front of the builder's worker, which holds log creation back so that the
window between the answer and the logs is there to look at."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader

from strom.broker.handlers import fetch, produce
from strom.broker.replication.replica_builder import Blueprint
from strom.broker.replication.replica_manager import ReplicaManager
from strom.broker.topic_admin import TopicAdmin, TopicSpec
from strom.cluster.image import BrokerInfo
from strom.cluster.local import LocalMetadataStore
from strom.protocol import apis
from support.handler_context import broker_config, context, request
from support.raw_client import record_batch

PRODUCE, FETCH = 0, 1
RETRIABLE = {ErrorCode.unknown_topic_or_partition, ErrorCode.not_leader_or_follower}
HANG_GUARD_S = 30  # only a hang guard: with the feature the create answers at once


class _NoFollowers:
    def follow(self, partition: object, leader_id: int) -> None:
        raise AssertionError("a single broker follows no one")

    def unfollow(self, key: tuple[str, int]) -> None:
        pass

    def stop(self) -> None:
        pass


class _Metrics:
    def produced(self, topic: str, size: int, records: int) -> None:
        pass

    def fetched(self, topic: str, records: Any, count: int | None = None) -> None:
        pass


class Node:
    """One broker's metadata store, replica manager and topic admin, with a gate that
    holds back log creation until `release`."""

    def __init__(self, tmp: Path) -> None:
        self.config = broker_config(tmp / "logs")
        from strom.storage import LogManager

        self.logs = LogManager([tmp / "logs"], broker_id=1, cluster_id="c")
        self.store = LocalMetadataStore(tmp / "meta.json", BrokerInfo(1, "localhost", 9092), "c")
        self.replicas = ReplicaManager(self.config, self.logs,
                                       lambda: time.time_ns() // 1_000_000, self.store,
                                       _NoFollowers())
        self.replicas.on_image(self.store.image())
        self.store.subscribe(self.replicas.on_image)
        self.admin = TopicAdmin(self.config, self.store, self.replicas)
        self.gate = threading.Event()
        builder = self.replicas.builder
        build = builder._build_chunk

        def gated(blueprints: Sequence[Blueprint], placed: Any) -> Any:
            self.gate.wait(HANG_GUARD_S)
            return build(blueprints, placed)

        builder._build_chunk = gated  # type: ignore[method-assign]

    async def settled(self) -> None:
        self.gate.set()
        while self.replicas._background:
            await asyncio.gather(*self.replicas._background)

    def close(self) -> None:
        self.gate.set()
        self.replicas.builder.close()
        self.logs.close()

    async def produce(self, topic: str, partition: int) -> tuple[ErrorCode, int]:
        body = request(PRODUCE, 9, transactional_id=None, acks=1, timeout_ms=1000, topic_data=[
            {"name": topic, "partition_data": [
                {"index": partition, "records": record_batch([b"v"])}]}])
        ctx = context(PRODUCE, 9, config=self.config, metadata=self.store,
                      partitions=self.replicas, metrics=_Metrics())
        [entry] = (await produce.handle(ctx, body)).responses[0].partition_responses
        return ErrorCode(int(entry.error_code)), int(entry.base_offset)

    async def fetch(self, topic: str, partition: int) -> tuple[ErrorCode, bytes]:
        body = request(FETCH, 12, replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20,
                       isolation_level=0, session_id=0, session_epoch=-1, topics=[
                           {"topic": topic, "partitions": [
                               {"partition": partition, "current_leader_epoch": -1,
                                "fetch_offset": 0, "last_fetched_epoch": -1,
                                "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
                       forgotten_topics_data=[], rack_id="")
        ctx = context(FETCH, 12, config=self.config, metadata=self.store,
                      partitions=self.replicas, metrics=_Metrics())
        answer = await fetch.handle(ctx, body)  # the body's bytes: read them back with kio
        response, _ = entity_reader(apis.response_type(FETCH, 12))(b"".join(answer.parts), 0)
        [entry] = response.responses[0].partitions
        return ErrorCode(int(entry.error_code)), bytes(entry.records or b"")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = Node(tmp_path)
    yield n
    n.close()


async def test_create_topics_answers_before_the_logs_and_clients_retry_until_they_exist(
        node: Node) -> None:
    spec = TopicSpec("big", 40, 1, {}, {})
    [plan] = await asyncio.wait_for(node.admin.create_topics([spec], False), HANG_GUARD_S)
    assert plan.error is None and plan.topic_id is not None
    topic = node.store.image().topics["big"]
    assert len(topic.partitions) == 40 and all(p.leader == 1 for p in topic.partitions.values())
    assert node.replicas.get("big", 39) is None, "the log was built before the answer"
    assert node.replicas.hosted_count() == 40  # the budget counts the partitions being built

    assert (await node.produce("big", 39))[0] in RETRIABLE
    assert (await node.fetch("big", 39))[0] in RETRIABLE

    await node.settled()
    assert await node.produce("big", 39) == (ErrorCode.none, 0)
    code, records = await node.fetch("big", 39)
    assert code == ErrorCode.none and records


async def test_create_partitions_answers_before_the_new_logs_exist(node: Node) -> None:
    await node.settled()
    [plan] = await node.admin.create_topics([TopicSpec("grow", 1, 1, {}, {})], False)
    assert plan.error is None and node.replicas.get("grow", 0) is not None
    node.gate.clear()
    await asyncio.wait_for(node.admin.add_partitions("grow", 41, None, False), HANG_GUARD_S)
    assert node.store.image().topics["grow"].partition_count == 41
    assert node.replicas.get("grow", 40) is None
    assert (await node.produce("grow", 40))[0] in RETRIABLE
    assert await node.produce("grow", 0) == (ErrorCode.none, 0)  # old partitions serve on

    await node.settled()
    assert await node.produce("grow", 40) == (ErrorCode.none, 0)


async def test_a_topic_deleted_before_its_logs_exist_leaves_no_files(node: Node) -> None:
    [plan] = await node.admin.create_topics([TopicSpec("brief", 20, 1, {}, {})], False)
    assert plan.error is None
    assert await node.admin.delete_topics(["brief"]) == {"brief": None}
    await node.settled()
    assert node.replicas.get("brief", 0) is None

    for removal in set(node.replicas.builder._deleting.values()):
        await asyncio.wrap_future(removal)  # the pool removes logs nobody wants any more
    assert not [p for d in node.logs.log_dirs for p in d.glob("brief-*")]

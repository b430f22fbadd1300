"""Partition creation and deletion off the event loop (ReplicaBuilder via ReplicaManager):
prepared partitions are adopted by the image, unprepared ones are built in the
background, deleted files go later, and a re-created partition never sees old data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from strom.broker.replication.replica_builder import Blueprint
from strom.broker.replication.replica_manager import ReplicaManager
from strom.cluster.image import BrokerInfo, MetadataImage
from strom.cluster.local import LocalMetadataStore, NewTopic
from strom.config.broker import BrokerConfig
from strom.storage import LogManager
from support.raw_client import record_batch


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _NoFollowers:
    """One broker leads everything: nothing is ever followed."""

    def follow(self, partition: object, leader_id: int) -> None:
        raise AssertionError("a single broker follows no one")

    def unfollow(self, key: tuple[str, int]) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[ReplicaManager, LocalMetadataStore]]:
    config = BrokerConfig({"log.dirs": str(tmp_path / "logs"), "node.id": "1",
                           "listeners": "PLAINTEXT://127.0.0.1:9092"})
    logs = LogManager([tmp_path / "logs"], broker_id=1, cluster_id="c")
    store = LocalMetadataStore(tmp_path / "meta.json", BrokerInfo(1, "localhost", 9092), "c")
    replicas = ReplicaManager(config, logs, _now_ms, store, _NoFollowers())
    replicas.on_image(store.image())  # the start
    store.subscribe(replicas.on_image)
    yield replicas, store
    replicas.builder.close()
    logs.close()


async def _settled(replicas: ReplicaManager) -> None:
    while replicas._background:
        await asyncio.gather(*replicas._background)


async def test_prepared_partitions_are_adopted_when_the_image_names_them(
        node: tuple[ReplicaManager, LocalMetadataStore]) -> None:
    replicas, store = node
    failed = await replicas.builder.prepare([Blueprint(("p", i), {}) for i in range(20)])
    assert failed == {}
    assert replicas.get("p", 0) is None  # not before the metadata says so
    topic = store.create_topics([NewTopic("p", {i: [1] for i in range(20)}, {})])["p"]
    assert not isinstance(topic, Exception)
    assert not replicas._background and not replicas.builder.prepared
    for i in range(20):
        partition = replicas.get("p", i)
        assert partition is not None and partition.is_leader
        assert partition.topic_id == topic.topic_id


async def test_many_unprepared_partitions_are_built_in_the_background(
        node: tuple[ReplicaManager, LocalMetadataStore]) -> None:
    replicas, store = node
    heard: list[MetadataImage] = []
    replicas.ready_listeners.append(heard.append)
    store.create_topics([NewTopic("bg", {i: [1] for i in range(40)}, {})])
    assert replicas.get("bg", 0) is None and len(replicas.builder.building) == 40
    await _settled(replicas)
    assert all(replicas.get("bg", i) is not None for i in range(40))
    assert not replicas.builder.building and heard


async def test_a_recreated_partition_waits_for_the_old_files_and_starts_empty(
        node: tuple[ReplicaManager, LocalMetadataStore]) -> None:
    replicas, store = node
    store.create_topics([NewTopic("again", {0: [1]}, {})])
    old = replicas.get("again", 0)
    assert old is not None
    assert old.append(record_batch([b"old"])).error == ErrorCode.none
    old_dir = old.log.dir
    store.delete_topics(["again"])
    assert replicas.get("again", 0) is None  # gone at once; files go in the pool
    failed = await replicas.builder.prepare([Blueprint(("again", 0), {})])
    assert failed == {}
    store.create_topics([NewTopic("again", {0: [1]}, {})])
    new = replicas.get("again", 0)
    assert new is not None and new is not old
    assert new.log.log_end_offset == 0 and new.log.dir == old_dir
    assert not [p for p in old_dir.parent.iterdir() if p.name.endswith("-delete")]


async def test_a_topic_recreated_while_its_logs_build_gets_the_new_configs(
        node: tuple[ReplicaManager, LocalMetadataStore]) -> None:
    replicas, store = node
    many = {i: [1] for i in range(20)}  # above INLINE_CREATE_MAX: built in the background
    store.create_topics([NewTopic("swap", many, {"retention.ms": "1000"})])
    assert len(replicas.builder.building) == 20
    store.delete_topics(["swap"])
    store.create_topics([NewTopic("swap", many, {"cleanup.policy": "compact",
                                                 "retention.ms": "5000"})])
    await _settled(replicas)
    for i in range(20):
        partition = replicas.get("swap", i)
        assert partition is not None
        assert partition.log.config.compact and partition.log.config.retention_ms == 5000

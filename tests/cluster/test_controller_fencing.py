"""Controller writes are fenced by the controller epoch, against a real ZooKeeper.

Winning the election increments `/controller_epoch`; every partition-state write the
controller makes is a multi-op that checks that znode's version. These tests run the
`ZooKeeperMetadataStore` and `Controller` of one broker in-process, supersede its epoch
from outside as a newer controller would, and make it act on its stale flag: ZooKeeper
must refuse the write and the topic's state must not change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from strom.cluster import zk_data as zd
from strom.cluster.controller import Controller
from strom.cluster.image import BrokerInfo, PartitionInfo, TopicInfo
from strom.cluster.store import ControllerMovedError
from strom.cluster.zookeeper import ZooKeeperMetadataStore
from support.cluster import ZooKeeperServer, wait_until

pytestmark = pytest.mark.cluster

TOPIC = "fenced"


@pytest.fixture
def chroot_connect(zookeeper: ZooKeeperServer) -> str:
    chroot = f"/strom-fence-{uuid.uuid4().hex[:10]}"
    root = KazooClient(hosts=zookeeper.connect, timeout=10)
    root.start(timeout=15)
    try:
        root.ensure_path(chroot)
    finally:
        root.stop()
        root.close()
    return f"{zookeeper.connect}{chroot}"


@pytest.fixture
def outside(chroot_connect: str) -> Iterator[KazooClient]:
    """A client of our own: the 'other controller' and the test's eyes on ZooKeeper."""
    client = KazooClient(hosts=chroot_connect, timeout=10)
    client.start(timeout=15)
    yield client
    client.stop()
    client.close()


@pytest.fixture
def store(chroot_connect: str) -> Iterator[ZooKeeperMetadataStore]:
    """Broker 1's store, started and elected controller (it is alone)."""
    loop = asyncio.new_event_loop()  # never run: images are read with store.image()
    zk = ZooKeeperMetadataStore(chroot_connect, BrokerInfo(1, "127.0.0.1", 9092), "fence-test",
                                session_timeout_ms=6000)
    zk.start(loop)
    try:
        wait_until(lambda: zk.is_controller, 30, "broker 1 elected controller")
        yield zk
    finally:
        zk.close()
        loop.close()


def _create_orphaned_topic(outside: KazooClient, store: ZooKeeperMetadataStore) -> None:
    """A topic led by broker 2, which is not live: the controller must elect broker 1."""
    partition = PartitionInfo(0, leader=2, leader_epoch=3, replicas=(2, 1), isr=(2, 1),
                              partition_epoch=5)
    topic = TopicInfo(TOPIC, uuid.uuid4(), {0: partition})
    outside.create(zd.topic_path(TOPIC), zd.encode_topic(topic))
    wait_until(lambda: TOPIC in store.image().topics, 30, "the store sees the topic")


def _controller(store: ZooKeeperMetadataStore) -> Controller:
    """A controller over `store` that acts only when the test calls elect_all."""
    return Controller(store, False, live_brokers=lambda: {1},
                      topics=lambda: list(store.image().topics.values()))


def _epoch(outside: KazooClient) -> tuple[int, int]:
    data, stat = outside.get(zd.CONTROLLER_EPOCH)
    return int(data), stat.version


def test_election_increments_the_epoch_and_writes_carry_it(
        store: ZooKeeperMetadataStore, outside: KazooClient) -> None:
    epoch, _ = _epoch(outside)
    assert epoch == store.controller_epoch == 1
    _create_orphaned_topic(outside, store)
    controller = _controller(store)
    try:
        assert controller.elect_all() == 1
    finally:
        controller.stop()
    state = json.loads(outside.get(zd.topic_path(TOPIC))[0])["partitions"]["0"]
    assert (state["leader"], state["leader_epoch"], state["isr"]) == (1, 4, [1])
    assert state["controller_epoch"] == 1


def test_a_superseded_controller_cannot_write(
        store: ZooKeeperMetadataStore, outside: KazooClient,
        caplog: pytest.LogCaptureFixture) -> None:
    """The epoch moves on while /controller still names broker 1 (so no watch has told it):
    its election pass is refused by ZooKeeper, nothing changes, and it resigns."""
    _create_orphaned_topic(outside, store)
    before, before_stat = outside.get(zd.topic_path(TOPIC))
    epoch, version = _epoch(outside)
    outside.set(zd.CONTROLLER_EPOCH, str(epoch + 1).encode(), version=version)

    controller = _controller(store)
    try:
        with caplog.at_level(logging.ERROR, logger="strom.cluster.zookeeper"), \
                pytest.raises(ControllerMovedError):
            controller.elect_all()
    finally:
        controller.stop()
    after, after_stat = outside.get(zd.topic_path(TOPIC))
    assert after == before and after_stat.version == before_stat.version
    assert any("no longer the controller (epoch 1)" in r.getMessage() for r in caplog.records)
    # It gave up /controller, so an election followed and handed out a fresh epoch.
    wait_until(lambda: store.controller_epoch == epoch + 2, 30, "a new term with epoch 3")
    assert _epoch(outside)[0] == epoch + 2


def test_a_controller_replaced_by_another_cannot_write(
        store: ZooKeeperMetadataStore, outside: KazooClient) -> None:
    """A full takeover (another broker's /controller, epoch + 1), then broker 1 acts once on
    the state it held: refused, with nothing changed, and it does not stand again."""
    _create_orphaned_topic(outside, store)
    before, before_stat = outside.get(zd.topic_path(TOPIC))
    epoch, version = _epoch(outside)
    takeover = outside.transaction()
    takeover.delete(zd.CONTROLLER)
    takeover.create(zd.CONTROLLER, zd.dumps({"version": 1, "brokerid": 2}), ephemeral=True)
    takeover.set_data(zd.CONTROLLER_EPOCH, str(epoch + 1).encode(), version=version)
    assert not any(isinstance(r, Exception) for r in takeover.commit())

    controller = _controller(store)
    try:
        with pytest.raises(ControllerMovedError):
            controller.elect_all()
    finally:
        controller.stop()
    after, after_stat = outside.get(zd.topic_path(TOPIC))
    assert after == before and after_stat.version == before_stat.version
    wait_until(lambda: store.image().controller_id == 2, 30, "broker 1 sees controller 2")
    assert not store.is_controller
    assert _epoch(outside)[0] == epoch + 1
    assert json.loads(outside.get(zd.CONTROLLER)[0])["brokerid"] == 2

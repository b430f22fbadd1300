"""Group configs in every `MetadataStore` (`set_group_configs` and
`MetadataImage.group_configs`, the GROUP config resource): a group's overrides are
replaced as a whole, an empty set removes them, every change is a new image seen by
another broker, and they survive a restart; in ZooKeeper they sit in
`/config/groups/<group>` (Kafka's config JSON, names sanitized as Kafka's entities).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.metadata_stores import Backend


async def test_group_configs_are_published_replaced_and_removed(backend: Backend,
                                                               store: Any) -> None:
    before = store.image().epoch
    store.set_group_configs("g1", {"consumer.session.timeout.ms": "50000"})
    await backend.settle(lambda: "g1" in store.image().group_configs, "g1 published")
    assert store.image().epoch > before
    assert store.image().group_configs["g1"] == {"consumer.session.timeout.ms": "50000"}
    store.set_group_configs("g1", {"share.auto.offset.reset": "earliest"})
    await backend.settle(lambda: "share.auto.offset.reset" in store.image().group_configs["g1"],
                         "g1 replaced")
    assert store.image().group_configs["g1"] == {"share.auto.offset.reset": "earliest"}
    store.set_group_configs("g1", {})
    await backend.settle(lambda: "g1" not in store.image().group_configs, "g1 removed")


async def test_group_configs_survive_a_restart(backend: Backend, store: Any) -> None:
    store.set_group_configs("orders/eu west*", {"consumer.heartbeat.interval.ms": "6000"})
    backend.close(store)
    reopened = await backend.open(1)
    await backend.settle(lambda: "orders/eu west*" in reopened.image().group_configs,
                         "the group's configs loaded after a restart")
    assert reopened.image().group_configs["orders/eu west*"] == {
        "consumer.heartbeat.interval.ms": "6000"}


async def test_another_broker_sees_them(backend: Backend, store: Any) -> None:
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: one broker per local metadata file")
    other = await backend.open(2)
    store.set_group_configs("shared", {"share.record.lock.duration.ms": "20000"})
    await backend.settle(lambda: "shared" in other.image().group_configs,
                         "broker 2 sees broker 1's group config")
    store.set_group_configs("shared", {})
    await backend.settle(lambda: "shared" not in other.image().group_configs,
                         "broker 2 sees it removed")


async def test_zookeeper_layout(backend: Backend, store: Any) -> None:
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: the znode layout is the ZooKeeper store's")
    from kazoo.client import KazooClient

    store.set_group_configs("a b/c", {"consumer.session.timeout.ms": "50000"})
    client = KazooClient(hosts=backend.connect, timeout=10)
    client.start(timeout=15)
    try:
        data, _ = client.get("/config/groups/a%20b%2Fc")
        assert json.loads(data) == {"version": 1,
                                    "config": {"consumer.session.timeout.ms": "50000"}}
    finally:
        client.stop()
        client.close()

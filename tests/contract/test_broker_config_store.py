"""Dynamic broker configs in every `MetadataStore` (`set_broker_configs` and
`MetadataImage.broker_configs`): the cluster-wide defaults and a broker's own configs
are kept apart, replaced as a whole, published as a new image, and survive a restart;
in ZooKeeper they sit in Kafka's own layout, and a change made through one broker (or
written into ZooKeeper by a tool) reaches every broker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strom.cluster.image import MetadataImage
from support.metadata_stores import Backend


class Images:
    def __init__(self) -> None:
        self.seen: list[MetadataImage] = []

    def __call__(self, image: MetadataImage) -> None:
        self.seen.append(image)


async def test_defaults_and_own_configs_are_kept_apart_and_published(
        backend: Backend, store: Any) -> None:
    images = Images()
    store.subscribe(images)
    before = store.image().epoch
    store.set_broker_configs(None, {"log.retention.ms": "3600000"})
    store.set_broker_configs(1, {"message.max.bytes": "2000000", "log.retention.ms": "60000"})
    await backend.settle(lambda: store.image().dynamic_broker_configs(1), "own configs seen")
    image = store.image()
    assert image.dynamic_broker_configs(None) == {"log.retention.ms": "3600000"}
    assert image.dynamic_broker_configs(1) == {"message.max.bytes": "2000000",
                                               "log.retention.ms": "60000"}
    assert image.broker_configs == {"<default>": {"log.retention.ms": "3600000"},
                                    "1": {"message.max.bytes": "2000000",
                                          "log.retention.ms": "60000"}}
    assert image.epoch > before
    assert images.seen and images.seen[-1].dynamic_broker_configs(1)


async def test_broker_configs_are_replaced_as_a_whole(backend: Backend, store: Any) -> None:
    store.set_broker_configs(None, {"log.retention.ms": "1", "log.cleaner.threads": "2"})
    store.set_broker_configs(None, {"log.cleaner.threads": "3"})
    await backend.settle(
        lambda: store.image().dynamic_broker_configs(None) == {"log.cleaner.threads": "3"},
        "the defaults replaced")
    store.set_broker_configs(None, {})
    await backend.settle(lambda: not store.image().dynamic_broker_configs(None),
                         "the defaults removed")
    assert "<default>" not in store.image().broker_configs


async def test_broker_configs_survive_a_restart(backend: Backend, store: Any) -> None:
    store.create_topic("kept-with-configs", {0: [1]}, {"retention.ms": "5"})
    store.set_broker_configs(None, {"log.retention.ms": "3600000"})
    store.set_broker_configs(1, {"message.max.bytes": "2000000"})
    backend.close(store)
    reopened = await backend.open(1)
    await backend.settle(lambda: reopened.image().dynamic_broker_configs(1),
                         "broker 1's configs loaded")
    image = reopened.image()
    assert image.dynamic_broker_configs(None) == {"log.retention.ms": "3600000"}
    assert image.dynamic_broker_configs(1) == {"message.max.bytes": "2000000"}
    assert image.topics["kept-with-configs"].configs == {"retention.ms": "5"}


async def test_a_change_through_one_broker_reaches_the_others(backend: Backend,
                                                              store: Any) -> None:
    if not backend.multi_broker:
        pytest.skip(f"{backend.kind}: a single-node store; there is no other broker")
    second = await backend.open(2)
    second.set_broker_configs(None, {"log.retention.ms": "42"})
    await backend.settle(
        lambda: store.image().dynamic_broker_configs(None) == {"log.retention.ms": "42"},
        "broker 1 sees the default set through broker 2")
    store.set_broker_configs(2, {"message.max.bytes": "3000000"})
    await backend.settle(
        lambda: second.image().dynamic_broker_configs(2) == {"message.max.bytes": "3000000"},
        "broker 2 sees its own configs set through broker 1")
    assert not store.image().dynamic_broker_configs(1)


def _zk_client(backend: Backend) -> Any:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=backend.connect, timeout=10)
    client.start(timeout=15)
    return client


async def test_zookeeper_holds_them_in_kafkas_layout_with_change_notices(
        backend: Backend, store: Any) -> None:
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: Kafka's ZooKeeper layout is the ZooKeeper store's")
    store.set_broker_configs(None, {"log.retention.ms": "3600000"})
    store.set_broker_configs(1, {"message.max.bytes": "2000000"})
    client = _zk_client(backend)
    try:
        data, _ = client.get("/config/brokers/<default>")
        assert json.loads(data) == {"version": 1, "config": {"log.retention.ms": "3600000"}}
        data, _ = client.get("/config/brokers/1")
        assert json.loads(data) == {"version": 1, "config": {"message.max.bytes": "2000000"}}
        notices = sorted(client.get_children("/config/changes"))
        assert len(notices) == 2 and all(n.startswith("config_change_") for n in notices)
        paths = [json.loads(client.get(f"/config/changes/{n}")[0]) for n in notices]
        assert paths == [{"version": 2, "entity_path": "brokers/<default>"},
                         {"version": 2, "entity_path": "brokers/1"}]
        # a tool writing Kafka's layout directly is seen too
        client.set("/config/brokers/<default>",
                   json.dumps({"version": 1, "config": {"log.cleaner.threads": "2"}}).encode())
    finally:
        client.stop()
        client.close()
    await backend.settle(
        lambda: store.image().dynamic_broker_configs(None) == {"log.cleaner.threads": "2"},
        "a direct write to /config/brokers/<default> applied")

"""SCRAM credentials in every `MetadataStore` (`set_user_configs` and
`MetadataImage.user_configs`): a user entity's configs are replaced as a whole, an empty
set removes the user, every change is a new image, and they survive a restart; in
ZooKeeper they sit in Kafka's `/config/users/<user>` with change notices, user names
sanitized as Kafka does, and a credential written there by a tool is picked up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strom.broker.security.credentials import from_password, user_credentials
from support.metadata_stores import Backend

ALICE = from_password("SCRAM-SHA-256", "alice-secret", 4096, salt=b"0123456789abcdef")


async def test_user_configs_are_published_replaced_and_removed(backend: Backend,
                                                              store: Any) -> None:
    before = store.image().epoch
    store.set_user_configs("alice", {"SCRAM-SHA-256": ALICE.to_config()})
    await backend.settle(lambda: "alice" in store.image().user_configs, "alice published")
    image = store.image()
    assert image.epoch > before
    assert user_credentials(image.user_configs["alice"]) == {"SCRAM-SHA-256": ALICE}
    store.set_user_configs("alice", {"SCRAM-SHA-512": "salt=AA==,stored_key=AA==,"
                                                      "server_key=AA==,iterations=4096"})
    await backend.settle(lambda: "SCRAM-SHA-512" in store.image().user_configs["alice"],
                         "alice replaced")
    assert set(store.image().user_configs["alice"]) == {"SCRAM-SHA-512"}
    store.set_user_configs("alice", {})
    await backend.settle(lambda: "alice" not in store.image().user_configs, "alice removed")


async def test_user_configs_survive_a_restart(backend: Backend, store: Any) -> None:
    store.set_user_configs("bob smith*", {"SCRAM-SHA-256": ALICE.to_config()})
    backend.close(store)
    reopened = await backend.open(1)
    await backend.settle(lambda: "bob smith*" in reopened.image().user_configs,
                         "the user loaded after a restart")
    assert user_credentials(reopened.image().user_configs["bob smith*"])["SCRAM-SHA-256"] \
        == ALICE


def _zk_client(backend: Backend) -> Any:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=backend.connect, timeout=10)
    client.start(timeout=15)
    return client


async def test_zookeeper_holds_them_in_kafkas_layout(backend: Backend, store: Any) -> None:
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: Kafka's ZooKeeper layout is the ZooKeeper store's")
    store.set_user_configs("bob smith*", {"SCRAM-SHA-256": ALICE.to_config()})
    client = _zk_client(backend)
    try:
        data, _ = client.get("/config/users/bob%20smith%2A")
        assert json.loads(data) == {"version": 1,
                                    "config": {"SCRAM-SHA-256": ALICE.to_config()}}
        notices = [json.loads(client.get(f"/config/changes/{n}")[0])
                   for n in sorted(client.get_children("/config/changes"))]
        assert notices[-1] == {"version": 2, "entity_path": "users/bob%20smith%2A"}
        # what kafka-configs --alter --entity-type users would write
        client.create("/config/users/carol", json.dumps(
            {"version": 1, "config": {"SCRAM-SHA-256": ALICE.to_config()}}).encode())
    finally:
        client.stop()
        client.close()
    await backend.settle(lambda: "carol" in store.image().user_configs,
                         "a user written directly into ZooKeeper")

"""Client quotas in every `MetadataStore` (`set_client_quotas` and
`MetadataImage.client_quotas`): entities keyed by Kafka's path (user, client id, both,
`<default>` at each level), replaced as a whole, removed by an empty set, kept across a
restart, and beside a user's SCRAM credentials without either clobbering the other. In
ZooKeeper they sit in Kafka's `/config/users/...` and `/config/clients/...` znodes with
`/config/changes` notices, and quotas written there by Kafka's tools are picked up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strom.cluster.quotas import CLIENT_ID, USER, entity_of, entity_path
from support.metadata_stores import Backend

SCRAM = "salt=AA==,stored_key=AA==,server_key=AA==,iterations=4096"
ALICE_C1 = entity_path(((CLIENT_ID, "c 1*"), (USER, "alice")))
DEFAULTS = entity_path(((CLIENT_ID, None), (USER, None)))


def test_entity_paths_are_kafkas() -> None:
    assert ALICE_C1 == "users/alice/clients/c%201%2A"
    assert DEFAULTS == "users/<default>/clients/<default>"
    assert entity_path(((USER, "<default>"),)) == "users/%3Cdefault%3E"
    assert entity_path(((CLIENT_ID, None),)) == "clients/<default>"
    for path in (ALICE_C1, DEFAULTS, "users/%3Cdefault%3E", "clients/<default>", "users/a~b"):
        assert entity_path(entity_of(path)) == path.replace("~", "%7E")


async def test_quotas_are_published_replaced_and_removed(backend: Backend, store: Any) -> None:
    before = store.image().epoch
    store.set_client_quotas(ALICE_C1, {"producer_byte_rate": "1024"})
    store.set_client_quotas(DEFAULTS, {"consumer_byte_rate": "2048"})
    store.set_client_quotas("clients/<default>", {"request_percentage": "50.0"})
    await backend.settle(lambda: len(store.image().client_quotas) == 3, "quotas published")
    image = store.image()
    assert image.epoch > before
    assert image.client_quotas[ALICE_C1] == {"producer_byte_rate": "1024"}
    store.set_client_quotas(ALICE_C1, {"consumer_byte_rate": "10"})
    await backend.settle(lambda: store.image().client_quotas[ALICE_C1]
                         == {"consumer_byte_rate": "10"}, "replaced")
    store.set_client_quotas(ALICE_C1, {})
    await backend.settle(lambda: ALICE_C1 not in store.image().client_quotas, "removed")


async def test_user_quotas_and_scram_credentials_coexist(backend: Backend, store: Any) -> None:
    store.set_user_configs("alice", {"SCRAM-SHA-256": SCRAM})
    store.set_client_quotas("users/alice", {"producer_byte_rate": "100"})
    await backend.settle(lambda: "users/alice" in store.image().client_quotas, "quota")
    store.set_user_configs("alice", {"SCRAM-SHA-512": SCRAM})  # a new credential: quota stays
    await backend.settle(lambda: "SCRAM-SHA-512" in store.image().user_configs.get("alice", {}),
                         "credential replaced")
    image = store.image()
    assert image.client_quotas["users/alice"] == {"producer_byte_rate": "100"}
    assert image.user_configs["alice"] == {"SCRAM-SHA-512": SCRAM}
    store.set_client_quotas("users/alice", {})  # the quota goes: the credential stays
    await backend.settle(lambda: "users/alice" not in store.image().client_quotas, "removed")
    assert store.image().user_configs["alice"] == {"SCRAM-SHA-512": SCRAM}


async def test_quotas_survive_a_restart(backend: Backend, store: Any) -> None:
    store.set_client_quotas(ALICE_C1, {"producer_byte_rate": "1024"})
    store.set_client_quotas("users/<default>", {"controller_mutation_rate": "5.0"})
    backend.close(store)
    reopened = await backend.open(1)
    await backend.settle(lambda: len(reopened.image().client_quotas) == 2, "loaded")
    assert reopened.image().client_quotas == {
        ALICE_C1: {"producer_byte_rate": "1024"},
        "users/<default>": {"controller_mutation_rate": "5.0"}}


def _zk_client(backend: Backend) -> Any:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=backend.connect, timeout=10)
    client.start(timeout=15)
    return client


async def test_zookeeper_holds_them_in_kafkas_layout(backend: Backend, store: Any) -> None:
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: Kafka's ZooKeeper layout is the ZooKeeper store's")
    store.set_user_configs("alice", {"SCRAM-SHA-256": SCRAM})
    store.set_client_quotas("users/alice", {"producer_byte_rate": "100"})
    store.set_client_quotas(ALICE_C1, {"consumer_byte_rate": "200"})
    client = _zk_client(backend)
    try:
        data, _ = client.get("/config/users/alice")
        assert json.loads(data) == {"version": 1, "config": {
            "SCRAM-SHA-256": SCRAM, "producer_byte_rate": "100"}}
        data, _ = client.get("/config/users/alice/clients/c%201%2A")
        assert json.loads(data) == {"version": 1, "config": {"consumer_byte_rate": "200"}}
        notices = [json.loads(client.get(f"/config/changes/{n}")[0])
                   for n in sorted(client.get_children("/config/changes"))]
        assert notices[-1] == {"version": 2, "entity_path": ALICE_C1}
        # what kafka-configs --alter --entity-type clients --entity-default wrote
        client.create("/config/clients/<default>", json.dumps(
            {"version": 1, "config": {"producer_byte_rate": "4096"}}).encode(), makepath=True)
        client.create("/config/changes/config_change_", json.dumps(
            {"version": 2, "entity_path": "clients/<default>"}).encode(), sequence=True)
    finally:
        client.stop()
        client.close()
    await backend.settle(lambda: "clients/<default>" in store.image().client_quotas,
                         "a quota written directly into ZooKeeper")
    assert store.image().client_quotas["clients/<default>"] == {"producer_byte_rate": "4096"}
    assert store.image().user_configs["alice"] == {"SCRAM-SHA-256": SCRAM}


async def test_a_credential_write_keeps_a_quota_this_broker_has_not_seen(
        backend: Backend, store: Any) -> None:
    """Another broker's quota write lands in the user's znode before this broker's watch
    sees it; a SCRAM change made here meanwhile must merge into the znode, not rewrite it
    from this broker's stale view."""
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: one writer, nothing can be unseen")
    store.set_user_configs("bob", {"SCRAM-SHA-256": SCRAM})
    client = _zk_client(backend)
    try:  # written as another broker would, its change notice not yet acted on here
        client.set("/config/users/bob", json.dumps({"version": 1, "config": {
            "SCRAM-SHA-256": SCRAM, "producer_byte_rate": "300"}}).encode())
        store.set_user_configs("bob", {"SCRAM-SHA-512": SCRAM})
        data, _ = client.get("/config/users/bob")
    finally:
        client.stop()
        client.close()
    assert json.loads(data)["config"] == {"SCRAM-SHA-512": SCRAM, "producer_byte_rate": "300"}

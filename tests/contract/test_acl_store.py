"""ACLs in every `MetadataStore` (`set_acls` and `MetadataImage.acls`): a pattern's
entries are replaced as a whole, an empty set removes it, changes survive a restart; in
ZooKeeper they sit in Kafka's /kafka-acl and /kafka-acl-extended layout with change
notices, and ACLs written there by another broker (or Kafka's tools) are picked up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strom.cluster.acls import Ace, Resource
from support.metadata_stores import Backend

TOPIC = Resource("Topic", "LITERAL", "orders")
PREFIX = Resource("Group", "PREFIXED", "app-")
READ = Ace("User:alice", "*", "Read", "Allow")
DENY = Ace("User:bob", "10.0.0.1", "Write", "Deny")


async def test_acls_are_published_replaced_and_removed(backend: Backend, store: Any) -> None:
    before = store.image().epoch
    store.set_acls(TOPIC, frozenset({READ}))
    store.set_acls(PREFIX, frozenset({READ, DENY}))
    assert store.image().epoch > before
    assert store.image().acls == {TOPIC: frozenset({READ}), PREFIX: frozenset({READ, DENY})}
    store.set_acls(TOPIC, frozenset({DENY}))
    assert store.image().acls[TOPIC] == frozenset({DENY})
    store.set_acls(TOPIC, frozenset())
    assert TOPIC not in store.image().acls


async def test_acls_survive_a_restart(backend: Backend, store: Any) -> None:
    store.set_acls(PREFIX, frozenset({READ, DENY}))
    backend.close(store)
    reopened = await backend.open(1)
    await backend.settle(lambda: PREFIX in reopened.image().acls, "ACLs loaded after a restart")
    assert reopened.image().acls[PREFIX] == frozenset({READ, DENY})


async def test_zookeeper_holds_them_in_kafkas_layout(backend: Backend, store: Any) -> None:
    if backend.kind != "zookeeper":
        pytest.skip(f"{backend.kind}: Kafka's ZooKeeper layout is the ZooKeeper store's")
    from kazoo.client import KazooClient

    client = KazooClient(hosts=backend.connect, timeout=10)
    client.start(timeout=15)
    try:
        store.set_acls(TOPIC, frozenset({READ}))
        store.set_acls(PREFIX, frozenset({DENY}))
        data, _ = client.get("/kafka-acl/Topic/orders")
        assert json.loads(data) == {"version": 1, "acls": [
            {"principal": "User:alice", "permissionType": "Allow", "operation": "Read",
             "host": "*"}]}
        assert client.exists("/kafka-acl-extended/prefixed/Group/app-")
        notices = client.get_children("/kafka-acl-changes")
        assert notices and all(n.startswith("acl_changes_") for n in notices)
        assert client.get_children("/kafka-acl-extended-changes")
        # written by someone else (another broker, Kafka's tools): picked up by the watch
        client.create("/kafka-acl/Cluster/kafka-cluster", json.dumps({"version": 1, "acls": [
            {"principal": "User:admin", "permissionType": "Allow", "operation": "Alter",
             "host": "*"}]}).encode(), makepath=True)
        client.create("/kafka-acl-changes/acl_changes_", b"Cluster:kafka-cluster",
                      sequence=True)
        cluster = Resource("Cluster", "LITERAL", "kafka-cluster")
        await backend.settle(lambda: cluster in store.image().acls, "external ACL seen")
        assert store.image().acls[cluster] == frozenset({Ace("User:admin", "*", "Alter",
                                                             "Allow")})
    finally:
        client.stop()
        client.close()

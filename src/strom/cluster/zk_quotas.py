"""Client quotas in Kafka's ZooKeeper layout (the role of its AdminZkClient for quotas).

    /config/users/<user>                   {"version": 1, "config": {"producer_byte_rate":
                                             "1024", "SCRAM-SHA-256": "...", ...}}
    /config/users/<user>/clients/<client>  {"version": 1, "config": {...}}
    /config/clients/<client>               {"version": 1, "config": {...}}
    /config/changes/config_change_N        {"version": 2, "entity_path":
                                             "users/<user>/clients/<client>"}

Names are sanitized and `<default>` is the default entity (`strom.cluster.quotas`). A
user znode is shared with its SCRAM credentials, so a write keeps the other keys there.
The store follows every write with a change notice, as Kafka's tools did; a broker re-reads
every quota entity when a notice appears (`read_all`), which also picks up what Kafka's
own tools write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from strom.cluster import zk_data as zd
from strom.cluster.quotas import QUOTA_KEYS

CLIENT_CONFIGS = "/config/clients"


def _get(client: Any, path: str) -> dict[str, str]:
    try:
        data, _ = client.get(path)
    except NoNodeError:
        return {}
    return zd.decode_configs(data)


def _children(client: Any, path: str) -> list[str]:
    try:
        return list(client.get_children(path))
    except NoNodeError:
        return []


def read_all(client: Any) -> dict[str, dict[str, str]]:
    """Every quota entity with quotas, by entity path."""
    found: dict[str, dict[str, str]] = {}

    def add(path: str, configs: Mapping[str, str]) -> None:
        quotas = {k: v for k, v in configs.items() if k in QUOTA_KEYS}
        if quotas:
            found[path] = quotas

    for client_id in _children(client, CLIENT_CONFIGS):
        add(f"clients/{client_id}", _get(client, f"{CLIENT_CONFIGS}/{client_id}"))
    for user in _children(client, zd.USER_CONFIGS):
        add(f"users/{user}", _get(client, f"{zd.USER_CONFIGS}/{user}"))
        clients = f"{zd.USER_CONFIGS}/{user}/clients"
        for client_id in _children(client, clients):
            add(f"users/{user}/clients/{client_id}", _get(client, f"{clients}/{client_id}"))
    return found


def merge_write(client: Any, path: str, values: Mapping[str, str],
                owned: Callable[[str], bool]) -> None:
    """Replace the keys `owned` selects in a config znode and keep the others, with
    ZooKeeper's version check: a user's znode holds its SCRAM credentials and its quotas,
    written by different requests (on different brokers) that must not undo each other."""
    while True:
        try:
            data, stat = client.get(path)
        except NoNodeError:
            try:
                client.create(path, zd.encode_configs(dict(values)), makepath=True)
                return
            except NodeExistsError:
                continue  # created meanwhile: merge into it
        kept = {k: v for k, v in zd.decode_configs(data).items() if not owned(k)}
        try:
            client.set(path, zd.encode_configs({**kept, **values}), version=stat.version)
            return
        except BadVersionError:
            continue  # written meanwhile: read it again


def is_quota_key(key: str) -> bool:
    return key in QUOTA_KEYS

"""Client quotas in Kafka's ZooKeeper layout (the role of its AdminZkClient for quotas).

    /config/users/<user>                   {"version": 1, "config": {"producer_byte_rate":
                                             "1024", "SCRAM-SHA-256": "...", ...}}
    /config/users/<user>/clients/<client>  {"version": 1, "config": {...}}
    /config/clients/<client>               {"version": 1, "config": {...}}
    /config/changes/config_change_N        {"version": 2, "entity_path":
                                             "users/<user>/clients/<client>"}

Names are sanitized and `<default>` is the default entity (`strom.cluster.quotas`). A
user znode is shared with its SCRAM credentials, so a write keeps the other keys there.
Every write is followed by a change notice, as Kafka's tools wrote them; a broker re-reads
every quota entity when a notice appears (`read_all`), which also picks up what Kafka's
own tools write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kazoo.exceptions import NodeExistsError, NoNodeError

from strom.cluster import zk_data as zd
from strom.cluster.quotas import QUOTA_KEYS, split_user_configs

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


def _put(client: Any, path: str, data: bytes) -> None:
    try:
        client.set(path, data)
    except NoNodeError:
        try:
            client.create(path, data, makepath=True)
        except NodeExistsError:
            client.set(path, data)


def write(client: Any, entity_path: str, quotas: Mapping[str, str]) -> None:
    """Replace one entity's quotas (keeping a user znode's SCRAM credentials) and write
    the change notice."""
    path = f"/config/{entity_path}"
    others: dict[str, str] = {}
    if entity_path.startswith("users/") and entity_path.count("/") == 1:
        others, _ = split_user_configs(_get(client, path))
    _put(client, path, zd.encode_configs({**others, **quotas}))
    client.create(f"{zd.CONFIG_CHANGES}/{zd.CONFIG_CHANGE_PREFIX}",
                  zd.encode_config_change(entity_path), sequence=True, makepath=True)

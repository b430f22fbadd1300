"""ACLs in ZooKeeper, in Kafka's ZooKeeper-mode layout, so Kafka's tools and Strom read
each other's:

    /kafka-acl/<ResourceType>/<name>                      literal patterns
    /kafka-acl-extended/prefixed/<ResourceType>/<name>    prefixed patterns
      {"version": 1, "acls": [{"principal": "User:alice", "permissionType": "Allow",
                               "operation": "Read", "host": "*"}]}
    /kafka-acl-changes/acl_changes_<seq>           "Topic:orders" (a literal change)
    /kafka-acl-extended-changes/acl_changes_<seq>  {"version": 1, "resourceType": "Topic",
                                                    "name": "ord", "patternType": "Prefixed"}

Every broker watches both notice directories and re-reads the ACLs when one grows.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from kazoo.exceptions import NodeExistsError, NoNodeError

from strom.cluster.acls import Ace, AclTable, Resource

LITERAL_ROOT = "/kafka-acl"
PREFIXED_ROOT = "/kafka-acl-extended/prefixed"
LITERAL_CHANGES = "/kafka-acl-changes"
EXTENDED_CHANGES = "/kafka-acl-extended-changes"
CHANGE_PREFIX = "acl_changes_"
PATHS = (LITERAL_ROOT, PREFIXED_ROOT, LITERAL_CHANGES, EXTENDED_CHANGES)
NOTICE_EXPIRY_MS = 15 * 60 * 1000  # Kafka's: notices older than this are deleted


def resource_path(resource: Resource) -> str:
    root = LITERAL_ROOT if resource.pattern == "LITERAL" else PREFIXED_ROOT
    return f"{root}/{resource.type}/{resource.name}"


def encode(entries: frozenset[Ace]) -> bytes:
    doc = {"version": 1, "acls": [a.to_json() for a in sorted(entries)]}
    return json.dumps(doc, separators=(",", ":")).encode()


def _notice(resource: Resource) -> tuple[str, bytes]:
    if resource.pattern == "LITERAL":
        return LITERAL_CHANGES, f"{resource.type}:{resource.name}".encode()
    doc = {"version": 1, "resourceType": resource.type, "name": resource.name,
           "patternType": "Prefixed"}
    return EXTENDED_CHANGES, json.dumps(doc, separators=(",", ":")).encode()


def write(client: Any, resource: Resource, entries: frozenset[Ace]) -> None:
    """Replace (or, empty, delete) one pattern's znode, then post the change notice."""
    path = resource_path(resource)
    if entries:
        try:
            client.set(path, encode(entries))
        except NoNodeError:
            try:
                client.create(path, encode(entries), makepath=True)
            except NodeExistsError:
                client.set(path, encode(entries))
    else:
        with contextlib.suppress(NoNodeError):
            client.delete(path)
    directory, data = _notice(resource)
    client.create(f"{directory}/{CHANGE_PREFIX}", data, sequence=True, makepath=True)
    _purge(client, directory)


def _purge(client: Any, directory: str) -> None:
    """Drop this directory's notices older than 15 minutes, as Kafka's writer does."""
    horizon_ms = time.time() * 1000 - NOTICE_EXPIRY_MS
    for child in _children(client, directory):
        stat = client.exists(f"{directory}/{child}")
        if stat is not None and stat.ctime < horizon_ms:
            with contextlib.suppress(NoNodeError):
                client.delete(f"{directory}/{child}")


def read_all(client: Any) -> AclTable:
    """Every pattern's entries, read afresh (ACLs are few; a notice re-reads them all)."""
    table: AclTable = {}
    for root, pattern in ((LITERAL_ROOT, "LITERAL"), (PREFIXED_ROOT, "PREFIXED")):
        for resource_type in _children(client, root):
            if root == LITERAL_ROOT and resource_type == "extended":
                continue
            for name in _children(client, f"{root}/{resource_type}"):
                resource = Resource(resource_type, pattern, name)
                entries = _read(client, resource_path(resource))
                if entries:
                    table[resource] = entries
    return table


def _children(client: Any, path: str) -> list[str]:
    try:
        return list(client.get_children(path))
    except NoNodeError:
        return []


def _read(client: Any, path: str) -> frozenset[Ace]:
    try:
        data, _ = client.get(path)
    except NoNodeError:
        return frozenset()
    if not data:
        return frozenset()
    return frozenset(Ace.from_json(a) for a in json.loads(data).get("acls", []))

"""One module per API family; importing a module registers its handlers."""

from __future__ import annotations

import importlib

_MODULES = (
    "api_versions",
    "metadata",
    "produce",
    "fetch",
    "list_offsets",
    "topics",
    "configs",
    "describe_cluster",
    "delete_records",
    "producer_ids",
    "find_coordinator",
    "groups",
    "offsets",
    "group_admin",
    "leader_epochs",
    "elect_leaders",
    "reassignments",
)


def register_all() -> None:
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")

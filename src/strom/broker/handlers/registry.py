"""Every handler module, imported by name: importing this module registers them all.

Each module's `@dispatch.handles(ApiKey.X, ...)` fills `dispatch.HANDLERS`, from which
ApiVersions is derived. Importing the modules here, rather than from a list of strings,
lets the type checker, the import linter and "find usages" see every handler.
"""

from __future__ import annotations

from types import ModuleType

from strom.broker.handlers import (
    acls,
    api_versions,
    client_quotas,
    configs,
    consumer_groups,
    delete_records,
    describe_cluster,
    describe_log_dirs,
    describe_topic_partitions,
    elect_leaders,
    fetch,
    find_coordinator,
    group_admin,
    groups,
    leader_epochs,
    list_config_resources,
    list_offsets,
    metadata,
    offsets,
    produce,
    producer_ids,
    reassignments,
    sasl,
    scram_credentials,
    share_group_offsets,
    share_groups,
    share_state,
    topics,
    transactions,
    txn_offsets,
    txn_partitions,
)

MODULES: tuple[ModuleType, ...] = (
    api_versions,
    sasl,
    scram_credentials,
    acls,
    metadata,
    produce,
    fetch,
    list_offsets,
    topics,
    configs,
    list_config_resources,
    client_quotas,
    describe_cluster,
    describe_topic_partitions,
    describe_log_dirs,
    delete_records,
    producer_ids,
    find_coordinator,
    groups,
    offsets,
    group_admin,
    consumer_groups,
    share_groups,
    share_group_offsets,
    share_state,
    leader_epochs,
    elect_leaders,
    reassignments,
    transactions,
    txn_offsets,
    txn_partitions,
)

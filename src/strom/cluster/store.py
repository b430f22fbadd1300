"""`MetadataStore`: the one door to cluster metadata, and its errors.

Two back ends implement it: `LocalMetadataStore` (single node, a JSON file) and, for
clusters, a ZooKeeper store. Callers see an immutable `MetadataImage` and subscribe to
new ones; writes go through the methods here so each back end can make them atomic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Protocol

from kio.schema.errors import ErrorCode

from strom.cluster.acls import Ace, Resource
from strom.cluster.image import MetadataImage, TopicInfo

MAX_TOPIC_NAME = 249
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")


class MetadataError(Exception):
    """A refused metadata change, with the error code Kafka answers."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


class ControllerMovedError(MetadataError):
    """A controller write refused because a newer controller epoch exists: this broker
    is no longer the controller (Kafka's ControllerMovedException)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.not_controller, message)


class InconsistentClusterId(MetadataError):
    """The log dirs belong to another cluster than the one ZooKeeper names (Kafka's
    InconsistentClusterIdException): the broker must not join."""

    def __init__(self, zk_cluster_id: str, stored_cluster_id: str) -> None:
        super().__init__(
            ErrorCode.inconsistent_cluster_id,
            f"The Cluster ID {zk_cluster_id} doesn't match stored clusterId "
            f"Some({stored_cluster_id}) in meta.properties. The broker is trying to join "
            "the wrong cluster. Configured zookeeper.connect may be wrong.",
        )


def validate_topic_name(name: str) -> None:
    if not name or name in (".", ".."):
        raise MetadataError(ErrorCode.invalid_topic_exception, f"Topic name {name!r} is illegal")
    if len(name) > MAX_TOPIC_NAME:
        raise MetadataError(
            ErrorCode.invalid_topic_exception, f"Topic name is longer than {MAX_TOPIC_NAME} characters"
        )
    if not _LEGAL.match(name):
        raise MetadataError(
            ErrorCode.invalid_topic_exception,
            f"Topic name {name!r} is illegal, it contains a character other than "
            "ASCII alphanumerics, '.', '_' and '-'",
        )


class MetadataStore(Protocol):
    def image(self) -> MetadataImage: ...

    def subscribe(self, listener: Callable[[MetadataImage], None]) -> None: ...

    def create_topic(
        self,
        name: str,
        assignments: Mapping[int, list[int]],
        configs: Mapping[str, str],
        *,
        internal: bool = False,
    ) -> TopicInfo: ...

    def delete_topic(self, name: str) -> None: ...

    def add_partitions(self, name: str, assignments: Mapping[int, list[int]]) -> TopicInfo: ...

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo: ...

    def set_broker_configs(self, broker_id: int | None, configs: Mapping[str, str]) -> None:
        """Replace the dynamic configs of one broker (None: the cluster-wide defaults);
        an empty mapping removes them. The next image carries them."""
        ...

    def set_user_configs(self, user: str, configs: Mapping[str, str]) -> None:
        """Replace the configs of one user entity (SCRAM credentials, Kafka's
        `/config/users/<user>`); an empty mapping removes the user. The next image
        carries them in `user_configs`."""
        ...

    def set_group_configs(self, group_id: str, configs: Mapping[str, str]) -> None:
        """Replace the configs of one group (the GROUP resource); an empty mapping
        removes them. The next image carries them in `group_configs`."""
        ...

    def set_client_quotas(self, path: str, quotas: Mapping[str, str]) -> None:
        """Replace the client quota configs of one entity (`strom.cluster.quotas` path);
        an empty mapping removes them. A user entity keeps its SCRAM credentials beside
        them. The next image carries them in `client_quotas`."""
        ...

    def set_acls(self, resource: Resource, entries: frozenset[Ace]) -> None:
        """Replace the ACL entries of one resource pattern; an empty set removes it.
        The next image carries them in `acls`."""
        ...

    def update_topic(
        self, name: str, change: Callable[[TopicInfo], TopicInfo | None]
    ) -> TopicInfo | None:
        """Atomic read-modify-write of one topic; `change` returns None to leave it."""
        ...

    def close(self) -> None: ...

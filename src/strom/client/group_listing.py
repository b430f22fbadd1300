"""Every group of a cluster with its type and state, as Kafka's brokers name them.

librdkafka's group listing knows the classic states and the `classic`/`consumer` types
only: a consumer group that is `Assigning` or `Reconciling` (KIP-848) comes back as
`UNKNOWN`, and share groups are not listed at all. `list_groups` asks every broker with
ListGroups v5 (no state or type filter), which names each group's type (`classic`,
`consumer`, `share`, `streams`) and state in Kafka's own words (`Stable`,
`PreparingRebalance`, `Assigning`, `Reconciling`, `Empty`, ...), and merges the answers:
each broker lists the groups it coordinates.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from strom.client.errors import BrokerUnreachableError, KafkaClientError
from strom.client.protocol_admin import BrokerNode, ProtocolAdmin, client_error

LIST_GROUPS = 16


@dataclass(frozen=True, order=True)
class GroupListing:
    group_id: str
    group_type: str
    state: str
    protocol_type: str

    @property
    def is_simple(self) -> bool:
        """A classic group of no protocol: offsets committed by an admin or a client
        that assigns itself."""
        return self.group_type == "classic" and not self.protocol_type


@dataclass(frozen=True)
class _Reason:
    """Why the bootstrap brokers could not be reached, in the shape librdkafka's errors
    have, so the message names the cause (`Connection refused`) as other commands do."""

    text: builtins.str
    code_name: builtins.str

    def str(self) -> builtins.str:
        return self.text

    def name(self) -> builtins.str:
        return self.code_name

    def retriable(self) -> bool:
        return True

    def fatal(self) -> bool:
        return False


def _brokers(admin: ProtocolAdmin) -> list[BrokerNode]:
    try:
        return sorted(admin.brokers().values(), key=lambda n: n.node_id)
    except BrokerUnreachableError as exc:
        cause = exc.__cause__
        if not isinstance(cause, KafkaClientError):
            raise
        text = str(cause).rpartition(": ")[2]
        raise BrokerUnreachableError(admin.bootstrap_servers,
                                     _Reason(text, cause.name or "_TRANSPORT")) from cause


def list_groups(admin: ProtocolAdmin) -> list[GroupListing]:
    """Every broker's groups, in group id order."""
    found: dict[str, GroupListing] = {}
    for node in _brokers(admin):
        with ProtocolAdmin(f"{node.host}:{node.port}", timeout=admin.timeout,
                           client_id=admin.client_id, security=admin.security) as one:
            body = one.request(LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
        if int(body.error_code):
            raise client_error(int(body.error_code), None, f"broker {node.node_id}")
        for group in body.groups:
            found[group.group_id] = GroupListing(
                group.group_id, group.group_type or "classic", group.group_state,
                group.protocol_type)
    return sorted(found.values())


def find_group(admin: ProtocolAdmin, group_id: str) -> GroupListing | None:
    """One group's listing (None: no broker coordinates a group of that id)."""
    return next((g for g in list_groups(admin) if g.group_id == group_id), None)

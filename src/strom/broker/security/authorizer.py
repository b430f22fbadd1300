"""The ACL authorizer: may this principal, from this host, do this to this resource?

Kafka's StandardAuthorizer/AclAuthorizer semantics, on the ACLs of the metadata image:
it is on only when `authorizer.class.name` is set (off, everything is allowed, Kafka's
default); `super.users` may do anything; every ACL whose pattern covers the resource
(the literal name, the literal `*`, or a prefix) and whose principal (or `User:*`) and
host (or `*`) match is considered; one matching DENY refuses, whatever ALLOWs exist;
otherwise a matching ALLOW grants. ALLOW Read, Write, Delete or Alter imply Describe,
ALLOW AlterConfigs implies DescribeConfigs, `All` matches every operation. A resource
that no ACL at all covers is allowed only with `allow.everyone.if.no.acl.found`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strom.cluster.acls import WILDCARD, Ace, AclTable, Resource

if TYPE_CHECKING:
    from strom.broker.context import RequestContext
    from strom.config.broker import BrokerConfig

KNOWN_CLASSES = ("org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                 "kafka.security.authorizer.AclAuthorizer",
                 "kafka.security.auth.SimpleAclAuthorizer")

_IMPLIED_BY = {"Describe": {"Describe", "Read", "Write", "Delete", "Alter"},
               "DescribeConfigs": {"DescribeConfigs", "AlterConfigs"}}


def enabled(class_name: str | None) -> bool:
    """Kafka's class names, or any other non-empty one, turn ACLs on; empty is off."""
    return bool(class_name and class_name.strip())


def parse_super_users(raw: str | None) -> frozenset[str]:
    """`super.users` is semicolon-separated (a principal may contain commas)."""
    return frozenset(p.strip() for p in (raw or "").split(";") if p.strip())


def host_of(peer: str) -> str:
    """The client's address without its port ("[::1]:5" and "1.2.3.4:5" alike)."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    return host.strip("[]")


class Authorizer:
    """Answers from the current ACLs (`acls()`, the image's, read on each question so a
    change applies at once) and the three configs."""

    def __init__(self, acls: Callable[[], AclTable], super_users: frozenset[str],
                 allow_if_no_acl: bool) -> None:
        self._acls = acls
        self.super_users = super_users
        self.allow_if_no_acl = allow_if_no_acl

    def _covering(self, resource_type: str, name: str) -> list[frozenset[Ace]]:
        """The entry sets of every pattern that covers the resource, from an index of
        the current table: built once per table (a new image), shared by the requests
        (an authorizer is made per request)."""
        table = self._acls()
        last = _LAST_INDEX[0]
        if last is None or last[0] is not table:
            last = (table, _Index(table))
            _LAST_INDEX[0] = last
        return last[1].covering(resource_type, name)

    def authorize(self, principal: str, host: str, operation: str, resource_type: str,
                  name: str) -> bool:
        if principal in self.super_users:
            return True
        covering = self._covering(resource_type, name)
        if not any(covering):
            return self.allow_if_no_acl
        entries = [a for aces in covering for a in aces if _matches(a, principal, host)]
        if any(a.permission == "Deny" and a.operation in (operation, "All") for a in entries):
            return False
        granting = _IMPLIED_BY.get(operation, {operation}) | {"All"}
        return any(a.permission == "Allow" and a.operation in granting for a in entries)

    def authorize_any(self, principal: str, host: str, operation: str,
                      resource_type: str) -> bool:
        """Whether some resource of the type may be the object of `operation` (Kafka's
        authorizeByResourceType, used for IdempotentWrite through Write on any topic): an
        ALLOW for the principal that no DENY of the same or a wider pattern cancels."""
        if principal in self.super_users:
            return True
        typed = {r: aces for r, aces in self._acls().items() if r.type == resource_type}
        denied = [r for r, aces in typed.items() for a in aces
                  if _matches(a, principal, host) and a.permission == "Deny"
                  and a.operation in (operation, "All")]
        if any(r.name == WILDCARD for r in denied):
            return False
        for resource, aces in typed.items():
            if any(_matches(a, principal, host) and a.permission == "Allow"
                   and a.operation in (operation, "All") for a in aces) \
                    and not any(_covers(d, resource) for d in denied):
                return True
        return self.allow_if_no_acl and not any(typed.values())


class _Index:
    """An ACL table by how a resource name finds its patterns: literal names (and the
    literal `*`) by (type, name), prefixes by type."""

    def __init__(self, table: AclTable) -> None:
        self.literal: dict[tuple[str, str], frozenset[Ace]] = {}
        self.prefixed: dict[str, list[tuple[str, frozenset[Ace]]]] = {}
        for resource, aces in table.items():
            if resource.pattern == "LITERAL":
                self.literal[(resource.type, resource.name)] = aces
            else:
                self.prefixed.setdefault(resource.type, []).append((resource.name, aces))

    def covering(self, resource_type: str, name: str) -> list[frozenset[Ace]]:
        found = [aces for prefix, aces in self.prefixed.get(resource_type, ())
                 if name.startswith(prefix)]
        for key in ((resource_type, name), (resource_type, WILDCARD)):
            aces = self.literal.get(key)
            if aces is not None:
                found.append(aces)
        return found


_LAST_INDEX: list[tuple[AclTable, _Index] | None] = [None]


def _matches(ace: Ace, principal: str, host: str) -> bool:
    return ace.principal in (principal, "User:*") and ace.host in (host, WILDCARD)


def _covers(wider: Resource, resource: Resource) -> bool:
    """Whether a DENY on `wider` applies to everything `resource` names."""
    if wider.pattern == "LITERAL":
        return resource.pattern == "LITERAL" and wider.name == resource.name
    return resource.name.startswith(wider.name)


def from_config(config: BrokerConfig, acls: Callable[[], AclTable]) -> Authorizer | None:
    """The broker's authorizer, or None when `authorizer.class.name` is empty (Kafka's
    default: no ACLs, every request allowed)."""
    if not enabled(config.get_str("authorizer.class.name")):
        return None
    return Authorizer(acls, parse_super_users(config.get_str("super.users")),
                      config.get_bool("allow.everyone.if.no.acl.found"))


def for_request(ctx: RequestContext) -> Authorizer | None:
    return from_config(ctx.config, lambda: ctx.metadata.image().acls)

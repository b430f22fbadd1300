"""ACL bindings in Kafka's vocabulary, and the filters DescribeAcls and DeleteAcls match.

The codes are the wire's (Kafka's ResourceType, PatternType, AclOperation and
AclPermissionType); the names are the ones Kafka writes in ZooKeeper's ACL JSON
(`"Read"`, `"Allow"`, `"Topic"`), which is also how the metadata stores keep them, so a
binding read from a Kafka-written znode needs no translation.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kafka's codes (org.apache.kafka.common.resource / acl): 0 UNKNOWN, 1 ANY everywhere.
ANY = 1
RESOURCE_TYPES = {2: "Topic", 3: "Group", 4: "Cluster", 5: "TransactionalId",
                  6: "DelegationToken", 7: "User"}
PATTERN_TYPES = {3: "LITERAL", 4: "PREFIXED"}
MATCH = 2  # a pattern filter matching every pattern that applies to one name
OPERATIONS = {2: "All", 3: "Read", 4: "Write", 5: "Create", 6: "Delete", 7: "Alter",
              8: "Describe", 9: "ClusterAction", 10: "DescribeConfigs",
              11: "AlterConfigs", 12: "IdempotentWrite", 13: "CreateTokens",
              14: "DescribeTokens", 15: "TwoPhaseCommit"}
PERMISSIONS = {2: "Deny", 3: "Allow"}
CODE = {name: code for table in (RESOURCE_TYPES, PATTERN_TYPES, OPERATIONS, PERMISSIONS)
        for code, name in table.items()}

WILDCARD = "*"
CLUSTER_NAME = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Resource:
    """A resource pattern: type ("Topic"), pattern ("LITERAL"/"PREFIXED") and name."""

    type: str
    pattern: str
    name: str


@dataclass(frozen=True, order=True)
class Ace:
    """One access-control entry: who, from where, what, allowed or denied."""

    principal: str
    host: str
    operation: str
    permission: str

    def to_json(self) -> dict[str, str]:
        """Kafka's ZooKeeper form of one entry."""
        return {"principal": self.principal, "permissionType": self.permission,
                "operation": self.operation, "host": self.host}

    @classmethod
    def from_json(cls, doc: dict[str, str]) -> Ace:
        return cls(str(doc["principal"]), str(doc["host"]), str(doc["operation"]),
                   str(doc["permissionType"]))


AclTable = dict[Resource, frozenset[Ace]]


@dataclass(frozen=True)
class BindingFilter:
    """A DescribeAcls/DeleteAcls filter, codes as on the wire; None matches anything."""

    resource_type: int
    name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission: int

    def matches(self, resource: Resource, ace: Ace) -> bool:
        return self.matches_resource(resource) and self.matches_entry(ace)

    def matches_resource(self, resource: Resource) -> bool:
        if self.resource_type != ANY and RESOURCE_TYPES.get(self.resource_type) != resource.type:
            return False
        if self.pattern_type == MATCH:
            return self.name is None or _applies(resource, self.name)
        if self.pattern_type != ANY and PATTERN_TYPES.get(self.pattern_type) != resource.pattern:
            return False
        return self.name is None or self.name == resource.name

    def matches_entry(self, ace: Ace) -> bool:
        return ((self.principal is None or self.principal == ace.principal)
                and (self.host is None or self.host == ace.host)
                and (self.operation == ANY or OPERATIONS.get(self.operation) == ace.operation)
                and (self.permission == ANY or PERMISSIONS.get(self.permission) == ace.permission))


def _applies(resource: Resource, name: str) -> bool:
    """Whether the pattern `resource` covers a resource called `name` (MATCH filters
    and the authorizer): the literal name, the literal wildcard, or a prefix."""
    if resource.pattern == "LITERAL":
        return resource.name in (name, WILDCARD)
    return resource.pattern == "PREFIXED" and name.startswith(resource.name)

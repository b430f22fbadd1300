"""The authorizer's decisions against Kafka's rules: super users, DENY over ALLOW,
literal/wildcard/prefixed patterns, User:* and host matching, implied operations, and
`allow.everyone.if.no.acl.found` for resources no ACL covers."""

from __future__ import annotations

from strom.broker.security.authorizer import Authorizer, host_of, parse_super_users
from strom.cluster.acls import Ace, AclTable, BindingFilter, Resource


def _auth(acls: AclTable, *, supers: str = "", allow_if_no_acl: bool = False) -> Authorizer:
    return Authorizer(lambda: acls, parse_super_users(supers), allow_if_no_acl)


def _allow(principal: str, op: str, host: str = "*") -> Ace:
    return Ace(principal, host, op, "Allow")


def _deny(principal: str, op: str, host: str = "*") -> Ace:
    return Ace(principal, host, op, "Deny")


T = Resource("Topic", "LITERAL", "orders")


def test_literal_allow_and_implied_describe() -> None:
    a = _auth({T: frozenset({_allow("User:alice", "Read")})})
    assert a.authorize("User:alice", "1.2.3.4", "Read", "Topic", "orders")
    assert a.authorize("User:alice", "1.2.3.4", "Describe", "Topic", "orders")
    assert not a.authorize("User:alice", "1.2.3.4", "Write", "Topic", "orders")
    assert not a.authorize("User:bob", "1.2.3.4", "Read", "Topic", "orders")


def test_deny_wins_but_deny_read_does_not_deny_describe() -> None:
    a = _auth({T: frozenset({_allow("User:*", "All"), _deny("User:bob", "Read")}),
               Resource("Topic", "LITERAL", "*"): frozenset({_allow("User:bob", "Describe")})})
    assert a.authorize("User:alice", "h", "Write", "Topic", "orders")
    assert not a.authorize("User:bob", "h", "Read", "Topic", "orders")
    assert a.authorize("User:bob", "h", "Describe", "Topic", "orders")


def test_prefixed_wildcard_and_host() -> None:
    a = _auth({Resource("Topic", "PREFIXED", "ord"): frozenset({_allow("User:a", "Write",
                                                                        "10.0.0.1")}),
               Resource("Group", "LITERAL", "*"): frozenset({_allow("User:a", "Read")})})
    assert a.authorize("User:a", "10.0.0.1", "Write", "Topic", "orders")
    assert not a.authorize("User:a", "10.0.0.2", "Write", "Topic", "orders")
    assert not a.authorize("User:a", "10.0.0.1", "Write", "Topic", "payments")
    assert a.authorize("User:a", "x", "Read", "Group", "any-group")


def test_super_users_and_no_acl_default() -> None:
    a = _auth({}, supers="User:admin;User:CN=x,O=y")
    assert a.authorize("User:CN=x,O=y", "h", "Alter", "Cluster", "kafka-cluster")
    assert not a.authorize("User:alice", "h", "Read", "Topic", "t")
    assert _auth({}, allow_if_no_acl=True).authorize("User:alice", "h", "Read", "Topic", "t")
    covered = _auth({T: frozenset({_allow("User:bob", "Read")})}, allow_if_no_acl=True)
    assert not covered.authorize("User:alice", "h", "Read", "Topic", "orders")
    assert covered.authorize("User:alice", "h", "Read", "Topic", "other")


def test_alter_configs_implies_describe_configs() -> None:
    a = _auth({T: frozenset({_allow("User:a", "AlterConfigs")})})
    assert a.authorize("User:a", "h", "DescribeConfigs", "Topic", "orders")
    assert not a.authorize("User:a", "h", "Describe", "Topic", "orders")


def test_authorize_any_for_idempotent_write() -> None:
    a = _auth({Resource("Topic", "PREFIXED", "x"): frozenset({_allow("User:a", "Write")})})
    assert a.authorize_any("User:a", "h", "Write", "Topic")
    assert not a.authorize_any("User:b", "h", "Write", "Topic")
    denied = _auth({Resource("Topic", "PREFIXED", "x"): frozenset({_allow("User:a", "Write")}),
                    Resource("Topic", "LITERAL", "*"): frozenset({_deny("User:a", "Write")})})
    assert not denied.authorize_any("User:a", "h", "Write", "Topic")


def test_filters() -> None:
    ace = _allow("User:a", "Read")
    prefixed = Resource("Topic", "PREFIXED", "or")
    assert BindingFilter(1, None, 1, None, None, 1, 1).matches(T, ace)
    assert BindingFilter(2, "orders", 2, None, None, 3, 3).matches(prefixed, ace)
    assert not BindingFilter(2, "orders", 3, None, None, 1, 1).matches(prefixed, ace)
    assert not BindingFilter(3, None, 1, None, None, 1, 1).matches(T, ace)
    assert not BindingFilter(1, None, 1, "User:b", None, 1, 1).matches(T, ace)


def test_host_of_peer() -> None:
    assert host_of("1.2.3.4:9092") == "1.2.3.4"
    assert host_of("[::1]:9092") == "::1"


def test_a_new_table_is_seen_at_once() -> None:
    tables: list[AclTable] = [{}]
    a = Authorizer(lambda: tables[-1], frozenset(), False)
    assert not a.authorize("User:a", "h", "Read", "Topic", "orders")
    tables.append({T: frozenset({_allow("User:a", "Read")})})
    assert a.authorize("User:a", "h", "Read", "Topic", "orders")
    assert a.authorize("User:a", "h", "Read", "Topic", "orders")  # from the kept index

"""`strom acl create|list|delete`: ACLs, as `kafka-acls.sh --add/--list/--remove`
manages them, through the AdminClient (CreateAcls, DescribeAcls, DeleteAcls).

A resource is named by one of --topic, --group, --transactional-id or --cluster, with
--pattern literal (the default; `*` is the wildcard) or prefixed. The broker enforces
them only when it runs with `authorizer.class.name` set; otherwise it answers
SECURITY_DISABLED, which is reported as such.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strom.cli.common import (
    DEFAULT_BROKERS,
    Brokers,
    ClientProps,
    Format,
    OutputFormat,
    fail,
    reports_errors,
)

app = typer.Typer(help="ACLs: who may do what to which topic, group or cluster.",
                  no_args_is_help=True)

Topic = Annotated[str | None, typer.Option("--topic", help="A topic (or prefix).")]
Group = Annotated[str | None, typer.Option("--group", help="A consumer group (or prefix).")]
TxnId = Annotated[str | None, typer.Option("--transactional-id",
                                           help="A transactional id (or prefix).")]
Cluster = Annotated[bool, typer.Option("--cluster", help="The cluster itself.")]
Principal = Annotated[str | None, typer.Option(
    "--principal", help="Whose ACL: User:<name>, User:* for everyone.")]
Operations = Annotated[list[str] | None, typer.Option(
    "--operation", "-o", help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, "
                              "DescribeConfigs, AlterConfigs, IdempotentWrite or All "
                              "(repeatable).")]
Host = Annotated[str | None, typer.Option("--host", help="Client address; * for any.")]


def _enum(kind: Any, name: str, what: str) -> Any:
    """A confluent-kafka enum member from Kafka's spelling (`DescribeConfigs`,
    `prefixed`, `TransactionalId`), case and separators ignored."""
    wanted = name.replace("-", "").replace("_", "").upper()
    for member in kind:
        if member.name.replace("_", "") == wanted:
            return member
    fail(f"unknown {what} {name!r}", name="_INVALID_ARG")
    return None


def _resource(topic: str | None, group: str | None, txn: str | None,
              cluster: bool) -> tuple[str, str | None]:
    """(resource type name, resource name) of the one resource option given."""
    chosen = [(kind, name) for kind, name in (("TOPIC", topic), ("GROUP", group),
                                              ("TRANSACTIONAL_ID", txn)) if name is not None]
    if cluster:
        chosen.append(("BROKER", "kafka-cluster"))
    if len(chosen) > 1:
        fail("name one resource: --topic, --group, --transactional-id or --cluster",
             name="_INVALID_ARG")
    return chosen[0] if chosen else ("ANY", None)


def _row(binding: Any) -> dict[str, Any]:
    return {"principal": binding.principal, "host": binding.host,
            "operation": binding.operation.name, "permission": binding.permission_type.name,
            "resource_type": binding.restype.name, "resource_name": binding.name,
            "pattern": binding.resource_pattern_type.name}


def _show(bindings: list[Any], fmt: OutputFormat) -> None:
    from strom.cli.output import Output

    rows = [_row(b) for b in bindings]
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
        return
    out.table(["PRINCIPAL", "HOST", "OPERATION", "PERMISSION", "RESOURCE", "NAME", "PATTERN"],
              [[r["principal"], r["host"], r["operation"], r["permission"],
                r["resource_type"], r["resource_name"], r["pattern"]] for r in rows])


@app.command()
@reports_errors
def create(
    principal: Principal = None,
    operation: Operations = None,
    topic: Topic = None,
    group: Group = None,
    transactional_id: TxnId = None,
    cluster: Cluster = False,
    pattern: Annotated[str, typer.Option(help="literal or prefixed.")] = "literal",
    host: Host = "*",
    deny: Annotated[bool, typer.Option("--deny", help="A DENY ACL (default ALLOW).")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Add ACLs: PRINCIPAL may (or, --deny, may not) do each OPERATION to the resource."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    from strom.cli.client import clients_for
    from strom.client.admin import results

    kind, name = _resource(topic, group, transactional_id, cluster)
    if name is None or principal is None or not operation:
        fail("create needs --principal, --operation and a resource", name="_INVALID_ARG")
    permission = AclPermissionType.DENY if deny else AclPermissionType.ALLOW
    bindings = [AclBinding(getattr(ResourceType, kind), name,
                           _enum(ResourcePatternType, pattern, "pattern type"), principal,
                           host or "*", _enum(AclOperation, op, "operation"), permission)
                for op in operation]
    clients = clients_for(brokers, props)
    results(clients, clients.admin().create_acls(bindings, request_timeout=clients.timeout))
    for row in map(_row, bindings):
        print(f"created {row['permission']} {row['operation']} for {row['principal']} on "
              f"{row['resource_type']} {row['resource_name']} ({row['pattern']})")


def _filter(topic: str | None, group: str | None, txn: str | None, cluster: bool,
            principal: str | None, operation: str | None, host: str | None, pattern: str,
            permission: str) -> Any:
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    kind, name = _resource(topic, group, txn, cluster)
    make: Any = AclBindingFilter  # the stubs want str where the filter takes None (any)
    return make(
        getattr(ResourceType, kind), name, _enum(ResourcePatternType, pattern, "pattern type"),
        principal, host, _enum(AclOperation, operation or "any", "operation"),
        _enum(AclPermissionType, permission, "permission"))


@app.command("list")
@reports_errors
def list_(
    topic: Topic = None,
    group: Group = None,
    transactional_id: TxnId = None,
    cluster: Cluster = False,
    principal: Principal = None,
    pattern: Annotated[str, typer.Option(
        help="any, match (every pattern that applies to the name), literal or prefixed.")
    ] = "any",
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """ACLs matching the filter (all when none is given)."""
    from strom.cli.client import clients_for

    wanted = _filter(topic, group, transactional_id, cluster, principal, None, None, pattern,
                     "any")
    clients = clients_for(brokers, props)
    found = clients.result(clients.admin().describe_acls(wanted,
                                                         request_timeout=clients.timeout))
    _show(sorted(found, key=lambda b: (b.restype.name, b.name, b.principal)), fmt)


@app.command()
@reports_errors
def delete(
    topic: Topic = None,
    group: Group = None,
    transactional_id: TxnId = None,
    cluster: Cluster = False,
    principal: Principal = None,
    operation: Annotated[str | None, typer.Option("--operation", "-o",
                                                  help="Only this operation.")] = None,
    host: Host = None,
    pattern: Annotated[str, typer.Option(help="any, match, literal or prefixed.")] = "any",
    permission: Annotated[str, typer.Option(help="any, allow or deny.")] = "any",
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Remove the ACLs matching the filter; at least a resource or a principal."""
    from strom.cli.client import clients_for
    from strom.client.admin import results

    if principal is None and not (topic or group or transactional_id or cluster):
        fail("delete needs a resource or --principal", name="_INVALID_ARG",
             hint="every ACL would match")
    wanted = _filter(topic, group, transactional_id, cluster, principal, operation, host,
                     pattern, permission)
    clients = clients_for(brokers, props)
    deleted = results(clients, clients.admin().delete_acls(
        [wanted], request_timeout=clients.timeout))
    _show([b for bindings in deleted.values() for b in bindings], fmt)

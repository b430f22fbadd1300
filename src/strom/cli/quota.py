"""`strom quota`: client quotas, as `kafka-configs.sh --entity-type users/clients` manages
them.

An entity is `--user NAME` and/or `--client-id ID`, or their defaults (`--user-default`,
`--client-id-default`, Kafka's `--entity-default`). `set` adds or replaces quota keys
(`producer_byte_rate=1048576`), `delete` removes keys, `describe` lists the entities that
match (every one without options; `--strict` leaves out entities with more types than
asked, e.g. a (user, client id) pair when asking for a user).

confluent-kafka's AdminClient has no client quota calls, so these go over the Kafka
protocol (`strom.client.quotas`), with TLS and SASL from the same `-X` properties and
profiles as every other command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from strom.cli.common import (
    DEFAULT_BROKERS,
    Brokers,
    Format,
    OutputFormat,
    fail,
    reports_errors,
)

if TYPE_CHECKING:
    from strom.client.protocol_admin import ProtocolAdmin
    from strom.client.quotas import QuotaEntity

app = typer.Typer(help="Client quotas: byte rates per user and client id.",
                  no_args_is_help=True)

User = Annotated[str | None, typer.Option("--user", "-u", help="A user (principal name).",
                                          show_default=False)]
UserDefault = Annotated[bool, typer.Option("--user-default",
                                           help="The default user entity.")]
ClientId = Annotated[str | None, typer.Option("--client-id", "-c", help="A client id.",
                                              show_default=False)]
ClientIdDefault = Annotated[bool, typer.Option("--client-id-default",
                                               help="The default client-id entity.")]
QuotaProps = Annotated[
    list[str] | None,
    typer.Option("-X", metavar="KEY=VALUE",
                 help="client.id, request.timeout.ms, and librdkafka's security.protocol, "
                      "ssl.* and sasl.* properties."),
]
KEYS_HELP = ("producer_byte_rate, consumer_byte_rate (bytes/s), request_percentage, "
             "controller_mutation_rate")


def _admin(brokers: str, props: list[str] | None) -> ProtocolAdmin:
    from strom.cli.client import CLIENT_ID, connection_for
    from strom.client.protocol_admin import ProtocolAdmin

    connection = connection_for(brokers, props)
    return ProtocolAdmin.from_properties(connection.brokers, connection.properties,
                                        client_id=CLIENT_ID)


def _entity(user: str | None, user_default: bool, client_id: str | None,
            client_id_default: bool, *, required: bool) -> QuotaEntity:
    from strom.client.quotas import QuotaEntity

    if user is not None and user_default:
        fail("--user and --user-default name different entities", name="_INVALID_ARG")
    if client_id is not None and client_id_default:
        fail("--client-id and --client-id-default name different entities",
             name="_INVALID_ARG")
    entity = QuotaEntity.of(user=user, user_default=user_default, client_id=client_id,
                            client_id_default=client_id_default)
    if required and not entity.parts():
        fail("name an entity", name="_INVALID_ARG",
             hint="--user/--user-default and/or --client-id/--client-id-default")
    return entity


def _number(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        fail(f"{key}={text!r} is not a number", name="_INVALID_ARG")


@app.command("set")
@reports_errors
def set_(
    quotas: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...",
                                                help=f"Quotas to set: {KEYS_HELP}.")],
    user: User = None,
    user_default: UserDefault = False,
    client_id: ClientId = None,
    client_id_default: ClientIdDefault = False,
    validate_only: Annotated[bool, typer.Option(
        "--validate-only", help="Only check the change with the broker.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: QuotaProps = None,
) -> None:
    """Add or replace quotas of one entity (kafka-configs --alter --add-config)."""
    from strom.cli.common import parse_kv
    from strom.client import quotas as client_quotas

    entity = _entity(user, user_default, client_id, client_id_default, required=True)
    changes: dict[str, float | None] = {
        key: _number(key, value) for key, value in parse_kv(quotas, "KEY=VALUE").items()}
    with _admin(brokers, props) as admin:
        client_quotas.alter(admin, entity, changes, validate_only=validate_only)
    done = "validated" if validate_only else "set"
    print(f"{done} {', '.join(quotas)} for {entity}")


@app.command()
@reports_errors
def delete(
    keys: Annotated[list[str], typer.Argument(metavar="KEY...",
                                              help=f"Quotas to remove: {KEYS_HELP}.")],
    user: User = None,
    user_default: UserDefault = False,
    client_id: ClientId = None,
    client_id_default: ClientIdDefault = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: QuotaProps = None,
) -> None:
    """Remove quotas of one entity (kafka-configs --alter --delete-config)."""
    from strom.client import quotas as client_quotas

    entity = _entity(user, user_default, client_id, client_id_default, required=True)
    with _admin(brokers, props) as admin:
        client_quotas.alter(admin, entity, dict.fromkeys(keys))
    print(f"deleted {', '.join(keys)} of {entity}")


@app.command()
@reports_errors
def describe(
    user: User = None,
    user_default: UserDefault = False,
    client_id: ClientId = None,
    client_id_default: ClientIdDefault = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Only entities of exactly the types named.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: QuotaProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Quota entities and their quotas (kafka-configs --describe)."""
    from strom.cli.output import Output
    from strom.client import quotas as client_quotas

    entity = _entity(user, user_default, client_id, client_id_default, required=False)
    with _admin(brokers, props) as admin:
        entries = client_quotas.describe(admin, entity, strict=strict)
    rows = [_row(e.entity, e.values) for e in entries]
    rows.sort(key=lambda r: (str(r["user"]), str(r["client_id"])))
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table(["USER", "CLIENT-ID", "QUOTAS"], [
            [r["user"], r["client_id"],
             ", ".join(f"{k}={v:g}" for k, v in r["quotas"].items())] for r in rows])


def _row(entity: list[tuple[str, str | None]], values: dict[str, float]) -> dict[str, Any]:
    """One entity for output: absent types empty, defaults as Kafka prints them."""
    names = dict(entity)

    def shown(kind: str) -> str:
        if kind not in names:
            return ""
        name = names[kind]
        return "<default>" if name is None else name

    return {"user": shown("user"), "client_id": shown("client-id"),
            "quotas": dict(sorted(values.items()))}

"""`strom user scram`: SCRAM credentials, as `kafka-configs.sh --entity-type users
--alter --add-config 'SCRAM-SHA-256=[iterations=8192,password=...]'` manages them.

`set` sends AlterUserScramCredentials through the AdminClient (the client salts and
hashes the password; the broker keeps only the derived keys), `delete` removes one
mechanism's credential, `list` shows users with their mechanisms and iterations
(DescribeUserScramCredentials: never a secret). The password is read from a prompt or
from the first line of stdin (`--password-stdin`), never from the command line, where
`ps` and shell history would keep it.
"""

from __future__ import annotations

import sys
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

app = typer.Typer(help="Users: SCRAM credentials.", no_args_is_help=True)
scram = typer.Typer(help="SCRAM-SHA-256/512 credentials kept by the brokers.",
                    no_args_is_help=True)
app.add_typer(scram, name="scram")

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
Mechanism = Annotated[str, typer.Option("--mechanism", "-m",
                                        help="SCRAM-SHA-256 or SCRAM-SHA-512.")]
User = Annotated[str, typer.Argument(help="User name.", show_default=False)]


def _mechanism(name: str) -> Any:
    from confluent_kafka.admin import ScramMechanism

    upper = name.upper()
    if upper not in MECHANISMS:
        fail(f"unknown SCRAM mechanism {name!r}", name="_INVALID_ARG",
             hint="use SCRAM-SHA-256 or SCRAM-SHA-512")
    return getattr(ScramMechanism, upper.replace("-", "_"))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("the password is empty", name="_INVALID_ARG")
    return password


@scram.command("set")
@reports_errors
def set_(
    user: User,
    mechanism: Mechanism = "SCRAM-SHA-256",
    iterations: Annotated[int, typer.Option(help="4096 to 16384, as Kafka accepts.")] = 8192,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Create or replace USER's credential for one mechanism."""
    from confluent_kafka.admin import ScramCredentialInfo, UserScramCredentialUpsertion

    from strom.cli.client import clients_for
    from strom.client.admin import results

    info = ScramCredentialInfo(_mechanism(mechanism), iterations)
    password = _password(password_stdin)
    clients = clients_for(brokers, props)
    results(clients, clients.admin().alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, info, password.encode())],
        request_timeout=clients.timeout))
    print(f"set {mechanism.upper()} credential of {user} ({iterations} iterations)")


@scram.command()
@reports_errors
def delete(
    user: User,
    mechanism: Mechanism = "SCRAM-SHA-256",
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Delete USER's credential for one mechanism."""
    from confluent_kafka.admin import UserScramCredentialDeletion

    from strom.cli.client import clients_for
    from strom.client.admin import results

    clients = clients_for(brokers, props)
    results(clients, clients.admin().alter_user_scram_credentials(
        [UserScramCredentialDeletion(user, _mechanism(mechanism))],
        request_timeout=clients.timeout))
    print(f"deleted {mechanism.upper()} credential of {user}")


@scram.command("list")
@reports_errors
def list_(
    users: Annotated[list[str] | None, typer.Argument(
        help="Users to show (all when none).", show_default=False)] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Users with SCRAM credentials: mechanisms and iterations."""
    from strom.cli.client import clients_for
    from strom.cli.output import Output
    from strom.client.admin import results

    clients = clients_for(brokers, props)
    answer = clients.admin().describe_user_scram_credentials(
        users or None, request_timeout=clients.timeout)
    described = (clients.result(answer) if not isinstance(answer, dict)
                 else results(clients, answer))
    rows = [{"user": name, "mechanism": info.mechanism.name.replace("_", "-"),
             "iterations": info.iterations}
            for name, description in sorted(described.items())
            for info in description.scram_credential_infos]
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table(["USER", "MECHANISM", "ITERATIONS"],
                  [[r["user"], r["mechanism"], r["iterations"]] for r in rows])

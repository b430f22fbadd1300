"""The `strom` command: `strom server` runs a broker; `topic`, `group`, `cluster` and
`bench` are client tools built on confluent-kafka (one module per command group).

Command modules import only Typer at load time, so `strom server` starts as fast as
before; Rich and the Kafka client load inside the commands that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strom.cli import (
    acl,
    bench,
    cluster,
    group,
    quota,
    server_command,
    storage,
    streams,
    topic,
    txn,
    user,
)
from strom.cli.common import ClientConfigFile, ProfileName, select_connection
from strom.connect import cli as connect_cli

app = typer.Typer(
    name="strom",
    help="Strom: an event streaming platform that speaks the Kafka protocol.",
    no_args_is_help=True,
    add_completion=False,
)


app.add_typer(topic.app, name="topic")
app.add_typer(group.app, name="group")
app.add_typer(txn.app, name="txn")
app.add_typer(user.app, name="user")
app.add_typer(quota.app, name="quota")
app.add_typer(acl.app, name="acl")
app.add_typer(cluster.app, name="cluster")
app.add_typer(bench.app, name="bench")
app.add_typer(storage.app, name="storage")
app.add_typer(streams.app, name="streams")
app.add_typer(connect_cli.app, name="connect")


@app.callback()
def _root(profile: ProfileName = None, client_config: ClientConfigFile = None) -> None:
    """Strom: an event streaming platform that speaks the Kafka protocol."""
    select_connection(profile, client_config)


@app.command()
def server(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A Kafka-style server.properties file.",
                     exists=True, dir_okay=False),
    ] = None,
    override: Annotated[
        list[str] | None,
        typer.Option("--override", "-o", help="Set any property: key=value (repeatable)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: Annotated[str, typer.Option(help="text, or json: one object per line.")] = "text",
) -> None:
    """Run a broker. Without options: one node on localhost:9092, data in ./strom-data,
    metrics on http://localhost:9644/metrics."""
    raise typer.Exit(server_command.run(config, override or [], log_level, log_format))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

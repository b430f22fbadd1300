"""The `strom` command. `strom server` runs a broker; more commands join as they land."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strom.cli import server_command

app = typer.Typer(
    name="strom",
    help="Strom: an event streaming platform that speaks the Kafka protocol.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Strom: an event streaming platform that speaks the Kafka protocol."""


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
) -> None:
    """Run a broker. Without options: one node on localhost:9092, data in ./strom-data."""
    raise typer.Exit(server_command.run(config, override or [], log_level))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

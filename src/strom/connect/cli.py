"""`strom connect`: the Connect worker from the command line.

    strom connect standalone worker.properties [connector.properties ...]

This module imports Typer only; the runtime loads inside the command, so `strom` starts
as fast as before.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(name="connect", help="Kafka Connect workers (Kafka Connect's REST API, Python "
                  "connectors).", no_args_is_help=True, add_completion=False)


@app.command()
def standalone(
    worker_properties: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                      help="worker.properties (Kafka's names).")],
    connector_properties: Annotated[list[Path] | None, typer.Argument(
        exists=True, dir_okay=False, help="Connector .properties files to create at start.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run one worker as connect-standalone.sh does: offsets in a local file, REST API on
    `listeners` (http://:8083 by default)."""
    from strom.connect.runtime.standalone import run

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise typer.Exit(run(worker_properties, connector_properties or [], log_level.lower()))


@app.command()
def distributed(
    worker_properties: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Distributed mode (workers sharing group.id) is not built yet."""
    typer.echo("strom connect distributed: not implemented yet; use `strom connect standalone`", err=True)
    raise typer.Exit(2)

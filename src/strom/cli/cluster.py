"""`strom cluster`: brokers, controller, cluster id, broker configs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Brokers, controller and broker configs.", no_args_is_help=True)

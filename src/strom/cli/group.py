"""`strom group`: list, describe, seek, delete consumer groups."""

from __future__ import annotations

import typer

app = typer.Typer(help="Consumer groups: members, lag, offsets.", no_args_is_help=True)

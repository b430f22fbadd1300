"""`strom bench`: producer and consumer throughput and latency."""

from __future__ import annotations

import typer

app = typer.Typer(help="Throughput and latency benchmarks.", no_args_is_help=True)

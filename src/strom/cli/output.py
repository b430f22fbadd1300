"""Printing results: Rich tables and key/value sections for people, JSON for scripts.

Text output is plain columns in the style of rpk and kubectl (no borders, upper-case
headers), colourless when stdout is not a terminal and never wrapped into a pipe. JSON
output is one document on stdout, so `| jq` always works. Notes meant for people (dry
run reminders, progress) go to stderr and never mix with data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from strom.cli.common import OutputFormat


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(file=stream, highlight=False, soft_wrap=not tty,
                   width=None if tty else 100_000, emoji=False)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) if value else "-"
    return str(value)


class Output:
    def __init__(self, fmt: OutputFormat | str = OutputFormat.text) -> None:
        self.json = OutputFormat(fmt) is OutputFormat.json
        self._out: Any = None
        self._err: Any = None

    @property
    def console(self) -> Any:
        if self._out is None:
            self._out = _console()
        return self._out

    @property
    def err_console(self) -> Any:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    def emit_json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              title: str | None = None) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 3, 0, 0),
                      header_style="bold", title=None, expand=False)
        for column in columns:
            numeric = column.endswith(("OFFSET", "LAG", "PARTITION", "PARTITIONS", "REPLICAS",
                                       "WATERMARK", "ID", "PORT", "COUNT", "RECORDS"))
            table.add_column(column, justify="right" if numeric else "left",
                             no_wrap=True, overflow="ignore")
        for row in rows:
            table.add_row(*(Text(cell(v)) for v in row))
        if title:
            self.console.print(Text(title, style="bold"))
        self._print(table)

    def _print(self, renderable: Any) -> None:
        """Print to the terminal as is; into a pipe without the padding at line ends."""
        if sys.stdout.isatty():
            self.console.print(renderable)
            return
        import io

        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=100_000, highlight=False, color_system=None,
                emoji=False).print(renderable)
        sys.stdout.write("\n".join(line.rstrip() for line in buffer.getvalue().split("\n")))
        sys.stdout.flush()

    def section(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Aligned `KEY  value` lines, as rpk prints a summary."""
        from rich.text import Text

        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            self.console.print(Text(f"{key.ljust(width)}  {cell(value)}"))

    def blank(self) -> None:
        self.console.print()

    def note(self, text: str) -> None:
        """A remark for people, on stderr (never in the data on stdout)."""
        from rich.text import Text

        self.err_console.print(Text(text, style="dim" if sys.stderr.isatty() else ""))

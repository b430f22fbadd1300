"""`strom storage`: offline tools for a broker's data directories.

`verify` checks every segment and index like `kafka-dump-log --deep-iteration` (see
`strom.storage.verify` for the checks). It reads only, so it is safe on a live broker's
data, but a segment being appended to may show a torn last batch: run it on a stopped
broker, or on a copy, for a verdict. Exit status 1 when anything is wrong, 0 otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from strom.cli.common import Format, OutputFormat, fail, reports_errors

app = typer.Typer(help="Offline checks of log directories.", no_args_is_help=True)

_KIND = {"log": "log", "index": "index", "timeindex": "timeindex",
         "corrupt-copy": "kept aside"}


@app.command()
@reports_errors
def verify(
    path: Annotated[Path, typer.Argument(
        help="A log dir (as in log.dirs), one <topic>-<partition> dir, or one .log file.")],
    fmt: Format = OutputFormat.text,
    max_decompressed: Annotated[int, typer.Option(
        "--max-decompressed", min=1,
        help="Largest decompressed batch, as strom.decompression.max.bytes.")] = 64 << 20,
) -> None:
    """Check every segment offline: batch headers, CRCs, offsets, every record decoded,
    index and time index entries pointing at batch starts. Exit 1 on any problem."""
    from strom.cli.output import Output
    from strom.storage.verify import verify as run

    try:
        report = run(path, max_decompressed)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), name="INVALID_ARGUMENT")
    out = Output(fmt)
    if out.json:
        out.emit_json(report.to_json())
    else:
        _print_text(out, report, path)
    raise typer.Exit(1 if report.problems else 0)


def _print_text(out: Any, report: Any, root: Path) -> None:
    rows = []
    for f in report.files:
        offsets = (f"{f.first_offset}..{f.last_offset}"
                   if f.first_offset is not None else None)
        status = f"{len(f.problems)} PROBLEM(S)" if f.problems else "ok"
        count = f.batches if f.kind == "log" else f.entries
        records = f.records if f.kind == "log" else None
        rows.append((_relative(f.path, root), _KIND.get(f.kind, f.kind), count, records,
                     offsets, f.size, status))
    out.table(["FILE", "KIND", "BATCHES/ENTRIES", "RECORDS", "OFFSETS", "BYTES", "STATUS"],
              rows)
    out.blank()
    for f in report.files:
        for problem in f.problems:
            out.console.print(f"{_relative(f.path, root)}: byte {problem.position}: "
                              f"{problem.message}", markup=False, highlight=False)
        for note in f.notes:
            out.note(f"{_relative(f.path, root)}: {note}")
    files = sum(1 for f in report.files if f.kind == "log")
    verdict = f"{report.problems} problem(s)" if report.problems else "no problems"
    out.console.print(f"{files} segment(s) checked, {verdict}", markup=False)
    if report.problems:
        out.note(REPAIR_HINT)


REPAIR_HINT = (
    "To repair: stop the broker, delete recovery-point-offset-checkpoint and "
    ".kafka_cleanshutdown in the log dir, and start it: recovery then rescans every "
    "segment, cuts out damaged batches (keeping each original as *.corrupt) and rebuilds "
    "the indexes. In a cluster, followers fetch what was cut out from the leader again."
)


def _relative(path: Path, root: Path) -> str:
    base = root.parent if root.is_file() else root
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)

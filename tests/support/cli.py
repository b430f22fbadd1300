"""Run the `strom` command as a user would: a child process, stdout and stderr captured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

CLI_TIMEOUT_S = 90.0


def strom(*args: str, input: bytes | str | None = None, timeout: float = CLI_TIMEOUT_S,
          check: bool = True, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    """`python -m strom ARGS`; with `check`, a non-zero exit fails the test with its output."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "strom", *args], input=data, capture_output=True,
        timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"))
    if check and result.returncode != 0:
        raise AssertionError(f"strom {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def strom_json(*args: str, **kwargs: Any) -> Any:
    """Run a listing command with `--format json` and parse what it printed."""
    return json.loads(strom(*args, "--format", "json", **kwargs).stdout)


def strom_bytes(*args: str, input: bytes | None = None, timeout: float = CLI_TIMEOUT_S
                ) -> bytes:
    """stdout as bytes (consume output may be binary)."""
    proc = subprocess.run([sys.executable, "-m", "strom", *args], input=input,
                          capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"strom {' '.join(args)} exited {proc.returncode}\n"
                             f"stderr:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    return proc.stdout


def table(text: str) -> list[dict[str, str]]:
    """Rows of a plain text table (upper-case header, columns split on 2+ spaces)."""
    import re

    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=False))
            for line in lines[1:]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

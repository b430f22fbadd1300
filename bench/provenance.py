"""Which Strom a benchmark or soak report was made with, for the reports' headers."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_describe() -> str:
    """`git describe --always --dirty` of the working tree, or "unknown" outside a checkout."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"

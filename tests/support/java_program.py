"""A Java test program (compiled into the interop classes, run on Kafka 4.4's jars) that
prints one line per event, and the waits on what it printed.

The interop suites' consumer-protocol members and share consumers are such programs: the
test reads their lines (ASSIGNED ..., RECORD ...) while they run, SIGKILLs them for
failover cases, and on a timeout shows what each printed last.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class JavaProgram:
    """One running Java program and the lines it printed so far."""

    def __init__(self, classes: Path, lib: Path, main: str, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["java", "-Xmx256m",
             f"-Dlog4j2.configurationFile={lib.parent / 'tools-log4j2.properties'}",
             "-cp", f"{classes}:{lib / '*'}", main, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        """SIGKILL if still running (these programs hold nothing worth a clean exit)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def wait_for(what: str, done: Callable[[], bool], programs: Sequence[JavaProgram],
             wait_s: float) -> None:
    """Poll `done` until it holds; on a timeout, fail with each program's last lines."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    tails = "\n\n".join("\n".join(p.lines[-30:]) for p in programs)
    raise AssertionError(f"timed out waiting for {what}; program output:\n{tails}")

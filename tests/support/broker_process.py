"""Run a real Strom broker as a child process for tests: start, kill, restart, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.1, detail: Callable[[], str] | None = None) -> Any:
    """Poll `predicate` until it returns something truthy; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"; {detail()}" if detail is not None else ""
            raise TimeoutError(f"not reached within {timeout}s: {what}{extra}")
        time.sleep(interval)


def kill_process(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL,
                 wait_s: float = 60) -> None:
    """Signal a child that is still running (SIGKILL: no clean shutdown) and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(wait_s)


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 30) -> int:
    """SIGTERM, then SIGKILL if the child has not exited within `grace_s`; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return int(proc.wait(30))


class BrokerProcess:
    """A `strom server` child process bound to a loopback port with its own data dir."""

    def __init__(self, data_dir: Path, port: int | None = None,
                 overrides: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.overrides = dict(overrides or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        props = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.data_dir),
            "strom.metrics.port": "0",  # never the fixed default port: tests run in parallel
            **self.overrides,
        }
        cmd = [sys.executable, "-m", "strom", "server"]
        for key, value in props.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd

    def start(self) -> BrokerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"broker did not start; log:\n{self.log_text()}") from None
        return self

    @property
    def metrics_url(self) -> str:
        """http://host:port/metrics of this broker, from the line `strom server` prints."""
        import re

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = re.findall(r"metrics on (https?://\S+/metrics)", self.log_text())
            if found:
                return found[-1]
            time.sleep(0.05)
        raise RuntimeError(f"the broker printed no metrics address; log:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            kill_process(self.proc, sig)

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM); returns the exit code."""
        return None if self.proc is None else stop_process(self.proc)

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

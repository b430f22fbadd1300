"""A private Mosquitto for tests: a free loopback port, a temporary config, persistence on.

Mosquitto (Debian's /usr/sbin/mosquitto) runs as a child process with a config written
into a temporary directory: one listener on 127.0.0.1, anonymous or password login
(`mosquitto_passwd` hashes the file), optional TLS with the test PKI of `tls_certs`, and
persistence in the same directory so a restart keeps persistent sessions and their
queued QoS 1/2 messages. Run as root, Mosquitto would drop to the `mosquitto` user and
lose access to the directory, so `user` names whoever runs the tests: this works as root
and as anyone else.

    with Mosquitto(tmp_path) as mqtt:
        mqtt.port; mqtt.restart(); mqtt.stop()

Use the `mosquitto` fixture of tests/conftest.py-free modules by importing `mosquitto_fixture`,
or build one directly.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from strom.testing import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).exists()


class Mosquitto:
    """One Mosquitto process; `restart()` keeps its port, config and persistence file."""

    def __init__(self, directory: Path, *, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        """`users`: name → password (no anonymous login then); `tls`: (CA, certificate,
        key) PEM files, which makes the listener TLS-only."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = users
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self.config = self._write_config()

    @property
    def uri(self) -> str:
        return f"{'ssl' if self.tls else 'tcp'}://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        lines = [f"listener {self.port} 127.0.0.1",
                 f"user {pwd.getpwuid(os.getuid()).pw_name}",
                 "persistence true", f"persistence_location {self.dir}/",
                 "autosave_interval 1",
                 # queue without limit for persistent sessions: a test counts every message
                 "max_queued_messages 0", "max_inflight_messages 100",
                 f"log_dest file {self.dir / 'mosquitto.log'}", "log_type all"]
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = self.dir / "passwords"
            passwords.write_text("", encoding="utf-8")
            passwords.chmod(0o600)
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), name, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        if self.tls is not None:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        path = self.dir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start(self) -> Mosquitto:
        log = open(self.dir / "stdout.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log,
                                        stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file before it exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, size: int = 4000) -> str:
        path = self.dir / "mosquitto.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        out = self.dir / "stdout.log"
        text += out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
        return text[-size:]

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started anonymous Mosquitto with persistence (import this name into a test module
    or a conftest.py to use it)."""
    if not mosquitto_available():
        pytest.skip("mosquitto is not installed")
    with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker

"""A private PostgreSQL server for tests: initdb into a temp dir, own loopback port.

The Connect PostgreSQL connectors are tested against a real server, not a mock. This
module starts one from the distribution's binaries (Debian's /usr/lib/postgresql/<v>/bin,
or `initdb`/`postgres` on PATH) with `wal_level=logical` (for the CDC source's logical
decoding) and durability turned off (`fsync`, `full_page_writes`): a test server is thrown
away, so speed wins. Commits stay synchronous: logical decoding reads only flushed WAL, so
with `synchronous_commit=off` a change would reach the CDC source up to 200 ms late.

PostgreSQL refuses to run as root. CI runs as root, so there the data dir is handed to
the `postgres` system user (or `nobody`) and the server process drops to it
(`subprocess.Popen(user=...)`); as any other user it runs as that user. The data dir is
made with `tempfile.mkdtemp` under the system temp dir, not under pytest's `tmp_path`,
whose 0700 parents the unprivileged user could not traverse.

    with PostgresServer() as pg:
        pg.create_database("shop")
        psycopg.connect(pg.conninfo("shop"))
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from strom.testing.broker import free_port

SUPERUSER = "postgres"


def find_bin_dir() -> Path:
    """The directory of `initdb` and `postgres`: the newest Debian install, else PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb): apt-get install postgresql")
    return Path(initdb).parent


def _version_key(path: str) -> int:
    version = Path(path).parent.name
    return int(version) if version.isdigit() else 0


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


class PostgresServer:
    """One PostgreSQL server process on 127.0.0.1 with a throw-away data dir.

    Superuser `postgres`, trust authentication on loopback only; `conninfo(db)` and
    `url(db)` are what clients and connector configs use.
    """

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.bin_dir = find_bin_dir()
        self.user = _run_as()
        self.settings = {"wal_level": "logical", "max_replication_slots": "20",
                         "max_wal_senders": "20", "fsync": "off",
                         "full_page_writes": "off", "shared_buffers": "32MB",
                         "max_connections": "100", "TimeZone": "UTC", **(settings or {})}
        self.data_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb, start, and wait until the server accepts connections."""
        self.data_dir = Path(tempfile.mkdtemp(prefix="strom-pg-"))
        try:
            self._initdb()
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _user_kwargs(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        assert self.data_dir is not None
        cluster = self.data_dir / "data"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        result = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(cluster), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            capture_output=True, cwd=self.data_dir, check=False, **self._user_kwargs())
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")

    def _launch(self) -> None:
        assert self.data_dir is not None
        self.port = free_port(self.host)
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir / "data"),
                "-c", f"port={self.port}", "-c", f"listen_addresses={self.host}",
                "-c", f"unix_socket_directories={self.data_dir}"]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.data_dir, start_new_session=True,
                                            **self._user_kwargs())
        finally:
            log.close()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with psycopg.connect(self.conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        if self.data_dir is None or not (self.data_dir / "server.log").exists():
            return ""
        return (self.data_dir / "server.log").read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients disconnected, no checkpoint wait), then remove
        the data dir; a server that does not stop in 30 s is killed."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what clients use -------------------------------------------------------------

    def conninfo(self, database: str = "postgres") -> str:
        """A libpq connection string for `database` as the superuser."""
        return f"host={self.host} port={self.port} dbname={database} user={SUPERUSER}"

    def url(self, database: str = "postgres") -> str:
        """The same as a URL (`postgresql://postgres@127.0.0.1:port/db`), as connector
        configs take it in `connection.url`."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create `name` (dropping an earlier one) and return its conninfo."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.conninfo(name)

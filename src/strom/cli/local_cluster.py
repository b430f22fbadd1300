"""`strom cluster up`: a ZooKeeper and N brokers on loopback ports, for development.

ZooKeeper comes from the system (Debian's `zookeeper` package: `/usr/share/java`), run
with a generated `zoo.cfg`; each broker is a `strom server` child process with its own
data directory under one base directory. Everything stops on Ctrl-C or SIGTERM, and the
data stays, so `strom cluster up` again resumes the same cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ZOOKEEPER_JARS = (Path("/usr/share/java/zookeeper.jar"), Path("/usr/share/java"))


class ClusterError(RuntimeError):
    pass


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ClusterError(f"{what} did not open port {port} within {timeout:.0f} s")


def zookeeper_classpath() -> str:
    jar, lib = ZOOKEEPER_JARS
    if not jar.exists():
        raise ClusterError("ZooKeeper is not installed: apt-get install -y zookeeper")
    conf = Path("/etc/zookeeper/conf")
    return ":".join([str(conf), str(jar), f"{lib}/*"])


@dataclass
class LocalCluster:
    base_dir: Path
    brokers: int = 3
    zookeeper_port: int = 2181
    first_broker_port: int = 9092
    log_level: str = "info"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.first_broker_port + i}" for i in range(self.brokers))

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._start_zookeeper()
        for index in range(self.brokers):
            self._start_broker(index + 1, self.first_broker_port + index)
        for index in range(self.brokers):
            _wait_for_port(self.first_broker_port + index, 30, f"broker {index + 1}")

    def _start_zookeeper(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise ClusterError("java is not installed: apt-get install -y default-jre-headless")
        data = self.base_dir / "zookeeper"
        data.mkdir(exist_ok=True)
        config = self.base_dir / "zoo.cfg"
        config.write_text(
            f"tickTime=500\ndataDir={data}\nclientPort={self.zookeeper_port}\n"
            "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
            "4lw.commands.whitelist=ruok\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n"
        )
        log = open(self.base_dir / "zookeeper.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes.append(subprocess.Popen(
            [java, "-Xmx256m", "-cp", zookeeper_classpath(),
             "org.apache.zookeeper.server.ZooKeeperServerMain", str(config)],
            stdout=log, stderr=subprocess.STDOUT,
        ))
        _wait_for_port(self.zookeeper_port, 30, "ZooKeeper")

    def _start_broker(self, broker_id: int, port: int) -> None:
        overrides = {
            "broker.id": str(broker_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "log.dirs": str(self.base_dir / f"broker-{broker_id}"),
            "zookeeper.connect": f"127.0.0.1:{self.zookeeper_port}/strom",
            "zookeeper.session.timeout.ms": "6000",
            "strom.metrics.port": "0",
        }
        command = [sys.executable, "-m", "strom", "server", "--log-level", self.log_level]
        for key, value in overrides.items():
            command += ["--override", f"{key}={value}"]
        log = open(self.base_dir / f"broker-{broker_id}.log", "ab")  # noqa: SIM115
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                               env={**os.environ, "PYTHONUNBUFFERED": "1"}))

    def stop(self) -> None:
        for proc in reversed(self.processes):  # brokers first, ZooKeeper last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.processes.clear()

    def wait(self) -> None:
        """Block until a signal arrives or a process exits."""
        stop = {"flag": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["flag"]:
            if any(p.poll() is not None for p in self.processes):
                raise ClusterError("a cluster process exited; see the logs in "
                                   f"{self.base_dir}")
            time.sleep(0.5)

"""Apache Kafka as a reference peer: its jars from Maven Central, and a real KRaft broker.

Nothing of Kafka is committed to this repository. `tools/kafka-pom.xml` names the
artifacts (kafka_2.13, kafka-clients, kafka-tools, kafka-streams and the log4j2 slf4j
binding Kafka's own distribution ships); `ensure_jars()` has Maven copy them and their
dependencies into a cache directory outside the repo,
``$STROM_CACHE_DIR`` or ``~/.cache/strom``, as ``kafka-<version>/lib``. A present,
complete cache is reused without running Maven.

`KafkaBroker` runs a single-node KRaft broker (combined broker and controller roles)
on loopback ports from those jars: it writes `server.properties`, formats the storage
with `kafka.tools.StorageTool`, starts `kafka.Kafka` with Kafka's default JVM options
(heap 1 GiB, G1) and waits until the broker answers a Metadata request.

    python tools/kafka_dist.py fetch            # fetch the jars, print the lib directory
    python tools/kafka_dist.py classpath        # print a java -cp value
    python tools/kafka_dist.py broker [--port P]  # run a broker until Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).resolve().parent / "kafka-pom.xml"
COMPLETE_MARKER = ".complete"

# kafka-server-start.sh's defaults (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS)
BROKER_JVM_OPTS = [
    "-Xmx1g", "-Xms1g", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]
# Short-lived command-line tools: C1 only and the serial collector start ~40% cheaper in
# CPU than kafka-run-class.sh's G1 defaults, which matters on a 2-core machine.
TOOL_JVM_OPTS = ["-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                 "-Djava.awt.headless=true"]
# kafka-producer-perf-test.sh / kafka-consumer-perf-test.sh: -Xmx512M and
# kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS, for benchmarks
PERF_JVM_OPTS = ["-Xmx512m", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                 "-Djava.awt.headless=true"]

TOOLS_LOG4J2 = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
"""

BROKER_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = info
"""


class KafkaDistError(RuntimeError):
    pass


def cache_root() -> Path:
    env = os.environ.get("STROM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "strom"


def dist_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / f"kafka-{version}"


def java_available() -> bool:
    return shutil.which("java") is not None


def javac_available() -> bool:
    return shutil.which("javac") is not None


def jars_present(version: str = KAFKA_VERSION) -> bool:
    return (dist_dir(version) / "lib" / COMPLETE_MARKER).exists()


def ensure_jars(version: str = KAFKA_VERSION, quiet: bool = True) -> Path:
    """Return the lib directory of Kafka `version`, fetching it with Maven if absent."""
    base = dist_dir(version)
    lib = base / "lib"
    if (lib / COMPLETE_MARKER).exists():
        _write_tool_configs(base)
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaDistError("mvn is not installed (apt-get install -y maven)")
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=base))
    cmd = [mvn, "-B", "-f", str(POM), f"-Dkafka.version={version}",
           "dependency:copy-dependencies", f"-DoutputDirectory={staging}"]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise KafkaDistError(f"mvn failed ({result.returncode}):\n{result.stdout[-4000:]}"
                             f"\n{result.stderr[-4000:]}")
    if not (staging / f"kafka_2.13-{version}.jar").exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise KafkaDistError(f"mvn copied no kafka_2.13-{version}.jar into {staging}")
    (staging / COMPLETE_MARKER).write_text(version + "\n")
    if lib.exists():  # an incomplete earlier attempt
        shutil.rmtree(lib)
    staging.rename(lib)
    _write_tool_configs(base)
    return lib


def _write_tool_configs(base: Path) -> None:
    path = base / "tools-log4j2.properties"
    if not path.exists() or path.read_text() != TOOLS_LOG4J2:
        path.write_text(TOOLS_LOG4J2)


def classpath(version: str = KAFKA_VERSION) -> str:
    return str(ensure_jars(version) / "*")


def tool_command(main_class: str, *args: str, version: str = KAFKA_VERSION,
                 jvm_opts: list[str] | None = None) -> list[str]:
    """A `java` command line running one of Kafka's tools (e.g.
    org.apache.kafka.tools.TopicCommand) the way kafka-run-class.sh would."""
    lib = ensure_jars(version)
    log4j = lib.parent / "tools-log4j2.properties"
    return ["java", *(jvm_opts if jvm_opts is not None else TOOL_JVM_OPTS),
            f"-Dlog4j2.configurationFile={log4j}", "-cp", str(lib / "*"), main_class, *args]


def run_tool(main_class: str, *args: str, timeout: float = 120, check: bool = False,
             input: str | None = None, version: str = KAFKA_VERSION,
             jvm_opts: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(tool_command(main_class, *args, version=version, jvm_opts=jvm_opts),
                            input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise KafkaDistError(f"{main_class} {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_cluster_id() -> str:
    """Kafka's cluster id format: a random UUID, URL-safe base64 without padding; like
    Kafka's Uuid.randomUuid, never one starting with '-' (it would parse as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _metadata_brokers(port: int, timeout: float = 1.0) -> int:
    """Send Metadata v1 (no topics) over a raw socket; return the number of brokers."""
    client_id = b"strom-ready"
    # header v1: api_key, api_version, correlation_id, client_id; body: topics = null (-1)
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        head = _recv_exact(s, 4)
        data = _recv_exact(s, struct.unpack(">i", head)[0])
    # correlation_id, then brokers array count
    return int(struct.unpack_from(">i", data, 4)[0])


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def wait_ready(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise KafkaDistError(f"broker exited with {proc.returncode} before it was ready")
        try:
            if _metadata_brokers(port) > 0:
                return
        except (OSError, ConnectionError, struct.error) as exc:
            last = exc
        time.sleep(0.05)
    raise KafkaDistError(f"broker on port {port} not ready after {timeout}s ({last})")


class KafkaBroker:
    """A single-node KRaft Apache Kafka broker (broker + controller) on loopback."""

    def __init__(self, work_dir: Path | None = None, port: int | None = None,
                 controller_port: int | None = None, version: str = KAFKA_VERSION,
                 overrides: dict[str, str] | None = None,
                 jvm_opts: list[str] | None = None) -> None:
        self.version = version
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="kafka-ref-"))
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.overrides = dict(overrides or {})
        self.jvm_opts = list(jvm_opts if jvm_opts is not None else BROKER_JVM_OPTS)
        self.proc: subprocess.Popen[bytes] | None = None
        self.cluster_id = new_cluster_id()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def server_log(self) -> Path:
        return self.work_dir / "server.log"

    def properties(self) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            **self.overrides,
        }

    def _java(self, main_class: str, *args: str, jvm_opts: list[str]) -> list[str]:
        lib = ensure_jars(self.version)
        return ["java", *jvm_opts, f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.work_dir}", "-cp", str(lib / "*"), main_class, *args]

    def prepare(self) -> None:
        """Write the configs and format the storage (once per work dir)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        props = self.work_dir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        (self.work_dir / "log4j2.properties").write_text(
            BROKER_LOG4J2.format(log_file=self.server_log))
        if (self.log_dir / "meta.properties").exists():
            return
        fmt = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c",
                       str(props), jvm_opts=TOOL_JVM_OPTS),
            capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            raise KafkaDistError(f"StorageTool format failed:\n{fmt.stdout}\n{fmt.stderr}")

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the broker process without waiting (for timing start-up)."""
        self.prepare()
        out = open(self.work_dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.work_dir / "server.properties"),
                       jvm_opts=self.jvm_opts),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return self.proc

    def start(self, timeout: float = 90) -> KafkaBroker:
        self.launch()
        try:
            wait_ready(self.port, timeout, self.proc)
        except KafkaDistError:
            self.stop()
            raise KafkaDistError(f"Kafka did not start; log tail:\n{self.log_tail()}") from None
        return self

    def log_tail(self, n: int = 60) -> str:
        texts = []
        for p in (self.work_dir / "stdout.log", self.server_log):
            if p.exists():
                texts.append("\n".join(p.read_text(errors="replace").splitlines()[-n:]))
        return "\n".join(texts)

    def stop(self, timeout: float = 60) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=KAFKA_VERSION, help="Kafka version")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="fetch the jars into the cache; print the lib directory")
    sub.add_parser("classpath", help="print a java -cp value")
    b = sub.add_parser("broker", help="run a single-node KRaft broker until Ctrl-C")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--controller-port", type=int, default=None)
    b.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch":
            print(ensure_jars(args.version, quiet=False))
        elif args.cmd == "classpath":
            print(classpath(args.version))
        else:
            broker = KafkaBroker(args.dir, args.port, args.controller_port, args.version)
            t0 = time.perf_counter()
            broker.start()
            print(f"Kafka {args.version} ready on {broker.bootstrap} after "
                  f"{time.perf_counter() - t0:.1f}s (work dir {broker.work_dir})", flush=True)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            broker.cleanup()
    except KafkaDistError as exc:
        print(f"kafka_dist: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

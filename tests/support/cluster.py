"""A real ZooKeeper and several Strom brokers as child processes, for cluster tests.

`ZooKeeperServer` runs the ZooKeeper from Debian's `zookeeper` package (a JVM) on a free
loopback port with its own data dir, and is ready once it answers `ruok` with `imok`.
`Cluster` runs N `strom server` processes (each a `BrokerProcess` with its own port,
data dir and broker.id) joined through one fresh ZooKeeper chroot, and gives tests the
faults and the questions they need:

* faults: `kill` (SIGKILL), `pause` (SIGSTOP) / `resume` (SIGCONT), `stop` (SIGTERM),
  `start`, `restart`;
* questions, answered by a live broker over the Kafka protocol (Metadata, asked of one
  chosen broker with a raw socket so a paused broker can never hang the question):
  `controller_id`, `partitions` (leader, epoch, replicas, ISR), `leader_of`, `isr_of`,
  `coordinator_of` (FindCoordinator);
  and, for the authoritative view, `zk_partitions` read from ZooKeeper itself;
* waits with deadlines: `wait_for_leader`, `wait_for_isr`, `wait_for_controller`.

`read_log` decodes one partition's segment files in a (stopped) broker's data dir, so a
test can compare replicas' logs byte-for-byte at the record level.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from strom.protocol.api_keys import ApiKey
from strom.protocol.records import decode_records, scan_batches
from support.broker_process import BrokerProcess, free_port, wait_until
from support.raw_client import RawClient

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/*"
SESSION_TIMEOUT_MS = 6000
METADATA, FIND_COORDINATOR = ApiKey.METADATA, ApiKey.FIND_COORDINATOR
# librdkafka logs (connection refused to a killed broker, ...) go to logging, which pytest
# captures, instead of stderr.
CLIENT_LOG = logging.getLogger("librdkafka")


def zookeeper_available() -> str | None:
    """None when ZooKeeper can run here, else why not."""
    if shutil.which("java") is None:
        return "no java (apt-get install -y default-jre-headless)"
    if not ZK_JAR.exists():
        return f"no {ZK_JAR} (apt-get install -y zookeeper)"
    return None




# --- ZooKeeper ---------------------------------------------------------------------------


class ZooKeeperServer:
    """A standalone ZooKeeper 3.8 (Debian's package) on a free loopback port."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = base_dir
        self.port = port or free_port()
        self.data_dir = base_dir / "zk-data"
        self.config_path = base_dir / "zoo.cfg"
        self.log_path = base_dir / "zookeeper.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def connect(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ZooKeeperServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join([
            "tickTime=500",
            f"dataDir={self.data_dir}",
            f"clientPort={self.port}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok",
            "minSessionTimeout=1000",
            "maxSessionTimeout=60000",
            "maxClientCnxns=0",
            "",
        ]))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", ZK_CLASSPATH,
                 "-Dzookeeper.log.dir=" + str(self.base_dir),
                 "org.apache.zookeeper.server.ZooKeeperServerMain", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.base_dir,
            )
        deadline = time.monotonic() + timeout
        while not self.ruok():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ZooKeeper did not start; log:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)
        return self

    def ruok(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"ruok")
                return sock.recv(16) == b"imok"
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- metadata as the brokers report it ---------------------------------------------------


@dataclass(frozen=True)
class PartitionState:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    error: int = 0


@dataclass(frozen=True)
class ClusterView:
    """One broker's answer to Metadata."""

    asked: int
    controller_id: int
    brokers: tuple[int, ...]
    topics: Mapping[str, Mapping[int, PartitionState]]


def metadata(bootstrap: str, topics: Iterable[str] | None = None,
             timeout: float = 5.0) -> ClusterView:
    """Metadata v12 from exactly the broker at `bootstrap` (no client-side routing)."""
    names = None if topics is None else [{"name": t, "topic_id": None} for t in topics]
    with RawClient(bootstrap, timeout=timeout) as client:
        body = client.request(METADATA, 12, topics=names, allow_auto_topic_creation=False,
                              include_topic_authorized_operations=False).body
    view: dict[str, dict[int, PartitionState]] = {}
    for topic in body.topics:
        view[str(topic.name)] = {
            int(p.partition_index): PartitionState(
                int(p.partition_index), int(p.leader_id), int(p.leader_epoch),
                tuple(int(r) for r in p.replica_nodes), tuple(int(r) for r in p.isr_nodes),
                int(p.error_code))
            for p in topic.partitions
        }
    return ClusterView(-1, int(body.controller_id), tuple(sorted(int(b.node_id) for b in body.brokers)),
                       view)


# --- the cluster -------------------------------------------------------------------------


class Cluster:
    """N Strom brokers in one fresh ZooKeeper chroot."""

    def __init__(self, zk: ZooKeeperServer, base_dir: Path, size: int = 3, *,
                 overrides: Mapping[str, str] | None = None,
                 session_timeout_ms: int = SESSION_TIMEOUT_MS,
                 chroot: str | None = None) -> None:
        self.zk = zk
        self.base_dir = base_dir
        self.chroot = chroot or f"/strom-{uuid.uuid4().hex[:10]}"
        self.session_timeout_ms = session_timeout_ms
        self.paused: set[int] = set()
        common = {
            "zookeeper.connect": f"{zk.connect}{self.chroot}",
            "zookeeper.session.timeout.ms": str(session_timeout_ms),
            "strom.metrics.port": "-1",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": str(min(3, size)),
            "offsets.topic.num.partitions": "3",
            **(overrides or {}),
        }
        self.brokers: dict[int, BrokerProcess] = {}
        for broker_id in range(1, size + 1):
            self.brokers[broker_id] = BrokerProcess(
                base_dir / f"broker{broker_id}",
                overrides={"broker.id": str(broker_id), **common},
            )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Cluster:
        with ThreadPoolExecutor(len(self.brokers)) as pool:  # Python start-up dominates
            list(pool.map(self.start_broker, self.brokers))
        self.wait_for_brokers(set(self.brokers))
        return self

    def start_broker(self, broker_id: int) -> BrokerProcess:
        # A broker killed with SIGKILL comes back only once its old ZooKeeper session has
        # expired; BrokerProcess.start waits for the listener, which opens after that.
        proc = self.brokers[broker_id]
        self.paused.discard(broker_id)
        return proc.start()

    def shutdown(self) -> dict[int, int | None]:
        """Stop every broker gracefully; returns each running broker's exit code."""
        codes = {}
        for broker_id, proc in self.brokers.items():
            if broker_id in self.paused:
                self.resume(broker_id)
            if proc.is_alive():
                codes[broker_id] = proc.stop()
        return codes

    def kill(self, broker_id: int) -> None:
        """SIGKILL: no clean shutdown, the ZooKeeper session lingers until it times out."""
        if broker_id in self.paused:
            self.resume(broker_id)
        self.brokers[broker_id].kill(signal.SIGKILL)

    def stop(self, broker_id: int) -> int | None:
        if broker_id in self.paused:
            self.resume(broker_id)
        return self.brokers[broker_id].stop()

    def restart(self, broker_id: int) -> BrokerProcess:
        self.stop(broker_id)
        return self.start_broker(broker_id)

    def pause(self, broker_id: int) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        proc = self.brokers[broker_id].proc
        assert proc is not None and proc.poll() is None, f"broker {broker_id} is not running"
        os.kill(proc.pid, signal.SIGSTOP)
        self.paused.add(broker_id)

    def resume(self, broker_id: int) -> None:
        proc = self.brokers[broker_id].proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        self.paused.discard(broker_id)

    # --- addresses --------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return ",".join(p.bootstrap for p in self.brokers.values())

    def running(self) -> list[int]:
        """Brokers whose process is alive and not paused."""
        return [b for b, p in self.brokers.items() if p.is_alive() and b not in self.paused]

    def data_dir(self, broker_id: int) -> Path:
        return self.brokers[broker_id].data_dir

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- broker {b} log (tail) ---\n{p.log_text()[-tail:]}"
                         for b, p in self.brokers.items())

    # --- topics -----------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 3, replication_factor: int = 3,
                     configs: Mapping[str, str] | None = None) -> None:
        """Create a topic and wait until every running broker reports every partition
        led and fully in sync."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": CLIENT_LOG})
        futures = admin.create_topics([NewTopic(name, partitions, replication_factor,
                                                config=dict(configs or {}))],
                                      operation_timeout=30)
        for future in futures.values():
            future.result(60)
        states = self.zk_partitions(name)
        for p, state in states.items():
            self.wait_for_isr(name, [p], state.replicas)

    # --- questions --------------------------------------------------------------------------

    def view(self, topics: Iterable[str] | None = None, via: int | None = None) -> ClusterView:
        """Metadata from one running broker (`via`, or the first that answers)."""
        candidates = [via] if via is not None else self.running()
        last: Exception | None = None
        for broker_id in candidates:
            try:
                view = metadata(self.brokers[broker_id].bootstrap, topics)
                return ClusterView(broker_id, view.controller_id, view.brokers, view.topics)
            except Exception as exc:  # noqa: BLE001 - a broker dying under us; any failure means try again
                last = exc
        raise RuntimeError(f"no running broker answered Metadata: {last!r}")

    def controller_id(self) -> int:
        return self.view([]).controller_id

    def partitions(self, topic: str, via: int | None = None) -> dict[int, PartitionState]:
        return dict(self.view([topic], via).topics.get(topic, {}))

    def leader_of(self, topic: str, partition: int, via: int | None = None) -> int:
        state = self.partitions(topic, via).get(partition)
        return -1 if state is None else state.leader

    def isr_of(self, topic: str, partition: int, via: int | None = None) -> tuple[int, ...]:
        state = self.partitions(topic, via).get(partition)
        return () if state is None else state.isr

    def coordinator_of(self, group: str, via: int | None = None) -> int:
        """The group coordinator's broker id per FindCoordinator, or -1 (not available)."""
        for broker_id in [via] if via is not None else self.running():
            try:
                with RawClient(self.brokers[broker_id].bootstrap, timeout=5.0) as client:
                    body = client.request(FIND_COORDINATOR, 4, key_type=0,
                                          coordinator_keys=[group]).body
            except Exception:  # noqa: BLE001 - a broker dying under us; any failure means try again
                continue
            entry = body.coordinators[0]
            return int(entry.node_id) if int(entry.error_code) == 0 else -1
        return -1

    def wait_for_coordinator(self, group: str, exclude: Iterable[int] = (),
                             timeout: float = 60.0) -> int:
        banned = set(exclude)

        def found() -> int | None:
            node = self.coordinator_of(group)
            return node if node >= 0 and node not in banned and node in self.running() else None

        return int(wait_until(found, timeout, f"a coordinator of {group} not in {sorted(banned)}"))

    def zk_partitions(self, topic: str) -> dict[int, PartitionState]:
        """The partition states as stored in ZooKeeper (the source of truth)."""
        from kazoo.client import KazooClient

        client = KazooClient(hosts=f"{self.zk.connect}{self.chroot}", timeout=10)
        client.start(timeout=15)
        try:
            data, _ = client.get(f"/brokers/topics/{topic}")
        finally:
            client.stop()
            client.close()
        doc = json.loads(data.decode())
        return {
            int(p): PartitionState(int(p), int(s["leader"]), int(s["leader_epoch"]),
                                   tuple(s["replicas"]), tuple(s["isr"]))
            for p, s in doc["partitions"].items()
        }

    # --- waits ------------------------------------------------------------------------------

    def wait_for_brokers(self, expected: set[int], timeout: float = 60.0) -> None:
        """Every running broker reports exactly `expected` as the live brokers."""
        def agreed() -> bool:
            try:
                return all(set(self.view([], via=b).brokers) == expected for b in self.running())
            except Exception:  # noqa: BLE001 - a broker dying under us; any failure means try again
                return False

        wait_until(agreed, timeout, f"live brokers == {sorted(expected)}",
                   detail=lambda: self._describe_brokers())

    def _describe_brokers(self) -> str:
        out = []
        for b in self.running():
            try:
                out.append(f"{b} sees {list(self.view([], via=b).brokers)}")
            except Exception as exc:  # noqa: BLE001 - reported in the description
                out.append(f"{b}: {exc!r}")
        return "; ".join(out)

    def wait_for_controller(self, exclude: Iterable[int] = (), timeout: float = 60.0) -> int:
        banned = set(exclude)

        def found() -> int | None:
            try:
                ids = {self.view([], via=b).controller_id for b in self.running()}
            except Exception:  # noqa: BLE001 - a broker dying under us; any failure means try again
                return None
            if len(ids) == 1:
                (cid,) = ids
                if cid >= 0 and cid not in banned and cid in self.running():
                    return cid
            return None

        return int(wait_until(found, timeout, f"a controller not in {sorted(banned)}"))

    def wait_for_leader(self, topic: str, partition: int, exclude: Iterable[int] = (),
                        timeout: float = 60.0) -> int:
        """A live leader outside `exclude`, agreed on by every running broker."""
        banned = set(exclude)

        def found() -> int | None:
            try:
                leaders = {self.leader_of(topic, partition, via=b) for b in self.running()}
            except Exception:  # noqa: BLE001 - a broker dying under us; any failure means try again
                return None
            if len(leaders) == 1:
                (leader,) = leaders
                if leader >= 0 and leader not in banned and leader in self.running():
                    return leader
            return None

        return int(wait_until(found, timeout, f"a leader of {topic}-{partition} not in "
                              f"{sorted(banned)}", detail=lambda: self.describe(topic)))

    def wait_for_isr(self, topic: str, partitions: Iterable[int], members: Iterable[int],
                     timeout: float = 90.0) -> None:
        """The ISR of every listed partition is exactly `members`, as every running
        broker reports it."""
        want = set(members)
        parts = list(partitions)

        def reached() -> bool:
            try:
                for b in self.running():
                    states = self.partitions(topic, via=b)
                    if any(set(states[p].isr) != want for p in parts):
                        return False
                return True
            except Exception:  # noqa: BLE001 - a broker dying under us; any failure means try again
                return False

        wait_until(reached, timeout, f"ISR of {topic} {parts} == {sorted(want)}",
                   interval=0.2, detail=lambda: self.describe(topic))

    def describe(self, topic: str) -> str:
        try:
            states = self.zk_partitions(topic)
        except Exception as exc:  # noqa: BLE001 - a description for a failure message
            return f"zookeeper state unavailable: {exc!r}"
        return "zk: " + ", ".join(
            f"p{p}: leader {s.leader} epoch {s.leader_epoch} isr {list(s.isr)}"
            for p, s in sorted(states.items()))


# --- reading logs from disk --------------------------------------------------------------


@dataclass(frozen=True)
class DiskRecord:
    offset: int
    leader_epoch: int
    key: bytes | None
    value: bytes | None


def read_log(data_dir: Path, topic: str, partition: int) -> list[DiskRecord]:
    """Every record in a partition's segment files, in offset order (broker stopped)."""
    out: list[DiskRecord] = []
    pdir = data_dir / f"{topic}-{partition}"
    for segment in sorted(pdir.glob("*.log")):
        data = segment.read_bytes()
        for pos, header in scan_batches(data):
            if header.is_control:
                continue
            batch = data[pos:pos + header.size]
            for record in decode_records(batch):
                out.append(DiskRecord(record.offset, header.partition_leader_epoch,
                                      record.key, record.value))
    return out

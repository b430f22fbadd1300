"""Apache Kafka Connect 4.4, unchanged, in distributed mode with exactly-once source
support on Strom: two workers, the source task's worker SIGKILLed mid-run.

`java/StromLineConnectors.java` holds a line source (a text file to a topic, its offset
the number of lines sent) and a line sink (the topic to a file, keeping its own offsets).
Both workers run with exactly.once.source.support=enabled, so the source task writes its
records and its offsets in one transaction (the worker's transactional producer,
committing every second (transaction.boundary=interval; the worker is frozen and killed
only while a transaction holds records),
the leader fencing zombie task producers with the Admin's fenceProducers), and the sink
task reads with isolation.level=read_committed. Lines are appended while the workers run;
the worker running the source task is SIGKILLed, its tasks move to the survivor after the
scheduled rebalance delay, and the killed worker is restarted. At the end the topic read
with read_committed holds every line exactly once and in order, and so does the sink's file.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from support.broker_process import BrokerProcess, free_port, stop_process, wait_until
from support.clients import create_topic
from support.interop import kafka_dist
from support.open_transactions import kill_mid_transaction

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(900)]

LINES = 3000
TOPIC = "connect-lines"
PREFIX = "StromLineConnectors$"


class Worker:
    """One Kafka Connect distributed worker JVM and a client of its REST API."""

    def __init__(self, name: str, bootstrap: str, work: Path, classes: Path, lib: Path,
                 port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        props = {
            "bootstrap.servers": bootstrap, "group.id": "strom-eos-connect",
            "config.storage.topic": "eos-connect-configs",
            "offset.storage.topic": "eos-connect-offsets",
            "status.storage.topic": "eos-connect-status",
            "config.storage.replication.factor": 1, "offset.storage.replication.factor": 1,
            "status.storage.replication.factor": 1,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "offset.flush.interval.ms": 500,
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1", "rest.advertised.port": self.port,
            "exactly.once.source.support": "enabled",
            "scheduled.rebalance.max.delay.ms": 3000,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
            "consumer.isolation.level": "read_committed",
        }
        config = work / f"{name}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        cmd = kafka_dist.tool_command("org.apache.kafka.connect.cli.ConnectDistributed",
                                      str(config))
        cmd[cmd.index("-cp") + 1] = f"{classes}:{lib / '*'}"
        with open(work / f"{name}.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.rest = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.log = work / f"{name}.log"

    @property
    def worker_id(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answers(self) -> bool:
        assert self.proc.poll() is None, f"worker {self.name} exited; see {self.log}"
        try:
            return self.rest.get("/connectors").status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str) -> Any:
        try:
            response = self.rest.get(path)
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def stop(self) -> int:
        self.rest.close()
        return stop_process(self.proc, grace_s=90)


@pytest.fixture
def plugin_path(interop_classes: Path, tmp_path: Path) -> Path:
    """ServiceLoader manifests naming the test connectors (classes in interop_classes)."""
    services = tmp_path / "services" / "META-INF" / "services"
    services.mkdir(parents=True)
    for kind, name in (("source.SourceConnector", "LineSourceConnector"),
                       ("sink.SinkConnector", "LineSinkConnector")):
        (services / f"org.apache.kafka.connect.{kind}").write_text(f"{PREFIX}{name}\n")
    return tmp_path / "services"


def task_worker(worker: Worker, connector: str) -> tuple[str, str] | None:
    """(worker id, state) of the connector's task 0, as `worker` reports it."""
    status = worker.get(f"/connectors/{connector}/status")
    if not status or not status.get("tasks"):
        return None
    task = status["tasks"][0]
    return str(task["worker_id"]), str(task["state"])


def append_lines(path: Path, lines: list[str], progress: list[int],
                 killed: threading.Event) -> None:
    """Appends the first quarter at 300 lines a second, then 100 a second until the kill
    (the source keeps transactions open with records to catch it in), then the rest fast."""
    for start in range(0, len(lines), 30):
        with open(path, "a", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines[start:start + 30]))
        progress[0] = start + 30
        slow = start >= len(lines) // 4 and not killed.is_set()
        time.sleep(0.3 if slow else 0.1)


def read_topic(bootstrap: str, isolation: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-connect-check",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    got: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return got
                continue
            got.append((message.value() or b"").decode())
    finally:
        consumer.close()
    raise AssertionError(f"{TOPIC} not read to its end ({isolation})")


def sink_values(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.split("\t", 2)[2] for line in path.read_text(encoding="utf-8").splitlines()
            if line.count("\t") >= 2]


def test_connect_exactly_once_source_survives_a_killed_worker(
        eos_broker: BrokerProcess, interop_classes: Path, plugin_path: Path, kafka_lib: Path,
        tmp_path: Path) -> None:
    bootstrap = eos_broker.bootstrap
    create_topic(bootstrap, TOPIC, 1)
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    source_file.write_text("")
    classes = Path(f"{plugin_path}:{interop_classes}")
    workers = {n: Worker(n, bootstrap, tmp_path, classes, kafka_lib) for n in ("w1", "w2")}
    restarted: Worker | None = None
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        wait_until(lambda: all(w.answers() for w in workers.values()), 180,
                   "both workers answer")
        w1 = workers["w1"]
        for name, config in (
                ("line-source", {"connector.class": f"{PREFIX}LineSourceConnector",
                                 "tasks.max": "1", "file": str(source_file), "topic": TOPIC,
                                 "exactly.once.support": "required",
                                 "transaction.boundary": "interval",
                                 "transaction.boundary.interval.ms": "1000"}),
                ("line-sink", {"connector.class": f"{PREFIX}LineSinkConnector",
                               "tasks.max": "1", "topics": TOPIC, "file": str(sink_file)})):
            response = w1.rest.put(f"/connectors/{name}/config", json=config)
            assert response.status_code in (200, 201), response.text
        wait_until(lambda: (task_worker(w1, "line-source") or ("", ""))[1] == "RUNNING", 120,
                   "the source task runs", detail=lambda: str(task_worker(w1, "line-source")))

        lines = [f"line {i:05d} of the exactly-once source" for i in range(LINES)]
        progress, killed = [0], threading.Event()
        writer = threading.Thread(target=append_lines,
                                  args=(source_file, lines, progress, killed), daemon=True)
        started = time.monotonic()
        writer.start()
        wait_until(lambda: progress[0] >= LINES // 4 and sink_values(sink_file), 120,
                   "a quarter of the lines written, the first through the sink")
        owner = task_worker(w1, "line-source")
        assert owner is not None
        victim = next(n for n, w in workers.items() if w.worker_id == owner[0])
        survivor = workers["w2" if victim == "w1" else "w1"]
        kill_mid_transaction(workers[victim].proc, admin, [TopicPartition(TOPIC, 0)])
        killed.set()
        wait_until(lambda: task_worker(survivor, "line-source") == (survivor.worker_id,
                                                                    "RUNNING"),
                   180, "the source task moves to the surviving worker",
                   detail=lambda: str(task_worker(survivor, "line-source")))
        moved_s = time.monotonic() - started
        restarted = Worker(f"{victim}-again", bootstrap, tmp_path, classes, kafka_lib,
                           port=workers[victim].port)
        wait_until(restarted.answers, 180, "the killed worker is back")
        writer.join(120)
        wait_until(lambda: len(sink_values(sink_file)) >= LINES, 240,
                   "every line through the sink",
                   detail=lambda: f"{len(sink_values(sink_file))} lines in the sink")
        time.sleep(3)  # anything more (a duplicate) would land now
    finally:
        codes = {n: w.stop() for n, w in workers.items() if w.proc.poll() is None}
        if restarted is not None:
            codes["restarted"] = restarted.stop()

    committed = read_topic(bootstrap, "read_committed")
    logged = read_topic(bootstrap, "read_uncommitted")
    sunk = sink_values(sink_file)
    print(f"\nConnect EOS: {LINES} lines in; topic {len(committed)} (read_committed), "
          f"{len(logged) - len(committed)} aborted in the log; sink {len(sunk)}; "
          f"worker {victim} SIGKILLed, task moved after {moved_s:.1f} s of the run, "
          f"{time.monotonic() - started:.1f} s in all; exit codes {codes}")
    assert committed == lines  # every line once, in order
    assert sunk == lines
    assert len(logged) > len(committed)  # the kill left an open transaction, aborted

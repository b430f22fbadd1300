"""Strom Connect against Apache Kafka Connect 4.4: file source → topic → file sink, one run.

Both runtimes run standalone, one at a time, as separate processes against the same fresh
`strom server` on the same machine, with the same worker settings (StringConverter for
keys and values, `offset.flush.interval.ms=1000`, their own client defaults) and one task
per connector:

- source phase: a file of `--records` lines of 100 bytes; from the connector's creation
  until the topic's (one partition) high watermark reaches the line count;
- sink phase: from the sink connector's creation until the output file holds every line
  (its size in bytes), reading the topic from the start.

Strom Connect runs its built-in FileStreamSource/FileStreamSink; Kafka Connect (Java, from
the Maven jars of tools/kafka_dist.py; connect-file is not on Maven Central) runs
bench/java/BenchFileConnectors.java, the same file connectors written against Kafka's
Connect API. Reported: records/s per phase, and CPU seconds per million records of the
worker process (all its threads, from /proc; the broker's CPU is reported apart).

Writes docs/benchmarks/connect.json and connect.md. Never part of the test suite; run it
only on a quiet machine (it takes /tmp/bench-lock).

    python bench/connect.py [--records 500000] [--runtimes strom,kafka]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import kafka_dist  # noqa: E402

OUT_DIR = ROOT / "docs" / "benchmarks"
JAVA_SOURCE = ROOT / "bench" / "java" / "BenchFileConnectors.java"
JAVA_PREFIX = "strom.bench.BenchFileConnectors$"
LINE_BYTES = 100
# connect-standalone.sh's heap and kafka-run-class.sh's performance options
CONNECT_JVM_OPTS = ["-Xms256m", "-Xmx2g", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                    "-Djava.awt.headless=true"]
CLASSES = {"strom": ("FileStreamSource", "FileStreamSink"),
           "kafka": (JAVA_PREFIX + "BenchFileSourceConnector", JAVA_PREFIX + "BenchFileSinkConnector")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(predicate: Callable[[], bool], what: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start_broker(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "server", "--override", f"log.dirs={data_dir}",
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}", "--override",
         "group.initial.rebalance.delay.ms=0", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=1)
            return proc, bootstrap
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the broker did not start")


def write_input(path: Path, count: int) -> None:
    filler = "x" * (LINE_BYTES - 11)  # 100 characters, then the newline
    with open(path, "w", encoding="utf-8") as out:
        for start in range(0, count, 10_000):
            out.write("".join(f"{i:010d} {filler}\n" for i in range(start, min(count, start + 10_000))))


def java_classes(work: Path) -> Path:
    """The bench connectors compiled against Kafka's jars, with ServiceLoader manifests."""
    classes = work / "classes"
    subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", kafka_dist.classpath(), str(JAVA_SOURCE)],
                   check=True, capture_output=True)
    services = classes / "META-INF" / "services"
    services.mkdir(parents=True, exist_ok=True)
    for kind, name in (("source.SourceConnector", "BenchFileSourceConnector"),
                       ("sink.SinkConnector", "BenchFileSinkConnector")):
        (services / f"org.apache.kafka.connect.{kind}").write_text(f"{JAVA_PREFIX}{name}\n")
    return classes


def worker_command(runtime: str, properties: Path, work: Path) -> list[str]:
    if runtime == "strom":
        return [sys.executable, "-m", "strom", "connect", "standalone", str(properties),
                "--log-level", "warning"]
    command = kafka_dist.tool_command("org.apache.kafka.connect.cli.ConnectStandalone", str(properties),
                                      jvm_opts=CONNECT_JVM_OPTS)
    command[command.index("-cp") + 1] = f"{java_classes(work)}:{kafka_dist.classpath()}"
    return command


def rest(url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def answering(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"the worker exited with {proc.returncode}")
    try:
        rest(url, "GET", "/connectors")
        return True
    except OSError:
        return False


def high_watermark(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-connect-watch"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


class Phase:
    """Wall time and CPU of the worker and the broker over one phase."""

    def __init__(self, worker: int, broker: int) -> None:
        self.pids = (worker, broker)
        self.started = time.monotonic()
        self.cpu = [cpu_seconds(p) for p in self.pids]

    def result(self, count: int) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        worker, broker = (cpu_seconds(p) - c for p, c in zip(self.pids, self.cpu, strict=True))
        return {"seconds": round(seconds, 2), "records_per_s": round(count / seconds),
                "worker_cpu_s_per_million": round(worker * 1e6 / count, 1),
                "broker_cpu_s_per_million": round(broker * 1e6 / count, 1)}


def run_runtime(runtime: str, bootstrap: str, broker_pid: int, source_file: Path, count: int,
                work: Path) -> dict[str, Any]:
    topic, out = f"bench-connect-{runtime}", work / f"{runtime}-out.txt"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    port = free_port()
    properties = work / f"{runtime}-worker.properties"
    properties.write_text("".join(f"{k}={v}\n" for k, v in {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": work / f"{runtime}.offsets", "offset.flush.interval.ms": 1000,
        "listeners": f"http://127.0.0.1:{port}"}.items()))
    url = f"http://127.0.0.1:{port}"
    with open(work / f"{runtime}-worker.log", "wb") as log:
        proc = subprocess.Popen(worker_command(runtime, properties, work), stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait(lambda: answering(url, proc), "the worker's REST API", 180)
        source_class, sink_class = CLASSES[runtime]
        phase = Phase(proc.pid, broker_pid)
        rest(url, "PUT", "/connectors/bench-source/config", {
            "connector.class": source_class, "file": str(source_file), "topic": topic, "tasks.max": "1"})
        wait(lambda: high_watermark(bootstrap, topic) >= count, "the topic to fill")
        source = phase.result(count)
        expected = source_file.stat().st_size  # every line, its newline included
        phase = Phase(proc.pid, broker_pid)
        rest(url, "PUT", "/connectors/bench-sink/config", {
            "connector.class": sink_class, "file": str(out), "topics": topic, "tasks.max": "1"})
        wait(lambda: out.exists() and out.stat().st_size >= expected, "the output file")
        sink = phase.result(count)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    if out.read_bytes() != source_file.read_bytes():
        raise RuntimeError(f"{runtime}: the output file differs from the input")
    return {"runtime": runtime, "records": count, "source": source, "sink": sink}


def write(results: list[dict[str, Any]], count: int, load_start: float) -> None:
    machine = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
               "platform": platform.platform(), "load_start": round(load_start, 2),
               "load_end": round(os.getloadavg()[0], 2)}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "connect.json").write_text(json.dumps({"machine": machine, "results": results},
                                                     indent=2) + "\n")
    names = {"strom": "Strom Connect (Python)", "kafka": "Apache Kafka Connect 4.4 (Java)"}
    lines = [
        "# Strom Connect against Kafka Connect: file → topic → file",
        "",
        f"`python bench/connect.py --records {count}` on {machine['cpus']} CPUs (one-minute load "
        f"average {machine['load_start']:.1f} at the start, {machine['load_end']:.1f} at the end: the "
        f"machine is shared), Python {machine['python']}, one fresh "
        "`strom server` shared by both runtimes, which ran one after the other. Lines of "
        f"{LINE_BYTES} characters and a newline, StringConverter, one task, one partition, "
        "`offset.flush.interval.ms=1000` (both sinks hand each `put`'s lines to the OS at once, "
        "so the sink time does not wait for an offset flush). Source: from connector creation "
        "until the topic holds every line; sink: from connector creation until the output file holds every "
        "line (checked byte-equal to the input at the end). CPU: the worker process's user + "
        "system seconds per million records; the broker's apart.",
        "",
        "| runtime | phase | seconds | records/s | worker CPU-s per million | broker CPU-s per million |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        for phase in ("source", "sink"):
            p = r[phase]
            lines.append(f"| {names[r['runtime']]} | {phase} | {p['seconds']} | {p['records_per_s']:,} | "
                         f"{p['worker_cpu_s_per_million']} | {p['broker_cpu_s_per_million']} |")
    by = {r["runtime"]: r for r in results}
    if {"strom", "kafka"} <= by.keys():
        lines += ["", "| phase | Strom / Kafka records/s | Strom / Kafka worker CPU per record |",
                  "|---|---:|---:|"]
        for phase in ("source", "sink"):
            s, k = by["strom"][phase], by["kafka"][phase]
            lines.append(f"| {phase} | {s['records_per_s'] / k['records_per_s']:.2f} | "
                         f"{s['worker_cpu_s_per_million'] / max(k['worker_cpu_s_per_million'], 0.1):.2f} |")
    (OUT_DIR / "connect.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--runtimes", default="strom,kafka")
    parser.add_argument("--no-write", action="store_true", help="Print only (a smoke run).")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="connect-bench-"))
    source_file = work / "input.txt"
    write_input(source_file, args.records)
    broker, bootstrap = start_broker(work / "data")
    results = []
    try:
        for runtime in args.runtimes.split(","):
            result = run_runtime(runtime, bootstrap, broker.pid, source_file, args.records, work)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        broker.terminate()
        broker.wait(60)
    if not args.no_write:
        write(results, args.records, load_start)


if __name__ == "__main__":
    main()

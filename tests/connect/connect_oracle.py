"""Kafka's JsonConverter and SMTs in a JVM (tests/connect/java/ConnectInterop.java), and
the same operations on Strom Connect, so tests compare the two outputs byte for byte."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import kafka_dist  # noqa: E402

from strom.connect.api.records import SinkRecord  # noqa: E402
from strom.connect.converters import JsonConverter  # noqa: E402
from strom.connect.data.headers import Headers  # noqa: E402
from strom.connect.plugins import Plugins  # noqa: E402
from strom.connect.transforms.base import Predicate, Transformation  # noqa: E402

JAVA_SOURCE = Path(__file__).parent / "java" / "ConnectInterop.java"


class KafkaOracle:
    """One JVM answering requests line by line."""

    def __init__(self, work: Path) -> None:
        classpath = kafka_dist.classpath()
        subprocess.run(["javac", "-nowarn", "-d", str(work), "-cp", classpath, str(JAVA_SOURCE)],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen(
            ["java", *kafka_dist.TOOL_JVM_OPTS, "-cp", f"{work}:{classpath}", "ConnectInterop"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _converter(schemas: bool) -> JsonConverter:
    converter = JsonConverter()
    converter.configure({"schemas.enable": str(schemas).lower()}, False)
    return converter


def strom_convert(request: dict[str, Any]) -> dict[str, Any]:
    """What ConnectInterop's `convert`/`fromdata` ops do, with Strom's converter."""
    schemas = request["schemas"]
    reader = _converter(schemas if request["op"] == "convert" else True)
    data = reader.to_connect_data("t", request["json"].encode())
    out = _converter(schemas).from_connect_data("t", data.schema, data.value)
    return {"json": None if out is None else out.decode()}


def strom_transform(request: dict[str, Any], plugins: Plugins) -> dict[str, Any]:
    """What ConnectInterop's `transform` op does, with Strom's transforms."""
    conv = _converter(True)

    def read(text: str | None) -> Any:
        return conv.to_connect_data("t", None if text is None else text.encode())

    key, value = read(request.get("key")), read(request.get("value"))
    headers = Headers()
    for name, text in request.get("headers", []):
        h = read(text)
        headers.add(name, h.value, h.schema)
    record = SinkRecord(request["topic"], request["partition"], key.schema, key.value, value.schema,
                        value.value, request.get("timestamp"), headers, kafka_offset=0)
    if "predicate" in request:
        spec = request["predicate"]
        predicate = plugins.new(spec["class"], Predicate, "p")
        predicate.configure(spec.get("config", {}))
        if predicate.test(record) == spec.get("negate", False):
            return _answer(record, conv)
    transform = plugins.new(request["class"], Transformation, "t")
    transform.configure(request.get("config", {}))
    out = transform.apply(record)
    return {"dropped": True} if out is None else _answer(out, conv)


def _answer(record: Any, conv: JsonConverter) -> dict[str, Any]:
    def write(schema: Any, value: Any) -> str | None:
        raw = conv.from_connect_data("t", schema, value)
        return None if raw is None else raw.decode()

    return {"dropped": False, "topic": record.topic, "partition": record.kafka_partition,
            "timestamp": record.timestamp, "key": write(record.key_schema, record.key),
            "value": write(record.value_schema, record.value),
            "headers": [[h.key, write(h.schema, h.value)] for h in record.headers]}


CONFORMANCE_SOURCE = Path(__file__).parent / "java" / "conformance" / "ConformanceConnectors.java"
CONFORMANCE_PREFIX = "strom.conformance.ConformanceConnectors$"


def compile_conformance_connectors(classes: Path) -> Path:
    """Kafka Connect's side of the test connectors, with ServiceLoader manifests."""
    classpath = kafka_dist.classpath()
    subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath, str(CONFORMANCE_SOURCE)],
                   check=True, capture_output=True)
    services = classes / "META-INF" / "services"
    services.mkdir(parents=True, exist_ok=True)
    for kind, name in (("source.SourceConnector", "CountingSourceConnector"),
                       ("sink.SinkConnector", "DiscardSinkConnector")):
        (services / f"org.apache.kafka.connect.{kind}").write_text(f"{CONFORMANCE_PREFIX}{name}\n")
    return classes


def kafka_connect_command(main_class: str, worker_properties: Path, classes: Path) -> list[str]:
    """`java ... ConnectStandalone|ConnectDistributed worker.properties` with the test connectors."""
    command = kafka_dist.tool_command(f"org.apache.kafka.connect.cli.{main_class}", str(worker_properties))
    command[command.index("-cp") + 1] = f"{classes}:{kafka_dist.classpath()}"
    return command


@contextlib.contextmanager
def running_kafka_connect(command: list[str], port: int, log_path: Path) -> Iterator[httpx.Client]:
    """Kafka Connect started from `command`, its REST API answering; SIGTERM at the end."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 120
            while not _answers(client, proc, log_path):
                if time.monotonic() > deadline:
                    raise AssertionError(f"Kafka Connect did not answer; see {log_path}")
                time.sleep(0.5)
            yield client
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _answers(client: httpx.Client, proc: subprocess.Popen[bytes], log_path: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"Kafka Connect exited with {proc.returncode}; see {log_path}")
    try:
        return client.get("/connectors").status_code == 200
    except httpx.TransportError:
        return False

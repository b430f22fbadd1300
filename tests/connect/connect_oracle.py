"""Kafka's JsonConverter and SMTs in a JVM (tests/connect/java/ConnectInterop.java), and
the same operations on Strom Connect, so tests compare the two outputs byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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

"""HttpSink against a real HTTP server and a real broker: records arrive as JSON arrays
in batches, a 503 is retried, a 400 sends the batch to the dead letter queue."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from confluent_kafka import Producer
from connect_support import CONVERTERS, read_topic, wait_for

from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.standalone import build
from strom.testing import StromBroker


class Endpoint(BaseHTTPRequestHandler):
    """Answers with the next status of `script` (then 200) and keeps what it accepted."""

    script: ClassVar[list[int]] = []
    accepted: ClassVar[list[Any]] = []
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = Endpoint.script.pop(0) if Endpoint.script else 200
        Endpoint.seen.append(self.headers.get("X-Source", ""))
        if status == 200:
            Endpoint.accepted.append(body)
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Endpoint.script, Endpoint.accepted, Endpoint.seen = [], [], []
    yield f"http://127.0.0.1:{server.server_address[1]}/ingest"
    server.shutdown()


@pytest.fixture
def herder(tmp_path: Path, strom_broker: StromBroker) -> Iterator[StandaloneHerder]:
    standalone = build({"bootstrap.servers": strom_broker.bootstrap_servers, **CONVERTERS,
                        "offset.storage.file.filename": str(tmp_path / "offsets"),
                        "offset.flush.interval.ms": "200", "listeners": "http://127.0.0.1:0"})
    yield standalone.herder
    standalone.herder.stop()


def produce(bootstrap: str, topic: str, values: list[Any]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, json.dumps({"schema": {"type": "int32"}, "payload": value}).encode())
    assert producer.flush(30) == 0


def config(topic: str, url: str, **extra: str) -> dict[str, str]:
    return {"connector.class": "HttpSink", "topics": topic, "http.url": url, "batch.max.records": "4",
            "retry.backoff.ms": "10", "http.headers": "X-Source: strom",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter", **extra}


def test_batches_arrive_and_a_503_is_retried(strom_broker: StromBroker, herder: StandaloneHerder,
                                             endpoint: str) -> None:
    strom_broker.create_topic("connect-http-in")
    produce(strom_broker.bootstrap_servers, "connect-http-in", list(range(10)))
    Endpoint.script = [503]
    herder.put_config("http", config("connect-http-in", endpoint), allow_replace=False)
    wait_for(lambda: sum(map(len, Endpoint.accepted)) >= 10, "ten values at the endpoint")
    assert [v for batch in Endpoint.accepted for v in batch] == list(range(10))
    assert all(len(batch) <= 4 for batch in Endpoint.accepted)
    assert set(Endpoint.seen) == {"strom"}
    assert herder.status("http")["tasks"][0]["state"] == "RUNNING"


def test_a_refused_batch_goes_to_the_dead_letter_queue(strom_broker: StromBroker, herder: StandaloneHerder,
                                                       endpoint: str) -> None:
    strom_broker.create_topic("connect-http-refused")
    produce(strom_broker.bootstrap_servers, "connect-http-refused", [1, 2])
    Endpoint.script = [400]
    herder.put_config("http-dlq", config("connect-http-refused", endpoint, **{
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "connect-http-dlq",
        "errors.deadletterqueue.topic.replication.factor": "1"}), allow_replace=False)
    dead = read_topic(strom_broker.bootstrap_servers, "connect-http-dlq", 2)
    assert [json.loads(m.value())["payload"] for m in dead] == [1, 2]
    assert Endpoint.accepted == []

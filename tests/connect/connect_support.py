"""Helpers of the Connect end-to-end tests: properties files, polling, reading topics."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
from confluent_kafka import Consumer

from strom.connect.api.config import ConfigDef
from strom.connect.api.connector import SinkConnector
from strom.connect.api.task import SinkTask


def write_properties(path: Path, props: Mapping[str, Any]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
    return path


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The first `count` messages of `topic` (all partitions), by a throwaway consumer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}-{time.monotonic()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            found.extend(m for m in consumer.consume(100, 0.5) if m.error() is None)
    finally:
        consumer.close()
    return found


@contextlib.contextmanager
def serving(props: Mapping[str, Any], cluster_id: str | None = None) -> Iterator[tuple[Any, httpx.Client]]:
    """A standalone worker built from `props` with its REST API served by uvicorn on a
    thread over loopback TCP: (the Standalone, an httpx client on it)."""
    import uvicorn

    from strom.connect.rest.app import build_app
    from strom.connect.runtime.standalone import RestServer, build
    from strom.connect.runtime.standalone import cluster_id as read_cluster_id

    standalone = build(props)
    if cluster_id is None:
        cluster_id = read_cluster_id(standalone.herder)
    server = RestServer(uvicorn.Config(build_app(standalone.herder, cluster_id), host="127.0.0.1",
                                       port=standalone.port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "the REST server")
        with httpx.Client(base_url=standalone.rest_url(), timeout=30) as client:
            yield standalone, client
    finally:
        server.should_exit = True
        thread.join(30)
        standalone.herder.stop()


#: A worker needs both converters (Kafka's WorkerConfig has no default for them).
CONVERTERS = {"key.converter": "org.apache.kafka.connect.json.JsonConverter",
              "value.converter": "org.apache.kafka.connect.json.JsonConverter"}


class OneTaskSinkConnector(SinkConnector):
    """A test sink connector that runs one task of `task` with the connector's own props;
    a subclass names only its task class."""

    task: ClassVar[type[SinkTask]]

    def version(self) -> str:
        return "1"

    def config(self) -> ConfigDef:
        return ConfigDef()

    def start(self, props: Mapping[str, str]) -> None:
        self.props = dict(props)

    def task_class(self) -> type[SinkTask]:
        return self.task

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [self.props]

    def stop(self) -> None:
        """Nothing to release."""

"""Error handling on a real broker: a sink with `errors.tolerance=all` sends the record its
converter cannot read to the dead letter queue, with Kafka's `__connect.errors.*` headers,
and goes on; with the default `none` the task fails with Kafka's message."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from confluent_kafka import Producer
from connect_support import CONVERTERS, OneTaskSinkConnector, lines, read_topic, wait_for

from strom.connect import RetriableError, SinkRecord, SinkTask
from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.standalone import build
from strom.testing import StromBroker

GOOD = b'{"schema":{"type":"string","optional":false},"payload":"hello"}'
AFTER = b'{"schema":{"type":"string","optional":false},"payload":"after"}'


@pytest.fixture
def herder(tmp_path: Path, strom_broker: StromBroker) -> Iterator[StandaloneHerder]:
    standalone = build({"bootstrap.servers": strom_broker.bootstrap_servers,
                        "offset.storage.file.filename": str(tmp_path / "offsets"), **CONVERTERS,
                        "offset.flush.interval.ms": "200", "listeners": "http://127.0.0.1:0"})
    yield standalone.herder
    standalone.herder.stop()


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value, key=b"k", headers=[("trace", b"t-1")])
    assert producer.flush(30) == 0


def sink_config(topic: str, out: Path, **extra: str) -> dict[str, str]:
    return {"connector.class": "FileStreamSink", "topics": topic, "file": str(out),
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter", **extra}


def test_dead_letter_queue_gets_the_bad_record_with_context_headers(
        tmp_path: Path, strom_broker: StromBroker, herder: StandaloneHerder) -> None:
    strom_broker.create_topic("connect-dlq-in")
    produce(strom_broker.bootstrap_servers, "connect-dlq-in", [GOOD, b"not json", AFTER])
    out = tmp_path / "out.txt"
    herder.put_config("dlq-sink", sink_config("connect-dlq-in", out, **{
        "errors.tolerance": "all", "errors.log.enable": "true",
        "errors.deadletterqueue.topic.name": "connect-dlq-errors",
        "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true"}), allow_replace=False)
    wait_for(lambda: lines(out) == ["hello", "after"], "the two good records in the sink file")
    [dead] = read_topic(strom_broker.bootstrap_servers, "connect-dlq-errors", 1)
    assert (dead.key(), dead.value()) == (b"k", b"not json")
    headers = dict(dead.headers())
    assert headers["trace"] == b"t-1"  # the original headers come first
    assert {k: v for k, v in headers.items() if k != "__connect.errors.exception.stacktrace"
            and k != "__connect.errors.exception.message" and k != "trace"} == {
        "__connect.errors.topic": b"connect-dlq-in", "__connect.errors.partition": b"0",
        "__connect.errors.offset": b"1", "__connect.errors.connector.name": b"dlq-sink",
        "__connect.errors.task.id": b"0", "__connect.errors.stage": b"VALUE_CONVERTER",
        "__connect.errors.class.name": b"org.apache.kafka.connect.json.JsonConverter",
        "__connect.errors.exception.class.name": b"org.apache.kafka.connect.errors.DataException"}
    assert b"Converting byte[] to Kafka Connect data failed" in headers["__connect.errors.exception.message"]
    assert herder.status("dlq-sink")["tasks"][0]["state"] == "RUNNING"


def test_without_tolerance_the_task_fails(tmp_path: Path, strom_broker: StromBroker,
                                          herder: StandaloneHerder) -> None:
    strom_broker.create_topic("connect-fail-in")
    produce(strom_broker.bootstrap_servers, "connect-fail-in", [GOOD, b"not json", AFTER])
    out = tmp_path / "out.txt"
    herder.put_config("failing-sink", sink_config("connect-fail-in", out), allow_replace=False)
    task = wait_for(lambda: next((t for t in herder.status("failing-sink")["tasks"]
                                  if t["state"] == "FAILED"), None), "the task to fail")
    assert "Tolerance exceeded in error handler" in task["trace"]
    assert "DataError" in task["trace"]
    assert lines(out) == []  # the failed batch was never handed to put
    # a restart of the failed task meets the same record and fails again
    answer = herder.restart("failing-sink", include_tasks=True, only_failed=True)
    assert answer is not None and answer["connector"]["state"] == "RUNNING"
    assert [t["state"] for t in answer["tasks"]] == ["RESTARTING"]
    wait_for(lambda: herder.status("failing-sink")["tasks"][0]["state"] == "FAILED", "the second failure")


class FlakySinkTask(SinkTask):
    """Refuses the first two batches that carry records with a RetriableError."""

    received: ClassVar[list[str]] = []
    refusals: ClassVar[int] = 0

    def version(self) -> str:
        return "1"

    def start(self, props: Mapping[str, str]) -> None:
        """Nothing to set up."""

    def put(self, records: Sequence[SinkRecord]) -> None:
        if records and FlakySinkTask.refusals < 2:
            FlakySinkTask.refusals += 1
            self.context.timeout(100)
            raise RetriableError("downstream busy")
        FlakySinkTask.received.extend(str(r.value) for r in records)

    def stop(self) -> None:
        """Nothing to release."""


class FlakySinkConnector(OneTaskSinkConnector):
    task = FlakySinkTask


def test_retriable_put_redelivers_the_same_batch(strom_broker: StromBroker, herder: StandaloneHerder) -> None:
    strom_broker.create_topic("connect-flaky-in")
    produce(strom_broker.bootstrap_servers, "connect-flaky-in", [GOOD, AFTER])
    herder.worker.plugins.add(FlakySinkConnector)
    herder.put_config("flaky", {"connector.class": "FlakySinkConnector", "topics": "connect-flaky-in",
                                "key.converter": "org.apache.kafka.connect.storage.StringConverter"},
                      allow_replace=False)
    wait_for(lambda: FlakySinkTask.received == ["hello", "after"], "the batch after two refusals")
    assert FlakySinkTask.refusals == 2
    assert herder.status("flaky")["tasks"][0]["state"] == "RUNNING"


class PickySinkTask(SinkTask):
    """Reports every record whose value is "bad" through the errant record reporter."""

    kept: ClassVar[list[str]] = []

    def version(self) -> str:
        return "1"

    def start(self, props: Mapping[str, str]) -> None:
        self.report = self.context.errant_record_reporter()

    def put(self, records: Sequence[SinkRecord]) -> None:
        for record in records:
            if record.value == "bad":
                self.report(record, ValueError("no bad values downstream"))
            else:
                PickySinkTask.kept.append(str(record.value))

    def stop(self) -> None:
        """Nothing to release."""


class PickySinkConnector(FlakySinkConnector):
    task = PickySinkTask


def test_errant_record_reporter_sends_to_the_dlq(strom_broker: StromBroker, herder: StandaloneHerder) -> None:
    strom_broker.create_topic("connect-picky-in")
    produce(strom_broker.bootstrap_servers, "connect-picky-in", [b"good", b"bad", b"fine"])
    herder.worker.plugins.add(PickySinkConnector)
    herder.put_config("picky", {
        "connector.class": "PickySinkConnector", "topics": "connect-picky-in",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "connect-picky-dlq",
        "errors.deadletterqueue.topic.replication.factor": "1",
        "errors.deadletterqueue.context.headers.enable": "true"}, allow_replace=False)
    wait_for(lambda: PickySinkTask.kept == ["good", "fine"], "the good records")
    [dead] = read_topic(strom_broker.bootstrap_servers, "connect-picky-dlq", 1)
    headers = dict(dead.headers())
    assert (dead.value(), headers["__connect.errors.stage"], headers["__connect.errors.offset"]) == \
        (b"bad", b"TASK_PUT", b"1")
    assert headers["__connect.errors.exception.class.name"] == b"builtins.ValueError"

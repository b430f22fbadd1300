"""Runtime parts without a broker: the offsets file, the error handler's retries and
tolerance, the DLQ headers, and worker/connector config parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strom.connect.api.config import AbstractConfig
from strom.connect.api.errors import ConfigError, DataError, RetriableError
from strom.connect.runtime.config import WorkerConfig, connector_config_def
from strom.connect.runtime.errors import (
    DeadLetterQueueReporter,
    ErrorContext,
    ErrorHandler,
    Skipped,
    Stage,
    ToleranceExceededError,
)
from strom.connect.runtime.offsets import FileOffsetStore, key_text


def errors_config(**props: str) -> AbstractConfig:
    return AbstractConfig(connector_config_def("sink"), {"name": "c", "connector.class": "x", **props})


def test_offsets_file_survives_a_reopen_and_uses_kafkas_keys(tmp_path: Path) -> None:
    path = tmp_path / "connect.offsets"
    store = FileOffsetStore(path)
    partition = {"filename": "/data/in.txt"}
    store.put("src", {key_text("src", partition): (partition, {"position": 42})})
    store.put("other", {key_text("other", partition): (partition, {"position": 7})})
    assert key_text("src", partition) == '["src",{"filename":"/data/in.txt"}]'
    reopened = FileOffsetStore(path)
    assert reopened.get("src", partition) == {"position": 42}
    assert reopened.entries("other") == [(partition, {"position": 7})]
    reopened.put("src", {key_text("src", partition): (partition, None)})  # a null offset removes it
    reopened.remove_connector("other")
    assert json.loads(path.read_text())["offsets"] == []
    assert not (tmp_path / "connect.offsets.tmp").exists()


def test_retriable_errors_are_retried_within_the_timeout() -> None:
    waits: list[float] = []
    handler = ErrorHandler(errors_config(**{"errors.retry.timeout": "-1",
                                            "errors.retry.delay.max.ms": "1000"}),
                           "c-0", sleep=lambda s: bool(waits.append(s)))
    attempts = iter([RetriableError("busy")] * 4 + [None])

    def flaky() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "done"

    assert handler.execute(Stage.TRANSFORMATION, "t", flaky) == "done"
    assert waits == [0.3, 0.6, 1.0, 1.0]  # doubling from 300 ms, capped at the max delay


def test_no_retry_timeout_means_one_attempt() -> None:
    attempts: list[int] = []

    def busy() -> None:
        attempts.append(1)
        raise RetriableError("busy")

    with pytest.raises(ToleranceExceededError):
        ErrorHandler(errors_config(), "c-0", sleep=lambda s: False).execute(Stage.TRANSFORMATION, "t", busy)
    assert len(attempts) == 1  # errors.retry.timeout=0, Kafka's default


def test_tolerance_none_fails_and_all_skips_and_reports() -> None:
    def bad() -> None:
        raise DataError("boom")

    with pytest.raises(ToleranceExceededError, match="Tolerance exceeded in error handler"):
        ErrorHandler(errors_config(), "c-0").execute(Stage.VALUE_CONVERTER, "conv", bad)
    reported: list[ErrorContext] = []
    tolerant = ErrorHandler(errors_config(**{"errors.tolerance": "all"}), "c-0")
    tolerant.reporters.append(reported.append)
    with pytest.raises(Skipped):
        tolerant.execute(Stage.VALUE_CONVERTER, "conv", bad)
    assert [r.stage for r in reported] == [Stage.VALUE_CONVERTER]
    with pytest.raises(ToleranceExceededError):  # a failing put is never tolerated
        tolerant.execute(Stage.TASK_PUT, "task", bad)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.sent.append({"topic": topic, **kwargs})

    def poll(self, timeout: float) -> int:
        return 0


def test_dlq_record_keeps_the_original_bytes_and_adds_kafkas_headers() -> None:
    producer = FakeProducer()
    reporter = DeadLetterQueueReporter(producer, "dlq", "conn", 3, with_headers=True)
    reporter(ErrorContext(Stage.VALUE_CONVERTER, "org.apache.kafka.connect.json.JsonConverter",
                          DataError("bad"), "in", 2, 99, b"k", b"v", [("h", b"1")]))
    [sent] = producer.sent
    assert (sent["topic"], sent["key"], sent["value"]) == ("dlq", b"k", b"v")
    headers = dict(sent["headers"])
    assert sent["headers"][0] == ("h", b"1")
    assert headers["__connect.errors.partition"] == b"2" and headers["__connect.errors.offset"] == b"99"
    assert headers["__connect.errors.task.id"] == b"3"
    kafka_name = b"org.apache.kafka.connect.errors.DataException"
    assert headers["__connect.errors.exception.class.name"] == kafka_name
    assert b"DataError: bad" in headers["__connect.errors.exception.stacktrace"]


def test_worker_config_reads_kafkas_names() -> None:
    with pytest.raises(ConfigError, match=r'Missing required configuration "key\.converter"'):
        WorkerConfig({})
    config = WorkerConfig({"key.converter": "a", "value.converter": "b",
                           "bootstrap.servers": "h1:9092, h2:9092", "listeners": "http://:8084",
                           "producer.linger.ms": "10", "producer.key.serializer": "x"})
    assert config.bootstrap_servers == "h1:9092,h2:9092"
    assert config.listener() == ("0.0.0.0", 8084)
    assert config.client_props("producer.") == {"linger.ms": "10"}  # Java-only names dropped
    with pytest.raises(ConfigError):
        WorkerConfig({"key.converter": "a", "value.converter": "b", "listeners": "https://:8443"}).listener()


def test_connect_protocol_round_trip_and_truncation() -> None:
    from strom.connect.runtime.distributed.protocol import (
        Assignment,
        Compatibility,
        ProtocolError,
        WorkerState,
        decode_assignment,
        decode_metadata,
        encode_assignment,
        encode_metadata,
    )

    assignment = Assignment(2, 0, "w1", "http://w1:8083/", 3, ("a",), (("a", 0),), ("b",), (("b", 1),), 500)
    assert decode_assignment(encode_assignment(assignment)) == assignment
    state = WorkerState(2, "http://w2:8083/", 3, assignment)
    raw = encode_metadata(state)
    assert decode_metadata(raw) == state
    with pytest.raises(ProtocolError):
        decode_metadata(raw[:-3])
    assert [c.protocol for c in Compatibility.SESSIONED.offered()] == ["sessioned", "compatible", "default"]

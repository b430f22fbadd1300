"""`GET /metrics` on a real worker's REST listener: after a file → topic → file run over a
real broker, the Prometheus counters equal the records moved, skipped and dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from connect_support import CONVERTERS, lines, serving, wait_for
from prometheus_client.parser import text_string_to_metric_families

from strom.testing import StromBroker, free_port

GOOD, BAD = 200, 3


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get(("kafka_connect_" + name, tuple(sorted(labels.items()))), -1.0)


def test_counters_match_the_records_moved(tmp_path: Path, strom_broker: StromBroker) -> None:
    topic = "connect-metrics-lines"
    strom_broker.create_topic(topic)
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    rows = [json.dumps({"n": i}) for i in range(GOOD)]
    for i in range(BAD):  # not JSON: the sink's converter fails, the record is skipped
        rows.insert(50 * (i + 1), f"oops {i}")
    source_file.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    worker = {"bootstrap.servers": strom_broker.bootstrap_servers, **CONVERTERS,
              "offset.storage.file.filename": str(tmp_path / "offsets"), "offset.flush.interval.ms": "200",
              "listeners": f"http://127.0.0.1:{free_port()}"}
    with serving(worker) as (_, client):
        assert client.put("/connectors/lines-in/config", json={
            "connector.class": "FileStreamSource", "file": str(source_file), "topic": topic,
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"}).status_code == 201
        assert client.put("/connectors/lines-out/config", json={
            "connector.class": "FileStreamSink", "file": str(sink_file), "topics": topic,
            "value.converter.schemas.enable": "false", "errors.tolerance": "all",
            "errors.log.enable": "true", "errors.deadletterqueue.topic.name": "connect-metrics-dlq",
            "errors.deadletterqueue.topic.replication.factor": "1"}).status_code == 201
        wait_for(lambda: len(lines(sink_file)) >= GOOD, "the sink file")
        samples = wait_for(lambda: (s := scrape(client)) and value(
            s, "connector_task_offset_commit_success_total", connector="lines-out", task="0") > 0 and s,
            "a committed sink")

    total = GOOD + BAD
    src, sink = {"connector": "lines-in", "task": "0"}, {"connector": "lines-out", "task": "0"}
    assert value(samples, "source_task_source_record_poll_total", **src) == total
    assert value(samples, "source_task_source_record_write_total", **src) == total
    assert value(samples, "source_task_source_record_write_rate", **src) > 0
    assert value(samples, "sink_task_sink_record_read_total", **sink) == total
    assert value(samples, "sink_task_sink_record_send_total", **sink) == GOOD
    assert value(samples, "task_error_records_skipped_total", **sink) == BAD
    assert value(samples, "task_error_record_errors_total", **sink) == BAD
    assert value(samples, "task_error_errors_logged_total", **sink) == BAD
    assert value(samples, "task_error_deadletterqueue_produce_requests_total", **sink) == BAD
    assert value(samples, "task_error_deadletterqueue_produce_failures_total", **sink) == 0
    assert value(samples, "task_error_records_skipped_total", **src) == 0
    assert value(samples, "connector_task_offset_commit_success_total", **src) > 0
    assert value(samples, "connector_task_offset_commit_failure_total", **src) == 0
    assert value(samples, "connector_task_offset_commit_max_time_ms", **src) >= 0
    assert value(samples, "worker_connector_count") == 2
    assert value(samples, "worker_task_count") == 2
    assert value(samples, "worker_task_startup_success_total") == 2
    assert value(samples, "connector_status", connector="lines-out", type="sink", status="running") == 1
    assert value(samples, "connector_status", connector="lines-out", type="sink", status="failed") == 0
    assert value(samples, "connector_task_status", connector="lines-in", task="0", status="running") == 1
    assert value(samples, "worker_connector_task_count", connector="lines-in", state="running") == 1


def test_a_failed_start_and_its_state_are_counted(tmp_path: Path, strom_broker: StromBroker) -> None:
    worker = {"bootstrap.servers": strom_broker.bootstrap_servers, **CONVERTERS,
              "offset.storage.file.filename": str(tmp_path / "offsets"),
              "listeners": f"http://127.0.0.1:{free_port()}"}
    with serving(worker) as (_, client):
        assert client.put("/connectors/no-file/config", json={  # a directory cannot be appended to
            "connector.class": "FileStreamSink", "file": str(tmp_path), "topics": "x"}).status_code == 201
        samples = wait_for(lambda: (s := scrape(client)) and value(
            s, "connector_task_status", connector="no-file", task="0", status="failed") == 1 and s,
            "a failed task")
    assert value(samples, "worker_task_startup_failure_total") == 1
    assert value(samples, "worker_task_startup_success_total") == 0
    assert value(samples, "worker_connector_task_count", connector="no-file", state="failed") == 1

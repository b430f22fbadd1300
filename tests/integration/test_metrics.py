"""The broker's Prometheus endpoint: after a known workload, /metrics shows exactly the
produced and fetched bytes and records, requests and errors per API, latency histograms,
partition and group gauges; /healthz and /readyz answer; the admin port is chosen as
documented (0 = any free port, the default skipped with a warning when taken)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from support.broker_process import BrokerProcess, free_port, wait_for_port
from support.cli import strom, unique
from support.raw_client import RawClient, create_topic, fetch, produce, record_batch

pytestmark = pytest.mark.timeout(300)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(broker: BrokerProcess) -> Samples:
    with urllib.request.urlopen(broker.metrics_url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: Any) -> float:
    key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
    assert key in samples, f"no sample {key}; have {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_produced_and_fetched_bytes_and_records_are_counted_exactly(broker: BrokerProcess) -> None:
    topic = unique("metered")
    batches = [record_batch([b"a" * 10, b"b" * 20, b"c" * 30]),
               record_batch([b"x" * 100] * 7),
               record_batch([None, b"y"], keys=[b"k1", b"k2"])]
    with RawClient(broker.bootstrap) as client:
        assert create_topic(client, topic, partitions=2).error_code == 0
        before = scrape(broker)
        produce(client, topic, batches[0], partition=0)
        produce(client, topic, batches[1], partition=0)
        produce(client, topic, batches[2], partition=1)
        assert produce(client, topic, batches[0], partition=9).error_code != 0  # no such partition
        fetched = fetch(client, topic, 0, partition=0)
        fetched_again = fetch(client, topic, 3, partition=0)  # from the second batch
        connections_open = scrape(broker)
    after = scrape(broker)

    produced_bytes = sum(len(b) for b in batches)
    assert value(after, "strom_topic_bytes_in_total", topic=topic) == produced_bytes
    assert value(after, "strom_topic_records_in_total", topic=topic) == 12
    sent = len(fetched.records) + len(fetched_again.records)
    assert sent == len(batches[0]) + 2 * len(batches[1])
    assert value(after, "strom_topic_bytes_out_total", topic=topic) == sent
    assert value(after, "strom_topic_records_out_total", topic=topic) == 3 + 7 + 7

    def delta(name: str, **labels: Any) -> float:
        return value(after, name, **labels) - before.get(
            (name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)

    assert delta("strom_requests_total", api="Produce") == 4
    assert delta("strom_requests_total", api="Fetch") == 2
    assert delta("strom_request_errors_total", api="Produce",
                 error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    assert delta("strom_request_duration_seconds_count", api="Produce") == 4
    assert value(after, "strom_request_duration_seconds_bucket", api="Produce", le="+Inf") == \
        value(after, "strom_request_duration_seconds_count", api="Produce")
    assert value(after, "strom_request_duration_seconds_sum", api="Produce") > 0

    assert value(after, "strom_log_size_bytes", topic=topic, partition=0) == \
        len(batches[0]) + len(batches[1])
    assert value(after, "strom_log_size_bytes", topic=topic, partition=1) == len(batches[2])
    assert value(after, "strom_log_end_offset", topic=topic, partition=0) == 10
    assert value(after, "strom_high_watermark", topic=topic, partition=1) == 2
    assert value(after, "strom_log_start_offset", topic=topic, partition=1) == 0

    assert value(connections_open, "strom_connections") >= 1
    assert value(after, "strom_connections_opened_total") >= 1
    assert value(after, "strom_under_replicated_partitions") == 0
    assert value(after, "strom_offline_partitions") == 0
    assert value(after, "strom_active_controller") == 1
    assert value(after, "strom_partitions") >= 2
    assert value(after, "strom_leader_partitions") == value(after, "strom_partitions")
    assert value(after, "strom_isr_shrinks_total") == 0
    assert value(after, "strom_isr_expands_total") == 0
    assert value(after, "strom_ready") == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_client_workload_matches_the_log(broker: BrokerProcess) -> None:
    """1000 records from confluent-kafka, read back twice by a consumer group."""
    topic, group = unique("clientload"), unique("metrics-group")
    strom("topic", "create", topic, "-p", "3", "-b", broker.bootstrap)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
    for i in range(1000):
        producer.produce(topic, b"value-%04d" % i, b"key-%d" % (i % 7))
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 1000 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen += 1
    assert seen == 1000
    consumer.commit(offsets=[TopicPartition(topic, p, 1) for p in range(3)], asynchronous=False)
    consumer.close()

    samples = scrape(broker)
    sizes = sum(value(samples, "strom_log_size_bytes", topic=topic, partition=p) for p in range(3))
    ends = [value(samples, "strom_log_end_offset", topic=topic, partition=p) for p in range(3)]
    assert sum(ends) == 1000
    assert value(samples, "strom_topic_records_in_total", topic=topic) == 1000
    assert value(samples, "strom_topic_bytes_in_total", topic=topic) == sizes
    assert value(samples, "strom_topic_records_out_total", topic=topic) >= 1000
    assert value(samples, "strom_topic_bytes_out_total", topic=topic) >= sizes
    for p in range(3):
        assert value(samples, "strom_group_committed_offset", group=group, topic=topic,
                     partition=p) == 1
        assert value(samples, "strom_group_lag", group=group, topic=topic,
                     partition=p) == ends[p] - 1
    assert value(samples, "strom_group_members", group=group) == 0
    assert value(samples, "strom_groups", state="Empty") >= 1

    strom("topic", "delete", topic, "-b", broker.bootstrap)
    gone = scrape(broker)
    assert not [name for (name, labels) in gone if dict(labels).get("topic") == topic
                and name.startswith(("strom_topic_", "strom_log_", "strom_high_watermark"))]


def test_health_endpoints_and_the_printed_address(broker: BrokerProcess) -> None:
    base = broker.metrics_url.removesuffix("/metrics")
    assert base.startswith("http://127.0.0.1:")
    assert get(f"{base}/healthz") == (200, "ok\n")
    assert get(f"{base}/readyz") == (200, "ready\n")
    status, body = get(f"{base}/nope")
    assert status == 404 and "/metrics" in body
    request = urllib.request.Request(f"{base}/metrics", method="POST", data=b"x")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("POST was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405
    # keep-alive: several requests on one connection
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    assert b"ok\n" in data and b"ready\n" in data


def _server(tmp_path: Path, *props: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = tmp_path / f"broker-{port}.log"
    cmd = [sys.executable, "-m", "strom", "server", "-o", f"listeners=PLAINTEXT://127.0.0.1:{port}",
           "-o", f"log.dirs={tmp_path / str(port)}"]
    for prop in props:
        cmd += ["-o", prop]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    return proc, port, log


def test_default_port_taken_means_no_metrics_but_a_running_broker(tmp_path: Path) -> None:
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 9644))
        blocker.listen()
    except OSError:
        pass  # something else holds the default port already: the same situation
    proc, port, log = _server(tmp_path)
    try:
        wait_for_port(port)
        deadline = time.monotonic() + 10
        while "ready on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = log.read_text()
        assert "metrics disabled: cannot listen on port 9644" in text, text
        assert "metrics on" not in text
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        blocker.close()


def test_an_explicit_port_must_be_free_and_minus_one_turns_metrics_off(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        proc, _, log = _server(tmp_path, f"strom.metrics.port={busy}")
        assert proc.wait(30) == 1
        assert "cannot start" in log.read_text() and "address already in use" in log.read_text()

    proc, port, log = _server(tmp_path, "strom.metrics.port=-1")
    try:
        wait_for_port(port)
        time.sleep(0.5)
        assert "metrics" not in log.read_text()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_json_logs(tmp_path: Path) -> None:
    import json

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom", "server", "--log-format", "json", "--log-level", "info",
         "-o", f"listeners=PLAINTEXT://127.0.0.1:{port}", "-o", f"log.dirs={tmp_path / 'd'}",
         "-o", "strom.metrics.port=-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        strom("topic", "create", "logged", "-b", f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    entries = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    messages = [e["msg"] for e in entries]
    assert any(m.startswith("created topic logged") for m in messages), messages
    assert any("stopped cleanly" in m for m in messages)
    assert all(e["level"] in ("info", "warning") for e in entries)

    bad = subprocess.run([sys.executable, "-m", "strom", "server", "--log-format", "xml"],
                         capture_output=True, timeout=30)
    assert bad.returncode == 2 and b"log format" in bad.stderr

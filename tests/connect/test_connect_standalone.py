"""`strom connect standalone` end to end on a real Strom broker: FileStreamSource to a
topic to FileStreamSink, stopped (SIGTERM) and restarted with offsets kept, and its REST
API served by uvicorn over TCP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from connect_support import lines, wait_for, write_properties

from strom.testing import StromBroker
from strom.testing.broker import free_port

pytestmark = pytest.mark.slow


def start_worker(tmp: Path, bootstrap: str, port: int, *connectors: Path) -> subprocess.Popen[bytes]:
    worker = write_properties(tmp / "worker.properties", {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": tmp / "connect.offsets",
        "offset.flush.interval.ms": 1000,
        "listeners": f"http://127.0.0.1:{port}",
    })
    log = open(tmp / "worker.log", "ab")  # noqa: SIM115 - the child writes it until it exits
    return subprocess.Popen([sys.executable, "-m", "strom.cli.main", "connect", "standalone",
                             "--log-level", "info", str(worker), *map(str, connectors)],
                            stdout=log, stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_file_to_topic_to_file_survives_a_restart(tmp_path: Path, strom_broker: StromBroker) -> None:
    strom_broker.create_topic("connect-e2e-lines", partitions=2)
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    source_file.write_text("".join(f"line-{i}\n" for i in range(100)), encoding="utf-8")
    source = write_properties(tmp_path / "source.properties", {
        "name": "e2e-source", "connector.class": "FileStreamSource", "tasks.max": 1,
        "file": source_file, "topic": "connect-e2e-lines"})
    sink = write_properties(tmp_path / "sink.properties", {
        "name": "e2e-sink", "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": 1, "file": sink_file, "topics": "connect-e2e-lines"})
    port = free_port()
    worker = start_worker(tmp_path, strom_broker.bootstrap_servers, port, source, sink)
    try:
        wait_for(lambda: len(lines(sink_file)) >= 100, "the first 100 lines in the sink file")
        status = httpx.get(f"http://127.0.0.1:{port}/connectors?expand=status").json()
        assert status["e2e-source"]["status"]["connector"]["state"] == "RUNNING"
        assert [t["state"] for t in status["e2e-sink"]["status"]["tasks"]] == ["RUNNING"]
    finally:
        assert stop_worker(worker) == 0, (tmp_path / "worker.log").read_text()

    with source_file.open("a", encoding="utf-8") as more:
        more.write("".join(f"line-{i}\n" for i in range(100, 150)))
    worker = start_worker(tmp_path, strom_broker.bootstrap_servers, port, source, sink)
    try:
        wait_for(lambda: len(lines(sink_file)) >= 150, "all 150 lines in the sink file")
        expected = {"offsets": [{"partition": {"filename": str(source_file)},
                                 "offset": {"position": source_file.stat().st_size}}]}
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/connectors/e2e-source/offsets").json()
                 == expected, "the source offset of the whole file")
    finally:
        assert stop_worker(worker) == 0, (tmp_path / "worker.log").read_text()
    # a clean stop commits both sides: nothing lost, nothing written twice, per-partition order
    got = lines(sink_file)
    assert sorted(got, key=lambda s: int(s.split("-")[1])) == [f"line-{i}" for i in range(150)]
    assert len(got) == 150


def test_worker_refuses_an_invalid_connector_file(tmp_path: Path, strom_broker: StromBroker) -> None:
    bad = write_properties(tmp_path / "bad.properties",
                           {"name": "bad", "connector.class": "FileStreamSource"})
    worker = start_worker(tmp_path, strom_broker.bootstrap_servers, free_port(), bad)
    assert worker.wait(timeout=60) == 1
    log = (tmp_path / "worker.log").read_text()
    assert 'Missing required configuration "topic" which has no default value.' in log


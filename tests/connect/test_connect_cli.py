"""`strom connect` management verbs against a running worker's REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from connect_support import CONVERTERS, serving, wait_for, write_properties
from typer.testing import CliRunner

from strom.cli.main import app
from strom.testing import StromBroker, free_port

GENERATOR = "strom.connect.connectors.generator.OrderGeneratorSourceConnector"


@pytest.fixture
def url(tmp_path: Path, strom_broker: StromBroker) -> Iterator[str]:
    with serving({"bootstrap.servers": strom_broker.bootstrap_servers, **CONVERTERS,
                  "offset.storage.file.filename": str(tmp_path / "offsets"),
                  "offset.flush.interval.ms": "100",
                  "listeners": f"http://127.0.0.1:{free_port()}"}) as (standalone, _):
        yield standalone.rest_url()


def run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["connect", *args, "--url", url])
    return result.exit_code, result.output


def test_create_list_stop_offsets_delete(tmp_path: Path, url: str, strom_broker: StromBroker) -> None:
    strom_broker.create_topic("connect-cli-orders")
    config = write_properties(tmp_path / "orders.properties", {
        "name": "cli-orders", "connector.class": GENERATOR, "topic": "connect-cli-orders",
        "max.records": 20, "batch.size": 5})
    code, out = run(url, "create", str(config))
    assert code == 0 and json.loads(out)["name"] == "cli-orders"
    running = "cli-orders\tsource\tRUNNING\ttasks: RUNNING"
    wait_for(lambda: running in run(url, "list")[1], "a running connector")
    wait_for(lambda: '"seq": 19' in run(url, "offsets", "get", "cli-orders")[1], "the offset of order 19")
    code, out = run(url, "offsets", "reset", "cli-orders")
    assert code == 1 and "must be in the STOPPED state" in out and "(HTTP 400)" in out
    assert run(url, "stop", "cli-orders")[0] == 0
    assert json.loads(run(url, "status", "cli-orders")[1])["connector"]["state"] == "STOPPED"
    new = tmp_path / "offsets.json"
    new.write_text(json.dumps({"offsets": [{"partition": {"generator": "orders"}, "offset": {"seq": 4}}]}))
    assert run(url, "offsets", "alter", "cli-orders", str(new))[0] == 0
    assert '"seq": 4' in run(url, "offsets", "get", "cli-orders")[1]
    bare = tmp_path / "bare.json"  # the list alone
    bare.write_text(json.dumps([{"partition": {"generator": "orders"}, "offset": {"seq": 7}}]))
    assert run(url, "offsets", "alter", "cli-orders", str(bare))[0] == 0
    assert '"seq": 7' in run(url, "offsets", "get", "cli-orders")[1]
    code, out = run(url, "offsets", "reset", "cli-orders")
    assert code == 0 and "have been reset" in out
    assert json.loads(run(url, "offsets", "get", "cli-orders")[1]) == {"offsets": []}
    assert run(url, "delete", "cli-orders")[0] == 0
    code, out = run(url, "status", "cli-orders")
    assert code == 1 and "No status found for connector cli-orders (HTTP 404)" in out


def test_json_file_validate_config_plugins_and_task_restart(tmp_path: Path, url: str,
                                                            strom_broker: StromBroker) -> None:
    strom_broker.create_topic("connect-cli-json")
    document = {"name": "json orders", "config": {"connector.class": GENERATOR, "topic": "connect-cli-json",
                                                  "max.records": "5"}}
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(document))
    code, out = run(url, "validate", str(path))
    assert code == 0 and "json orders: valid" in out
    code, out = run(url, "create", str(path), "--no-update")
    assert code == 0 and json.loads(out)["name"] == "json orders"
    code, out = run(url, "create", str(path), "--no-update")  # POST: exists already
    assert code == 1 and "Connector json orders already exists (HTTP 409)" in out
    assert json.loads(run(url, "config", "json orders")[1])["topic"] == "connect-cli-json"
    wait_for(lambda: "RUNNING" in run(url, "list", "--json")[1], "a running connector")
    listed = json.loads(run(url, "list", "--json")[1])
    assert listed["json orders"]["info"]["config"]["max.records"] == "5"
    assert run(url, "restart", "json orders", "--task", "0")[0] == 0
    assert run(url, "restart", "json orders", "--task", "9")[0] == 1
    code, out = run(url, "plugins")
    assert code == 0 and "org.apache.kafka.connect.file.FileStreamSourceConnector\tsource" in out
    assert "transformation" in run(url, "plugins", "--all")[1]
    invalid = write_properties(tmp_path / "bad.properties", {
        "name": "bad", "connector.class": "FileStreamSource", "topic": "a,b"})
    code, out = run(url, "validate", str(invalid))
    assert code == 1 and "topic:" in out and "requires definition of a single topic" in out

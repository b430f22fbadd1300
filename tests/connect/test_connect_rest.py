"""Kafka Connect's REST API on a standalone herder and a real Strom broker: paths, status
codes, JSON shapes and error bodies of Kafka Connect 4.x; the connector lifecycle (create,
pause, resume, stop, restart, delete), KIP-875 offsets, validation, loggers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from connect_support import CONVERTERS, read_topic, serving, wait_for

from strom.testing import StromBroker, free_port

GENERATOR = "strom.connect.connectors.generator.OrderGeneratorSourceConnector"


@pytest.fixture
def rest(tmp_path: Path, strom_broker: StromBroker) -> Iterator[httpx.Client]:
    """A standalone worker's REST API served by uvicorn on a thread, over loopback TCP."""
    with serving({"bootstrap.servers": strom_broker.bootstrap_servers,
                  "offset.storage.file.filename": str(tmp_path / "offsets"), **CONVERTERS,
                  "offset.flush.interval.ms": "200",
                  "listeners": f"http://127.0.0.1:{free_port()}"}, "cluster-x") as (_, client):
        yield client


def state_of(rest: httpx.Client, name: str) -> tuple[str, list[str]]:
    status = rest.get(f"/connectors/{name}/status").json()
    return status["connector"]["state"], [t["state"] for t in status["tasks"]]


def generator(name: str, topic: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "config": {"connector.class": GENERATOR, "topic": topic, "batch.size": "10",
                                     "interval.ms": "50", **extra}}


def test_root_plugins_and_unknown_paths(rest: httpx.Client) -> None:
    root = rest.get("/").json()
    assert root == {"version": "4.4.0", "commit": "strom", "kafka_cluster_id": "cluster-x"}
    plugins = rest.get("/connector-plugins").json()
    assert {"class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "type": "source",
            "version": "0.1.0"} in plugins
    assert {p["type"] for p in plugins} == {"source", "sink"}
    everything = rest.get("/connector-plugins?connectorsOnly=false").json()
    kinds = {p["type"] for p in everything}
    assert {"transformation", "predicate", "converter", "header_converter"} <= kinds
    missing = rest.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error_code": 404,
                                                           "message": "HTTP 404 Not Found"})
    assert rest.delete("/connector-plugins").json()["error_code"] == 405


def test_validate_answers_kafkas_shape(rest: httpx.Client) -> None:
    answer = rest.put("/connector-plugins/FileStreamSinkConnector/config/validate",
                      json={"connector.class": "FileStreamSinkConnector", "name": "v",
                            "transforms": "mask", "transforms.mask.type": "MaskField$Value"}).json()
    assert answer["name"] == "FileStreamSinkConnector"  # as the request named it, like Kafka
    assert answer["groups"][:4] == ["Common", "Transforms", "Predicates", "Error Handling"]
    errors = {c["value"]["name"]: c["value"]["errors"] for c in answer["configs"] if c["value"]["errors"]}
    assert errors == {"topics": ["Must configure one of topics or topics.regex"],
                      "topics.regex": ["Must configure one of topics or topics.regex"],
                      "transforms.mask.fields": ['Missing required configuration "transforms.mask.fields" '
                                                 "which has no default value."]}
    assert answer["error_count"] == 3
    mismatch = rest.put("/connector-plugins/FileStreamSinkConnector/config/validate",
                        json={"connector.class": "FileStreamSource"})
    assert mismatch.status_code == 400
    assert mismatch.json()["message"] == ("Included connector type FileStreamSource does not match request "
                                          "type FileStreamSinkConnector")
    assert rest.get("/connector-plugins/Nope/config").status_code == 404


def test_create_rejects_invalid_and_duplicate_configs(rest: httpx.Client) -> None:
    invalid = rest.post("/connectors", json={"name": "bad", "config": {"connector.class": GENERATOR}})
    assert invalid.status_code == 400
    assert invalid.json()["message"].startswith(
        "Connector configuration is invalid and contains the following 1 error(s):\n"
        'Missing required configuration "topic" which has no default value.')
    assert rest.post("/connectors", json=generator("dup", "connect-rest-dup")).status_code == 201
    again = rest.post("/connectors", json=generator("dup", "connect-rest-dup"))
    assert (again.status_code, again.json()) == (409, {"error_code": 409,
                                                       "message": "Connector dup already exists"})
    gone = rest.get("/connectors/none")
    assert (gone.status_code, gone.json()) == (404, {"error_code": 404,
                                                     "message": "Connector none not found"})
    assert rest.get("/connectors/none/status").json()["message"] == "No status found for connector none"
    assert rest.put("/connectors/none/pause").json() == {"error_code": 404,
                                                         "message": "Unknown connector none"}
    rest.delete("/connectors/dup")


def test_connector_lifecycle(rest: httpx.Client, strom_broker: StromBroker) -> None:
    strom_broker.create_topic("connect-rest-orders")
    body = generator("orders", "connect-rest-orders", **{"max.records": "50"})
    created = rest.post("/connectors", json=body)
    assert created.status_code == 201
    assert created.json() == {"name": "orders", "type": "source",
                              "tasks": [{"connector": "orders", "task": 0}],
                              "config": {**body["config"], "name": "orders"}}
    assert rest.get("/connectors").json() == ["orders"]
    wait_for(lambda: state_of(rest, "orders") == ("RUNNING", ["RUNNING"]), "connector running")
    expanded = rest.get("/connectors?expand=status&expand=info").json()
    assert set(expanded["orders"]) == {"status", "info"}
    task = rest.get("/connectors/orders/tasks").json()[0]
    assert task["id"] == {"connector": "orders", "task": 0}
    assert task["config"]["task.class"].endswith("OrderGeneratorSourceTask")
    assert rest.get("/connectors/orders/tasks/0/status").json()["state"] == "RUNNING"
    assert rest.get("/connectors/orders/tasks/7/status").status_code == 404

    assert rest.put("/connectors/orders/pause").status_code == 202
    wait_for(lambda: state_of(rest, "orders") == ("PAUSED", ["PAUSED"]), "connector paused")
    assert rest.put("/connectors/orders/resume").status_code == 202
    wait_for(lambda: state_of(rest, "orders") == ("RUNNING", ["RUNNING"]), "connector resumed")
    records = read_topic(strom_broker.bootstrap_servers, "connect-rest-orders", 50)
    assert len(records) == 50
    assert rest.get("/connectors/orders/topics").json() == {"orders": {"topics": ["connect-rest-orders"]}}

    restarted = rest.post("/connectors/orders/restart?includeTasks=true")
    assert restarted.status_code == 202
    assert restarted.json()["connector"]["state"] == "RESTARTING"
    assert [t["state"] for t in restarted.json()["tasks"]] == ["RESTARTING"]
    wait_for(lambda: state_of(rest, "orders") == ("RUNNING", ["RUNNING"]), "connector restarted")
    assert rest.post("/connectors/orders/restart").status_code == 204
    assert rest.post("/connectors/orders/tasks/0/restart").status_code == 204

    assert rest.delete("/connectors/orders").status_code == 204
    assert rest.get("/connectors/orders").status_code == 404


def test_offsets_of_a_stopped_source_connector(rest: httpx.Client, strom_broker: StromBroker) -> None:
    strom_broker.create_topic("connect-rest-offsets")
    rest.post("/connectors", json=generator("offs", "connect-rest-offsets", **{"max.records": "30"}))
    expected = {"offsets": [{"partition": {"generator": "orders"}, "offset": {"seq": 29}}]}
    wait_for(lambda: rest.get("/connectors/offs/offsets").json() == expected, "offsets of 30 orders")
    refused = rest.patch("/connectors/offs/offsets", json={"offsets": [
        {"partition": {"generator": "orders"}, "offset": {"seq": 9}}]})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Connectors must be in the STOPPED state")

    assert rest.put("/connectors/offs/stop").status_code == 204
    assert rest.get("/connectors/offs/status").json()["connector"]["state"] == "STOPPED"
    assert rest.get("/connectors/offs").json()["tasks"] == []
    altered = rest.patch("/connectors/offs/offsets", json={"offsets": [
        {"partition": {"generator": "orders"}, "offset": {"seq": 19}}]})
    assert altered.json()["message"].startswith(
        "The Connect framework-managed offsets for this connector have been altered successfully.")
    assert rest.get("/connectors/offs/offsets").json()["offsets"][0]["offset"] == {"seq": 19}
    # resumed, the generator continues after the altered offset: orders 20..29 again
    rest.put("/connectors/offs/resume")
    wait_for(lambda: len(read_topic(strom_broker.bootstrap_servers, "connect-rest-offsets", 40, 2)) >= 40,
             "ten more orders after the altered offset")
    rest.put("/connectors/offs/stop")
    reset = rest.delete("/connectors/offs/offsets")
    assert reset.json()["message"].startswith(
        "The Connect framework-managed offsets for this connector have been reset successfully.")
    assert rest.get("/connectors/offs/offsets").json() == {"offsets": []}
    rest.delete("/connectors/offs")


def test_admin_loggers(rest: httpx.Client) -> None:
    changed = rest.put("/admin/loggers/strom.connect.runtime", json={"level": "DEBUG"})
    assert changed.status_code == 200 and changed.json()[0] == "strom.connect.runtime"
    level = rest.get("/admin/loggers/strom.connect.runtime").json()
    assert level["level"] == "DEBUG" and isinstance(level["last_modified"], int)
    assert rest.get("/admin/loggers").json()["strom.connect.runtime"]["level"] == "DEBUG"
    bad = rest.put("/admin/loggers/strom.connect.runtime", json={"level": "LOUD"})
    assert (bad.status_code, bad.json()["message"]) == (404, "invalid log level 'LOUD'.")  # Kafka's
    logging.getLogger("strom.connect.runtime").setLevel(logging.NOTSET)

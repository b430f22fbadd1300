"""`strom cluster info`, `strom cluster config show|get|set|delete` and `strom bench
produce|consume` against a live broker."""

from __future__ import annotations

import re
from typing import Any

import pytest

from support.broker_process import BrokerProcess
from support.cli import strom, strom_json, table, unique

pytestmark = pytest.mark.timeout(300)


def test_cluster_info(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("counted")
    strom("topic", "create", topic, "-p", "4", *b)
    info = strom_json("cluster", "info", *b)
    assert len(info["cluster_id"]) == 22 and info["controller_id"] == 0
    assert info["brokers"] == [{"id": 0, "host": "127.0.0.1", "port": broker.port, "rack": None}]
    assert info["topics"] >= 1 and info["partitions"] >= 4
    text = strom("cluster", "info", *b).stdout
    assert f"CLUSTER     {info['cluster_id']}" in text
    [row] = table(text[text.index("ID "):])
    assert row == {"ID": "0", "HOST": "127.0.0.1", "PORT": str(broker.port), "RACK": "-",
                   "CONTROLLER": "*"}


def test_cluster_config_show(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    rows = strom_json("cluster", "config", "show", *b)
    by_name = {r["name"]: r for r in rows}
    assert by_name["log.dirs"]["value"] == str(broker.data_dir)
    assert by_name["log.dirs"]["source"] == "STATIC_BROKER"
    assert by_name["num.partitions"] == {"broker": 0, "name": "num.partitions", "value": "1",
                                         "source": "DEFAULT", "read_only": True,
                                         "sensitive": False}
    picked = strom_json("cluster", "config", "show", "log.retention.*", "--broker", "0", *b)
    assert picked and all(r["name"].startswith("log.retention.") for r in picked)
    changed = strom_json("cluster", "config", "show", "--changed", *b)
    assert {r["name"] for r in changed} >= {"listeners", "log.dirs"}
    assert all(r["source"] != "DEFAULT" for r in changed)
    text = strom("cluster", "config", "show", "num.partitions", "message.max.bytes", *b).stdout
    assert table(text) == [
        {"BROKER": "0", "NAME": "message.max.bytes", "VALUE": "1048588", "SOURCE": "DEFAULT",
         "DYNAMIC": "true"},
        {"BROKER": "0", "NAME": "num.partitions", "VALUE": "1", "SOURCE": "DEFAULT",
         "DYNAMIC": "false"}]


def test_cluster_config_set_get_and_delete(broker_factory: Any) -> None:
    node: BrokerProcess = broker_factory()
    b = ("-b", node.bootstrap)
    out = strom("cluster", "config", "set", "log.retention.ms=3600000",
                "log.cleaner.threads=2", *b).stdout
    assert out.splitlines() == ["set log.retention.ms=3600000 for the cluster-wide default",
                                "set log.cleaner.threads=2 for the cluster-wide default"]
    assert strom("cluster", "config", "set", "message.max.bytes", "2000000", "--broker", "0",
                 *b).stdout.strip() == "set message.max.bytes=2000000 for broker 0"
    defaults = strom_json("cluster", "config", "show", "--default", *b)
    assert [(r["broker"], r["name"], r["value"], r["source"]) for r in defaults] == [
        (None, "log.cleaner.threads", "2", "DYNAMIC_DEFAULT_BROKER"),
        (None, "log.retention.ms", "3600000", "DYNAMIC_DEFAULT_BROKER")]
    assert strom("cluster", "config", "get", "message.max.bytes", *b).stdout == "2000000\n"
    assert strom("cluster", "config", "get", "log.retention.ms", "-B", "0",
                 *b).stdout == "3600000\n"
    mine = {r["name"]: r for r in strom_json("cluster", "config", "show", "--dynamic",
                                             "--changed", *b)}
    assert mine["message.max.bytes"]["source"] == "DYNAMIC_BROKER"
    assert mine["log.retention.ms"]["source"] == "DYNAMIC_DEFAULT_BROKER"
    assert "log.dirs" not in mine  # not dynamic

    node.restart()  # dynamic configs live in the metadata store
    assert strom("cluster", "config", "get", "log.retention.ms", *b).stdout == "3600000\n"

    dry = strom("cluster", "config", "delete", "log.retention.ms", "--dry-run", *b).stdout
    assert dry.strip() == "would remove log.retention.ms from the cluster-wide default"
    assert strom("cluster", "config", "get", "log.retention.ms", *b).stdout == "3600000\n"
    strom("cluster", "config", "delete", "log.retention.ms", *b)
    strom("cluster", "config", "delete", "message.max.bytes", "-B", "0", *b)
    assert strom("cluster", "config", "get", "log.retention.ms", *b).stdout == ""
    assert strom("cluster", "config", "get", "message.max.bytes", *b).stdout == "1048588\n"

    refused = strom("cluster", "config", "set", "log.dirs=/elsewhere", *b, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith(
        "strom: error: INVALID_REQUEST: cluster-wide broker configs: Cannot update these "
        "configs dynamically: [log.dirs]"), refused.stderr
    refused = strom("cluster", "config", "set", "log.retention.ms=soon", "-B", "0", *b,
                    check=False)
    assert refused.returncode == 1
    assert ("strom: error: INVALID_REQUEST: broker 0: Invalid value soon for configuration "
            "log.retention.ms: Not a number of type LONG") in refused.stderr, refused.stderr
    missing = strom("cluster", "config", "get", "no.such.config", *b, check=False)
    assert missing.returncode == 1 and "no config named 'no.such.config'" in missing.stderr


def test_bench_produce_and_consume(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("bench")
    produced = strom("bench", "produce", topic, "-n", "20000", "-s", "200", "--interval", "0.2",
                     *b)
    summary = produced.stdout.strip()
    assert re.fullmatch(
        r"20000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, "
        r"[\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99.9th\.",
        summary), summary
    as_json = strom_json("bench", "produce", topic, "-n", "5000", "-s", "100", "-z", "lz4",
                         "--throughput", "20000", *b)
    assert as_json["benchmark"] == "produce" and as_json["records"] == 5000
    assert as_json["bytes"] == 5000 * 100
    latency = as_json["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["p99.9"] \
        <= latency["max"]
    assert as_json["seconds"] >= 0.2  # 5000 records at 20000/s take at least 0.25 s

    [described] = strom_json("topic", "describe", topic, *b)
    assert sum(p["high_watermark"] for p in described["partitions"]) == 25000
    assert len(described["partitions"]) == 3

    consumed = strom_json("bench", "consume", topic, "-n", "25000", *b)
    assert consumed["records"] == 25000
    assert consumed["bytes"] == 20000 * 200 + 5000 * 100
    assert consumed["records_per_sec"] > 0 and consumed["e2e_latency_ms"]["p99.9"] >= 0
    text = strom("bench", "consume", topic, "-n", "100", *b).stdout
    assert text.startswith("100 records read,") and "99.9th" in text

    empty = unique("empty")
    strom("topic", "create", empty, *b)
    nothing = strom("bench", "consume", empty, "--timeout", "1", *b, check=False)
    assert nothing.returncode == 1 and "no records" in nothing.stderr

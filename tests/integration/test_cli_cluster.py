"""`strom cluster info|config` and `strom bench produce|consume` against a live broker."""

from __future__ import annotations

import re

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


def test_cluster_config(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    rows = strom_json("cluster", "config", *b)
    by_name = {r["name"]: r for r in rows}
    assert by_name["log.dirs"]["value"] == str(broker.data_dir)
    assert by_name["log.dirs"]["source"] == "STATIC_BROKER"
    assert by_name["num.partitions"] == {"broker": 0, "name": "num.partitions", "value": "1",
                                         "source": "DEFAULT", "read_only": False,
                                         "sensitive": False}
    picked = strom_json("cluster", "config", "log.retention.*", "--broker", "0", *b)
    assert picked and all(r["name"].startswith("log.retention.") for r in picked)
    changed = strom_json("cluster", "config", "--changed", *b)
    assert {r["name"] for r in changed} >= {"listeners", "log.dirs"}
    assert all(r["source"] != "DEFAULT" for r in changed)
    text = strom("cluster", "config", "num.partitions", *b).stdout
    assert table(text) == [{"BROKER": "0", "NAME": "num.partitions", "VALUE": "1",
                            "SOURCE": "DEFAULT", "READ-ONLY": "false"}]


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

"""A sink created after an exactly-once source has committed transactions reads the topic
from its start (issue 14): three Strom Connect distributed workers, the sink's consumer
read_committed with `auto.offset.reset=earliest`, PostgreSQL sink; every line the source
committed before the sink existed reaches the table, even when an early rebalance stops the
sink's first task between a consume and its put (which committed the unput batch: the
table began at offset 510). Real broker, PostgreSQL, processes; the deterministic check of
that commit is test_connect_sink_commit.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from connect_support import wait_for
from test_connect_distributed_three_workers import rows, three_workers  # noqa: F401 - fixture
from test_connect_eos_source import append_lines, committed_values, source_owner

from strom.testing import StromBroker
from strom.testing.postgres import PostgresServer

pytestmark = pytest.mark.slow
LINES = 1500


def test_a_sink_created_after_the_source_writes_every_line(
        tmp_path: Path, strom_broker: StromBroker, postgres: PostgresServer,
        three_workers: dict[str, Any]) -> None:  # noqa: F811 - the fixture
    database = f"late_{uuid.uuid4().hex[:8]}"
    conninfo = postgres.create_database(database)
    topic = f"{three_workers['group']}-late".replace("-", "_")
    strom_broker.create_topic(topic, partitions=1)
    source_file = tmp_path / "in.txt"
    append_lines(source_file, 0, LINES, 0)
    clients = three_workers["clients"]
    name = f"late-{uuid.uuid4().hex[:6]}"
    source = {"connector.class": "FileStreamSource", "file": str(source_file), "topic": topic,
              "batch.size": "50", "exactly.once.support": "required"}
    sink = {"connector.class": "strom.connect.connectors.postgres.PostgresSinkConnector",
            "topics": topic, "connection.url": postgres.url(database), "auto.create": "true",
            "insert.mode": "upsert", "pk.mode": "kafka", "transforms": "hoist",
            "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
            "transforms.hoist.field": "line"}
    assert clients["w1"].put(f"/connectors/{name}-source/config", json=source).status_code == 201
    bootstrap = strom_broker.bootstrap_servers
    wait_for(lambda: len(committed_values(bootstrap, topic)) >= 500, "ten transactions committed", 60)
    assert clients["w2"].put(f"/connectors/{name}-sink/config", json=sink).status_code == 201
    wait_for(lambda: source_owner(clients["w3"], f"{name}-sink"), "the sink task running", 60)
    expected = [f"line-{i}" for i in range(LINES)]
    wait_for(lambda: len(committed_values(bootstrap, topic)) >= LINES, "every line in the topic", 90)
    try:
        wait_for(lambda: len(rows(conninfo, topic)) >= LINES, "every line in PostgreSQL", 60)
    except AssertionError:
        have = rows(conninfo, topic)
        missing = sorted(set(expected) - set(have), key=lambda x: int(x.split("-")[1]))
        offsets = clients["w3"].get(f"/connectors/{name}-sink/offsets").json()
        raise AssertionError(f"{len(missing)} lines missing in PostgreSQL: {missing[:3]}..{missing[-3:]}; "
                             f"sink offsets {offsets}") from None
    assert sorted(rows(conninfo, topic)) == sorted(expected)

"""Issue 14's distributed demonstration: three Strom Connect worker processes, exactly-once
source enabled, file -> topic -> PostgreSQL. The worker running the source task is
SIGKILLed mid-stream; its work moves to the two others. At the end the topic, read with
read_committed, holds every line exactly once and in order (the source's transactions),
and the PostgreSQL table has one row per line (the sink upserts by the record's Kafka
coordinates, so its own at-least-once redeliveries after the move write no second row).
Real broker, real PostgreSQL, real processes."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from connect_support import wait_for
from test_connect_eos_source import append_lines, committed_values, source_owner, workers

from strom.testing import StromBroker
from strom.testing.postgres import PostgresServer

pytestmark = pytest.mark.slow
LINES = 4000


@pytest.fixture
def three_workers(tmp_path: Path, strom_broker: StromBroker) -> Iterator[dict[str, Any]]:
    with workers(tmp_path, strom_broker.bootstrap_servers, count=3, prefix="three",
                 extra={"offset.flush.interval.ms": 1000}) as cluster:
        yield cluster


def rows(conninfo: str, table: str) -> list[str]:
    try:
        with psycopg.connect(conninfo) as conn:
            return [r[0] for r in conn.execute(f'SELECT line FROM "{table}"').fetchall()]
    except psycopg.errors.UndefinedTable:
        return []


def test_three_workers_one_killed_file_to_topic_to_postgres(
        tmp_path: Path, strom_broker: StromBroker, postgres: PostgresServer,
        three_workers: dict[str, Any]) -> None:
    database = f"three_{uuid.uuid4().hex[:8]}"
    conninfo = postgres.create_database(database)
    topic = f"{three_workers['group']}-lines".replace("-", "_")
    strom_broker.create_topic(topic, partitions=1)
    source_file = tmp_path / "in.txt"
    append_lines(source_file, 0, 1000, 0)
    clients = three_workers["clients"]
    source = {"connector.class": "FileStreamSource", "file": str(source_file), "topic": topic,
              "batch.size": "50", "exactly.once.support": "required"}
    sink = {"connector.class": "strom.connect.connectors.postgres.PostgresSinkConnector",
            "topics": topic, "connection.url": postgres.url(database), "auto.create": "true",
            "insert.mode": "upsert", "pk.mode": "kafka",
            "transforms": "hoist",
            "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
            "transforms.hoist.field": "line"}
    assert clients["w2"].put("/connectors/three-sink/config", json=sink).status_code == 201
    wait_for(lambda: source_owner(clients["w3"], "three-sink"), "the sink task running", 60)
    assert clients["w1"].put("/connectors/three-source/config", json=source).status_code == 201
    owner = wait_for(lambda: source_owner(clients["w3"], "three-source"), "the source task running", 60)
    wait_for(lambda: len(rows(conninfo, topic)) >= 500, "the first lines in PostgreSQL", 60)

    writer = threading.Thread(target=append_lines, args=(source_file, 1000, LINES, 0.05))
    writer.start()
    time.sleep(1)
    victim = next(n for n, p in three_workers["ports"].items() if owner == f"127.0.0.1:{p}")
    three_workers["procs"][victim].send_signal(signal.SIGKILL)
    three_workers["procs"][victim].wait(timeout=30)
    writer.join()

    survivors = {n: c for n, c in clients.items() if n != victim}
    alive = next(iter(survivors.values()))
    survivor_ids = {f"127.0.0.1:{three_workers['ports'][n]}" for n in survivors}
    wait_for(lambda: source_owner(alive, "three-source") in survivor_ids, "the source task moved", 90)
    expected = [f"line-{i}" for i in range(LINES)]
    bootstrap = strom_broker.bootstrap_servers
    wait_for(lambda: len(committed_values(bootstrap, topic)) >= LINES, "every line in the topic", 90)
    assert committed_values(bootstrap, topic) == expected  # exactly once, in order
    try:
        wait_for(lambda: len(rows(conninfo, topic)) >= LINES, "every line in PostgreSQL", 90)
    except AssertionError:
        missing = sorted(set(expected) - set(rows(conninfo, topic)), key=lambda x: int(x.split("-")[1]))
        raise AssertionError(f"{len(missing)} lines missing in PostgreSQL: {missing[:3]}..{missing[-3:]}; "
                             f"{alive.get('/connectors/three-sink/offsets').json()}") from None
    assert sorted(rows(conninfo, topic)) == sorted(expected)  # none lost, none twice
    statuses = [alive.get(f"/connectors/{n}/status").json() for n in ("three-source", "three-sink")]
    assert all(t["state"] == "RUNNING" and t["worker_id"] in survivor_ids
               for s in statuses for t in s["tasks"])

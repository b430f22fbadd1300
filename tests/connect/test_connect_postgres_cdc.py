"""PostgresCdcSource through a real broker and a real PostgreSQL: a snapshot, then the
inserts, updates and deletes in commit order with before/after; a restart resumes where
the stored offsets stop; CDC source → topic → PostgreSQL sink copies a table."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from connect_support import CONVERTERS, read_topic, wait_for, write_properties

from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.standalone import build
from strom.testing import StromBroker
from strom.testing.broker import free_port
from strom.testing.postgres import PostgresServer

TABLE = """CREATE TABLE {name} (id integer PRIMARY KEY, name text NOT NULL, qty smallint,
           price numeric(10, 2), at timestamptz, tags jsonb);
           ALTER TABLE {name} REPLICA IDENTITY FULL"""


def herder_at(bootstrap: str, offsets: Path) -> StandaloneHerder:
    return build({"bootstrap.servers": bootstrap, **CONVERTERS,
                  "offset.storage.file.filename": str(offsets), "offset.flush.interval.ms": "200",
                  "listeners": "http://127.0.0.1:0"}).herder


@pytest.fixture
def herder(tmp_path: Path, strom_broker: StromBroker) -> Iterator[StandaloneHerder]:
    standalone = herder_at(strom_broker.bootstrap_servers, tmp_path / "offsets")
    yield standalone
    standalone.stop()


def database(postgres: PostgresServer, name: str) -> str:
    conninfo = postgres.create_database(name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(TABLE.format(name="orders"))
    return conninfo


def run(conninfo: str, *statements: str) -> None:
    """Each statement in its own transaction."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def cdc_config(postgres: PostgresServer, db: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"connector.class": "PostgresCdcSource", "connection.url": postgres.url(db),
            "topic.prefix": prefix, "table.include.list": "public.orders", "slot.name": f"slot_{prefix}",
            "publication.name": f"pub_{prefix}", "poll.interval.ms": "50", **extra}


def slot_backlog(conninfo: str, prefix: str) -> int:
    """pgoutput messages the slot still holds."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                           "'proto_version', '1', 'publication_names', %s)",
                           [f"slot_{prefix}", f"pub_{prefix}"]).fetchone()
    assert row is not None
    return int(row[0])


def events(bootstrap: str, topic: str, count: int) -> list[tuple[Any, Any]]:
    """(key payload, value payload) of the first `count` records; None for a tombstone."""
    found = read_topic(bootstrap, topic, count)
    assert len(found) >= count, f"{len(found)} of {count} records in {topic}"

    def payload(raw: bytes | None) -> Any:
        return None if raw is None else json.loads(raw)["payload"]

    return [(payload(m.key()), payload(m.value())) for m in found]


def test_snapshot_then_changes_in_order(strom_broker: StromBroker, herder: StandaloneHerder,
                                        postgres: PostgresServer) -> None:
    db = database(postgres, "cdc_order")
    run(db, "INSERT INTO orders VALUES (1, 'ann', 2, 10.50, '2024-01-02 03:04:05.678+00', '{\"a\": 1}'),"
            " (2, 'bob', NULL, NULL, NULL, NULL)")
    herder.put_config("cdc", cdc_config(postgres, "cdc_order", "cdc1"), allow_replace=False)
    topic = "cdc1.public.orders"
    snapshot = events(strom_broker.bootstrap_servers, topic, 2)
    assert [v["op"] for _, v in snapshot] == ["r", "r"]
    assert [v["source"]["snapshot"] for _, v in snapshot] == ["true", "last"]
    first = snapshot[0][1]["after"]
    assert snapshot[0][0] == {"id": 1}
    assert (first["id"], first["name"], first["qty"], first["at"], first["tags"]) == (
        1, "ann", 2, 1704164645678, '{"a": 1}')
    assert snapshot[1][1]["after"]["price"] is None
    run(db, "INSERT INTO orders (id, name) VALUES (3, 'cid')",
        "UPDATE orders SET name = 'ann-2', qty = 5 WHERE id = 1",
        "DELETE FROM orders WHERE id = 2")
    everything = events(strom_broker.bootstrap_servers, topic, 6)
    changes = everything[2:]
    assert [(k, v and v["op"]) for k, v in changes] == [
        ({"id": 3}, "c"), ({"id": 1}, "u"), ({"id": 2}, "d"), ({"id": 2}, None)]
    created, updated, deleted = (v for _, v in changes[:3])
    assert created["before"] is None and created["after"]["name"] == "cid"
    assert updated["before"]["name"] == "ann" and updated["after"]["name"] == "ann-2"
    assert updated["after"]["qty"] == 5 and updated["after"]["at"] == 1704164645678
    assert deleted["before"]["name"] == "bob" and deleted["after"] is None
    sources = [v["source"] for v in (created, updated, deleted)]
    assert [s["snapshot"] for s in sources] == ["false"] * 3
    assert sources[0]["lsn"] < sources[1]["lsn"] < sources[2]["lsn"]
    assert len({s["txId"] for s in sources}) == 3
    assert {(s["db"], s["schema"], s["table"], s["name"]) for s in sources} == {
        ("cdc_order", "public", "orders", "cdc1")}


def test_a_restart_resumes_without_loss(strom_broker: StromBroker, tmp_path: Path,
                                        postgres: PostgresServer) -> None:
    db = database(postgres, "cdc_restart")
    run(db, "INSERT INTO orders (id, name) VALUES (0, 'before')")
    offsets = tmp_path / "offsets"
    first = herder_at(strom_broker.bootstrap_servers, offsets)
    config = cdc_config(postgres, "cdc_restart", "cdc2", **{"max.batch.size": "3"})
    topic = "cdc2.public.orders"
    try:
        first.put_config("cdc", config, allow_replace=False)
        events(strom_broker.bootstrap_servers, topic, 1)  # the snapshot is taken
        run(db, *(f"INSERT INTO orders (id, name) VALUES ({n}, 'n{n}')" for n in range(1, 6)),
            # one transaction of several changes, read across polls of max.batch.size rows
            "BEGIN; INSERT INTO orders (id, name) VALUES (6, 'n6'); INSERT INTO orders (id, name) "
            "VALUES (7, 'n7'); UPDATE orders SET name = 'n7-b' WHERE id = 7; COMMIT")
        events(strom_broker.bootstrap_servers, topic, 9)
    finally:
        first.stop()
    # the last commit advanced the slot past everything stored: a peek finds nothing
    assert slot_backlog(db, "cdc2") == 0
    # changes while no task runs wait in the slot
    run(db, *(f"INSERT INTO orders (id, name) VALUES ({n}, 'n{n}')" for n in range(8, 12)),
        "DELETE FROM orders WHERE id = 3")
    second = herder_at(strom_broker.bootstrap_servers, offsets)
    try:
        second.put_config("cdc", config, allow_replace=False)
        seen = events(strom_broker.bootstrap_servers, topic, 9 + 6)
    finally:
        second.stop()
    ops = [(k["id"], v["op"] if v else None) for k, v in seen]
    assert ops[0] == (0, "r")
    assert ops[1:] == [*((n, "c") for n in range(1, 8)), (7, "u"), *((n, "c") for n in range(8, 12)),
                       (3, "d"), (3, None)]


def test_cdc_source_to_sink_copies_the_table(strom_broker: StromBroker, herder: StandaloneHerder,
                                             postgres: PostgresServer) -> None:
    source = database(postgres, "cdc_e2e_source")
    target = postgres.create_database("cdc_e2e_target")
    run(source, *(f"INSERT INTO orders VALUES ({n}, 'n{n}', {n}, {n}.25, "
                  f"'2024-05-0{n % 9 + 1} 10:00:00.{n:03d}+00', '[{n}]')" for n in range(1, 21)))
    herder.put_config("cdc", cdc_config(postgres, "cdc_e2e_source", "cdc3"), allow_replace=False)
    herder.put_config("sink", {
        "connector.class": "PostgresSink", "topics": "cdc3.public.orders",
        "connection.url": postgres.url("cdc_e2e_target"), "table.name.format": "orders",
        "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true", "auto.create": "true",
        "auto.evolve": "true", "transforms": "after",
        "transforms.after.type": "org.apache.kafka.connect.transforms.ExtractField$Value",
        "transforms.after.field": "after"}, allow_replace=False)
    events(strom_broker.bootstrap_servers, "cdc3.public.orders", 20)  # the snapshot is taken
    run(source, "UPDATE orders SET qty = qty * 10 WHERE id % 3 = 0", "DELETE FROM orders WHERE id % 4 = 0",
        "INSERT INTO orders (id, name) VALUES (100, 'late')",
        "BEGIN; UPDATE orders SET name = 'renamed' WHERE id = 1; DELETE FROM orders WHERE id = 2; COMMIT",
        # a new column reaches the events (a new Relation message) and the sink adds it
        "ALTER TABLE orders ADD COLUMN note text",
        "INSERT INTO orders (id, name, note) VALUES (101, 'x', 'hi')",
        "UPDATE orders SET note = 'old row' WHERE id = 5")
    table = ("SELECT id, name, qty, price, to_char(at, 'YYYY-MM-DD HH24:MI:SS.MS'), tags::text, note "
             "FROM orders ORDER BY id")

    def rows(conninfo: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(conninfo, options="-c TimeZone=UTC") as conn:
            try:
                return conn.execute(table).fetchall()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
                return []  # the sink has not created the table or added the column yet

    expected = rows(source)
    wait_for(lambda: rows(target) == expected, "the copy to equal the source table")
    assert len(expected) == 20 - 5 - 1 + 2


def test_a_lost_connection_is_reopened(strom_broker: StromBroker, herder: StandaloneHerder,
                                       postgres: PostgresServer) -> None:
    db = database(postgres, "cdc_reconnect")
    run(db, "INSERT INTO orders (id, name) VALUES (0, 'seed')")
    herder.put_config("cdc", cdc_config(postgres, "cdc_reconnect", "cdc5"), allow_replace=False)
    topic = "cdc5.public.orders"
    events(strom_broker.bootstrap_servers, topic, 1)
    run(db, "INSERT INTO orders (id, name) VALUES (1, 'one')")
    events(strom_broker.bootstrap_servers, topic, 2)
    with psycopg.connect(db, autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'strom-connect' AND datname = 'cdc_reconnect'"
                              ).fetchone()
    assert killed is not None and killed[0] >= 1
    run(db, "INSERT INTO orders (id, name) VALUES (2, 'two')", "UPDATE orders SET name = 'uno' WHERE id = 1")
    seen = events(strom_broker.bootstrap_servers, topic, 4)
    assert [(k["id"], v["op"]) for k, v in seen] == [(0, "r"), (1, "c"), (2, "c"), (1, "u")]
    assert herder.status("cdc")["tasks"][0]["state"] == "RUNNING"


@pytest.mark.slow
def test_a_killed_worker_loses_no_change(strom_broker: StromBroker, tmp_path: Path,
                                         postgres: PostgresServer) -> None:
    """SIGKILL of a `strom connect standalone` process in the middle of the stream (big
    transactions read across many polls): the restarted worker resumes from the stored
    offsets and every change reaches the topic at least once, in order per key."""
    db = database(postgres, "cdc_kill")
    run(db, "INSERT INTO orders (id, name) VALUES (0, 'seed')")
    topic = "cdc4.public.orders"
    connector = write_properties(tmp_path / "cdc.properties", {
        "name": "cdc-kill", **cdc_config(postgres, "cdc_kill", "cdc4", **{"max.batch.size": "40"})})
    port = free_port()
    worker = start_worker(tmp_path, strom_broker.bootstrap_servers, port, connector)
    try:
        events(strom_broker.bootstrap_servers, topic, 1)  # the snapshot is taken
        run(db, *(f"INSERT INTO orders (id, name) SELECT g, 'n' || g FROM generate_series({lo}, {lo + 99}) g"
                  for lo in range(1, 2001, 100)),
            "UPDATE orders SET name = name || '-u', qty = 1 WHERE id > 0")
        events(strom_broker.bootstrap_servers, topic, 300)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    worker = start_worker(tmp_path, strom_broker.bootstrap_servers, port, connector)
    try:
        updated = wait_for(lambda: _ops_by_id(strom_broker.bootstrap_servers, topic, 4001), "all changes",
                           timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert set(updated) == set(range(2001))
    for key, ops in updated.items():
        # at-least-once: a change may repeat after the kill, never go missing or reorder
        distinct = [op for i, op in enumerate(ops) if i == 0 or ops[i - 1] != op]
        assert distinct == (["r"] if key == 0 else ["c", "u"]), (key, ops)


def _ops_by_id(bootstrap: str, topic: str, at_least: int) -> dict[int, list[str]] | None:
    """Ops per key once the topic holds every change (a c and a u for each of 2000 ids)."""
    found = read_topic(bootstrap, topic, 10**6, timeout=5)
    ops: dict[int, list[str]] = {}
    for message in found:
        key, value = json.loads(message.key())["payload"], json.loads(message.value())["payload"]
        ops.setdefault(key["id"], []).append(value["op"])
    complete = len(found) >= at_least and all(o[-1] == "u" for k, o in ops.items() if k > 0)
    return ops if complete and len(ops) == 2001 else None


def start_worker(tmp: Path, bootstrap: str, port: int, *connectors: Path) -> subprocess.Popen[bytes]:
    worker = write_properties(tmp / "worker.properties", {
        "bootstrap.servers": bootstrap, **CONVERTERS,
        "offset.storage.file.filename": tmp / "connect.offsets", "offset.flush.interval.ms": 300,
        "listeners": f"http://127.0.0.1:{port}"})
    log = open(tmp / "worker.log", "ab")  # noqa: SIM115 - the child writes it until it exits
    return subprocess.Popen([sys.executable, "-m", "strom.cli.main", "connect", "standalone",
                             str(worker), *map(str, connectors)], stdout=log, stderr=subprocess.STDOUT)

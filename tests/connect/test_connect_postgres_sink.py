"""PostgresSink through a real broker and a real PostgreSQL: records produced to a topic
land in tables (insert, upsert, delete, auto-create, auto-evolve, schemaless maps)."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from connect_support import CONVERTERS, read_topic, wait_for

from strom.connect.api.config import ConfigType
from strom.connect.connectors.postgres import SINK_CONFIG
from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.standalone import build
from strom.testing import StromBroker
from strom.testing.postgres import PostgresServer

ROW_SCHEMA = {"type": "struct", "name": "shop.Order", "optional": False, "fields": [
    {"field": "id", "type": "int32", "optional": False},
    {"field": "customer", "type": "string", "optional": False},
    {"field": "qty", "type": "int16", "optional": True},
    {"field": "price", "type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
     "version": 1, "parameters": {"scale": "2"}},
    {"field": "placed", "type": "int64", "optional": True, "name": "org.apache.kafka.connect.data.Timestamp",
     "version": 1},
    {"field": "day", "type": "int32", "optional": True, "name": "org.apache.kafka.connect.data.Date",
     "version": 1},
    {"field": "paid", "type": "boolean", "optional": True},
    {"field": "weight", "type": "double", "optional": True},
    {"field": "blob", "type": "bytes", "optional": True}]}
KEY_SCHEMA = {"type": "struct", "name": "shop.Key", "optional": False,
              "fields": [{"field": "id", "type": "int32", "optional": False}]}


def order(n: int, customer: str = "ann") -> dict[str, Any]:
    price = base64.b64encode((n * 100 + 99).to_bytes(4, "big", signed=True)).decode()
    return {"id": n, "customer": customer, "qty": n, "price": price, "placed": 1_700_000_000_000 + n,
            "day": 19_000 + n, "paid": n % 2 == 0, "weight": n / 2,
            "blob": base64.b64encode(b"\x00\x01").decode()}


def enveloped(schema: dict[str, Any] | None, payload: Any) -> bytes | None:
    if payload is None:
        return None
    return json.dumps({"schema": schema, "payload": payload}).encode()


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


@pytest.fixture
def herder(tmp_path: Path, strom_broker: StromBroker) -> Iterator[StandaloneHerder]:
    standalone = build({"bootstrap.servers": strom_broker.bootstrap_servers, **CONVERTERS,
                        "offset.storage.file.filename": str(tmp_path / "offsets"),
                        "offset.flush.interval.ms": "200", "listeners": "http://127.0.0.1:0"})
    yield standalone.herder
    standalone.herder.stop()


@pytest.fixture
def database(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    return postgres.create_database("sink_" + request.node.name.removeprefix("test_")[:40])


def query(conninfo: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo, options="-c TimeZone=UTC") as conn:
        try:
            return conn.execute(sql).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def sink_config(postgres: PostgresServer, conninfo: str, topic: str, **extra: str) -> dict[str, str]:
    dbname = conninfo.rpartition("dbname=")[2].split()[0]
    return {"connector.class": "PostgresSink", "topics": topic,
            "connection.url": f"jdbc:postgresql://127.0.0.1:{postgres.port}/{dbname}",
            "connection.user": "postgres", "connection.password": "not-needed-with-trust",
            "auto.create": "true", **extra}


def test_insert_auto_creates_a_typed_table(strom_broker: StromBroker, herder: StandaloneHerder,
                                          postgres: PostgresServer, database: str) -> None:
    topic = "pg-sink-orders"
    strom_broker.create_topic(topic)
    produce(strom_broker.bootstrap_servers, topic,
            [(None, enveloped(ROW_SCHEMA, order(n))) for n in (1, 2, 3)])
    herder.put_config("pg-insert", sink_config(postgres, database, topic, **{"pk.mode": "kafka"}),
                      allow_replace=False)
    wait_for(lambda: len(query(database, f'SELECT 1 FROM "{topic}"')) == 3, "three rows")
    rows = query(database, f'SELECT id, customer, qty, price, placed, day, paid, weight, blob, '
                           f'__connect_offset FROM "{topic}" ORDER BY id')
    first = rows[0]
    assert first[:4] == (1, "ann", 1, decimal.Decimal("1.99"))
    assert first[4] == datetime.datetime(2023, 11, 14, 22, 13, 20, 1000)
    assert first[5] == datetime.date(1970, 1, 1) + datetime.timedelta(days=19_001)
    assert first[6:] == (False, 0.5, b"\x00\x01", 0)
    types = dict(query(database, "SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_name = '{topic}'"))
    assert types == {"id": "integer", "customer": "text", "qty": "smallint", "price": "numeric",
                     "placed": "timestamp without time zone", "day": "date", "paid": "boolean",
                     "weight": "double precision", "blob": "bytea", "__connect_topic": "text",
                     "__connect_partition": "integer", "__connect_offset": "bigint"}
    nullable = dict(query(database, "SELECT column_name, is_nullable FROM information_schema.columns "
                                    f"WHERE table_name = '{topic}'"))
    assert nullable["customer"] == "NO" and nullable["qty"] == "YES"


def test_upsert_by_key_and_tombstones_delete(strom_broker: StromBroker, herder: StandaloneHerder,
                                             postgres: PostgresServer, database: str) -> None:
    topic = "pg-sink-upsert"
    strom_broker.create_topic(topic)
    key = enveloped  # the key converter is the JSON one with schemas as well

    def k(n: int) -> bytes | None:
        return key(KEY_SCHEMA, {"id": n})

    produce(strom_broker.bootstrap_servers, topic, [
        (k(1), enveloped(ROW_SCHEMA, order(1, "ann"))), (k(2), enveloped(ROW_SCHEMA, order(2, "bob"))),
        (k(1), enveloped(ROW_SCHEMA, order(1, "ann-2"))),  # upsert: replaces row 1
        (k(3), enveloped(ROW_SCHEMA, order(3, "cid"))), (k(3), None),  # insert then delete
        (k(2), enveloped(ROW_SCHEMA, order(2, "bob-2"))), (k(4), enveloped(ROW_SCHEMA, order(4, "dan")))])
    herder.put_config("pg-upsert", sink_config(postgres, database, topic, **{
        "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true",
        "table.name.format": "orders_${topic}", "batch.size": "2"}), allow_replace=False)
    table = f'"orders_{topic}"'
    wait_for(lambda: (4, "dan") in query(database, f"SELECT id, customer FROM {table}"), "the last record")
    assert query(database, f"SELECT id, customer FROM {table} ORDER BY id") == [
        (1, "ann-2"), (2, "bob-2"), (4, "dan")]
    key_columns = query(database, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                                  "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                                  f"WHERE i.indrelid = '{table}'::regclass AND i.indisprimary")
    assert key_columns == [("id",)]
    # the same records delivered again (at-least-once) leave the same table
    herder.delete("pg-upsert")
    herder.put_config("pg-upsert-again", sink_config(postgres, database, topic, **{
        "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true",
        "table.name.format": "orders_${topic}"}), allow_replace=False)
    produce(strom_broker.bootstrap_servers, topic, [(k(5), enveloped(ROW_SCHEMA, order(5, "eve")))])
    wait_for(lambda: (5, "eve") in query(database, f"SELECT id, customer FROM {table}"), "record 5")
    assert query(database, f"SELECT id, customer FROM {table} ORDER BY id") == [
        (1, "ann-2"), (2, "bob-2"), (4, "dan"), (5, "eve")]


def test_auto_evolve_adds_nullable_columns(strom_broker: StromBroker, herder: StandaloneHerder,
                                           postgres: PostgresServer, database: str) -> None:
    topic = "pg-sink-evolve"
    strom_broker.create_topic(topic)
    small: dict[str, Any] = {"type": "struct", "optional": False, "fields": [
        {"field": "id", "type": "int64", "optional": False},
        {"field": "a", "type": "string", "optional": True}]}
    wide = {"type": "struct", "optional": False, "fields": [
        *small["fields"], {"field": "b", "type": "int32", "optional": False},
        {"field": "c", "type": "float", "optional": True}]}
    produce(strom_broker.bootstrap_servers, topic, [
        (None, enveloped(small, {"id": 1, "a": "x"})),
        (None, enveloped(wide, {"id": 2, "a": "y", "b": 7, "c": 1.5}))])
    herder.put_config("pg-evolve", sink_config(postgres, database, topic, **{
        "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id", "auto.evolve": "true"}),
        allow_replace=False)
    wait_for(lambda: len(query(database, f'SELECT 1 FROM "{topic}"')) == 2, "two rows")
    assert query(database, f'SELECT id, a, b, c FROM "{topic}" ORDER BY id') == [(1, "x", None, None),
                                                                                 (2, "y", 7, 1.5)]
    nullable = dict(query(database, "SELECT column_name, is_nullable FROM information_schema.columns "
                                    f"WHERE table_name = '{topic}'"))
    assert nullable == {"id": "NO", "a": "YES", "b": "YES", "c": "YES"}


def test_schemaless_maps_get_inferred_columns(strom_broker: StromBroker, herder: StandaloneHerder,
                                              postgres: PostgresServer, database: str) -> None:
    topic = "pg-sink-schemaless"
    strom_broker.create_topic(topic)
    values: list[dict[str, Any]] = [
        {"sku": "a-1", "count": 3, "ratio": 0.25, "ok": True, "tags": {"color": "red"}},
        {"sku": "b-2", "count": 5, "ratio": 1.5, "ok": False, "tags": ["x"], "note": "new field"}]
    produce(strom_broker.bootstrap_servers, topic,
            [(v["sku"].encode(), json.dumps(v).encode()) for v in values])
    herder.put_config("pg-schemaless", sink_config(postgres, database, topic, **{
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter.schemas.enable": "false", "insert.mode": "upsert", "pk.mode": "record_key",
        "pk.fields": "sku", "auto.evolve": "true", "fields.whitelist": "count,ratio,ok,tags,note"}),
        allow_replace=False)
    wait_for(lambda: len(query(database, f'SELECT 1 FROM "{topic}"')) == 2, "two rows")
    assert query(database, f'SELECT sku, count, ratio, ok, tags, note FROM "{topic}" ORDER BY sku') == [
        ("a-1", 3, 0.25, True, {"color": "red"}, None), ("b-2", 5, 1.5, False, ["x"], "new field")]
    types = dict(query(database, "SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_name = '{topic}'"))
    assert types == {"sku": "text", "count": "bigint", "ratio": "double precision", "ok": "boolean",
                     "tags": "jsonb", "note": "text"}


def test_validate_hides_the_password_and_checks_rules_between_keys(herder: StandaloneHerder) -> None:
    assert SINK_CONFIG.keys["connection.password"].type is ConfigType.PASSWORD
    answer = herder.validate({"name": "v", "connector.class": "PostgresSink", "topics": "t",
                              "connection.url": "postgresql://h/d", "connection.password": "s3cret",
                              "delete.enabled": "true", "pk.mode": "record_value"})
    values = {c["value"]["name"]: c["value"] for c in answer["configs"]}
    assert values["connection.password"]["value"] == "[hidden]"
    assert answer["error_count"] == 1
    assert values["delete.enabled"]["errors"] == [
        "Invalid value True for configuration delete.enabled: Deletes are only supported for "
        "pk.mode record_key"]


def test_refused_rows_go_to_the_dead_letter_queue(strom_broker: StromBroker, herder: StandaloneHerder,
                                                  postgres: PostgresServer, database: str) -> None:
    topic = "pg-sink-refused"
    strom_broker.create_topic(topic)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{topic}" (sku text PRIMARY KEY, count bigint CHECK (count >= 0))')
    values = [b'{"sku": "a", "count": 1}', b'{"sku": "b", "count": -1}', b'"not a map"',
              b'{"sku": "c", "count": 3}']
    produce(strom_broker.bootstrap_servers, topic, [(b"k", v) for v in values])
    herder.put_config("pg-refused", sink_config(postgres, database, topic, **{
        "value.converter.schemas.enable": "false", "pk.mode": "record_value", "pk.fields": "sku",
        "insert.mode": "upsert", "errors.tolerance": "all", "key.converter":
        "org.apache.kafka.connect.storage.StringConverter",
        "errors.deadletterqueue.topic.name": "pg-sink-refused-dlq",
        "errors.deadletterqueue.topic.replication.factor": "1"}), allow_replace=False)
    dead = read_topic(strom_broker.bootstrap_servers, "pg-sink-refused-dlq", 2)
    assert sorted(m.value() for m in dead) == [b'"not a map"', b'{"sku": "b", "count": -1}']
    wait_for(lambda: len(query(database, f'SELECT 1 FROM "{topic}"')) == 2, "the good rows")
    assert query(database, f'SELECT sku, count FROM "{topic}" ORDER BY sku') == [("a", 1), ("c", 3)]
    assert herder.status("pg-refused")["tasks"][0]["state"] == "RUNNING"


def test_a_refused_row_fails_the_task_without_tolerance(strom_broker: StromBroker, herder: StandaloneHerder,
                                                        postgres: PostgresServer, database: str) -> None:
    topic = "pg-sink-strict"
    strom_broker.create_topic(topic)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{topic}" (sku text PRIMARY KEY, count bigint CHECK (count >= 0))')
    produce(strom_broker.bootstrap_servers, topic, [(b"k", b'{"sku": "a", "count": 1}'),
                                                    (b"k", b'{"sku": "b", "count": -1}')])
    herder.put_config("pg-strict", sink_config(postgres, database, topic, **{
        "value.converter.schemas.enable": "false", "pk.mode": "record_value", "pk.fields": "sku",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter"}), allow_replace=False)
    wait_for(lambda: herder.status("pg-strict")["tasks"][0]["state"] == "FAILED", "the task to fail")
    assert ("b",) not in query(database, f'SELECT sku FROM "{topic}"')


def test_update_mode_and_a_lost_connection(strom_broker: StromBroker, herder: StandaloneHerder,
                                          postgres: PostgresServer, database: str) -> None:
    """insert.mode=update changes existing rows only; a backend terminated under the task
    makes `put` retriable, and the batch arrives on a new connection."""
    topic = "pg-sink-update"
    strom_broker.create_topic(topic)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{topic}" (sku text PRIMARY KEY, count bigint)')
        conn.execute(f"""INSERT INTO "{topic}" VALUES ('a', 0), ('b', 0)""")
    config = sink_config(postgres, database, topic, **{
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter.schemas.enable": "false", "insert.mode": "update", "pk.mode": "record_key",
        "pk.fields": "sku"})
    produce(strom_broker.bootstrap_servers, topic, [(b"a", b'{"count": 1}'), (b"zz", b'{"count": 9}')])
    herder.put_config("pg-update", config, allow_replace=False)
    wait_for(lambda: ("a", 1) in query(database, f'SELECT sku, count FROM "{topic}"'), "the update of a")
    dbname = database.rpartition("dbname=")[2].split()[0]
    with psycopg.connect(database, autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'strom-connect' AND datname = %s",
                              [dbname]).fetchone()
    assert killed is not None and killed[0] == 1
    produce(strom_broker.bootstrap_servers, topic, [(b"b", b'{"count": 2}')])
    wait_for(lambda: ("b", 2) in query(database, f'SELECT sku, count FROM "{topic}"'), "the update of b")
    assert query(database, f'SELECT sku, count FROM "{topic}" ORDER BY sku') == [("a", 1), ("b", 2)]
    assert herder.status("pg-update")["tasks"][0]["state"] == "RUNNING"

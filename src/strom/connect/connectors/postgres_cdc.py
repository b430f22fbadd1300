"""The PostgreSQL CDC source task: a snapshot of the tables, then their changes, read by
logical decoding with the built-in `pgoutput` plugin, as Debezium-shaped change events.

Start. Without a stored offset that says the snapshot completed (and with
`snapshot.mode=initial`), the task (re)creates the replication slot over a replication
connection with `EXPORT_SNAPSHOT`, imports that snapshot into a REPEATABLE READ
transaction (`SET TRANSACTION SNAPSHOT`) and reads every table in it: the snapshot shows
exactly the commits before the slot's consistent point and the slot streams exactly those
after, so nothing is missed or doubled between the two. Snapshot rows are `op=r` events.

Streaming. psycopg 3 has no streaming-replication API, so the task reads over SQL and
decodes the pgoutput messages itself (`pgoutput`). The slot itself is only moved, with
`pg_replication_slot_advance` in `commit()`, to the end of the last transaction whose
events are all in the stored offsets: it is the resume point a restart needs. Reading
goes through a temporary copy of it (`pg_copy_logical_replication_slot`, dropped with the
session), consumed with `pg_logical_slot_get_binary_changes(copy, NULL, n,
'proto_version', '1', 'publication_names', pub)`, so each change is decoded once however
rarely offsets are flushed. A new copy (at start, after a reconnect) starts at the slot's
position, which may be behind what this task already emitted; those are skipped.

Offsets (one source partition `{"server": topic.prefix}`): snapshot events carry
`{"lsn": <consistent point>, "snapshot": true}`, the last one `snapshot_completed: true`;
a change event carries its transaction's commit LSN, `txId`, the count of records of
that transaction emitted so far (`event`), whether that was the last (`complete`), and
the transaction's `end_lsn`. A restarted task re-snapshots when the snapshot did not
complete, else skips every transaction committed before the stored one and the first
`event` records of the stored one: at-least-once, and in practice no duplicates beyond
records sent but not yet stored when the task died.

Event value: `before`, `after` (rows as structs `<prefix>.<schema>.<table>.Value`), `source`
(`io.debezium.connector.postgresql.Source`: version, connector, name, ts_ms of the
commit, snapshot true/last/false, db, schema, table, txId, lsn), `op` (r, c, u, d) and
`ts_ms` (when the task read it). Key: the primary key columns as a struct
(`<prefix>.<schema>.<table>.Key`), null for a table without one. `before` of an update or
delete holds the whole old row only under `REPLICA IDENTITY FULL`; with the default
identity an update has no `before` and a delete's `before` has the key columns only.
After a delete comes a tombstone (key, null value) unless `tombstones.on.delete=false`.
Truncates are skipped (logged), as Debezium skips them by default. A lost connection
while streaming is reopened on the next poll (the position is kept in memory and the
slot keeps the changes); during the snapshot it fails the task, whose restart snapshots
again.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.connect.api.errors import ConnectError, DataError
from strom.connect.api.records import SourceRecord
from strom.connect.api.task import SourceTask
from strom.connect.connectors import pgoutput
from strom.connect.connectors.postgres_common import connect, connection_kwargs
from strom.connect.data.schema import (
    BOOLEAN_SCHEMA,
    BYTES_SCHEMA,
    FLOAT32_SCHEMA,
    FLOAT64_SCHEMA,
    INT16_SCHEMA,
    INT32_SCHEMA,
    INT64_SCHEMA,
    OPTIONAL_INT64_SCHEMA,
    OPTIONAL_STRING_SCHEMA,
    STRING_SCHEMA,
    Schema,
    SchemaBuilder,
    date_schema,
    decimal_schema,
    time_schema,
    timestamp_schema,
)
from strom.connect.data.struct import Struct
from strom.connect.version import VERSION

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SOURCE_SCHEMA = (SchemaBuilder.struct().name("io.debezium.connector.postgresql.Source")
                 .field("version", STRING_SCHEMA).field("connector", STRING_SCHEMA)
                 .field("name", STRING_SCHEMA).field("ts_ms", INT64_SCHEMA)
                 .field("snapshot", OPTIONAL_STRING_SCHEMA).field("db", STRING_SCHEMA)
                 .field("schema", STRING_SCHEMA).field("table", STRING_SCHEMA)
                 .field("txId", OPTIONAL_INT64_SCHEMA).field("lsn", OPTIONAL_INT64_SCHEMA).build())


# -- PostgreSQL text values to Connect values ---------------------------------------------

def _bool(text: str) -> bool:
    return text in ("t", "true")


def _bytes(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise DataError("bytea is not in hex form (bytea_output=hex)")
    return bytes.fromhex(text[2:])


def _timestamp(text: str) -> datetime.datetime:
    value = datetime.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def _time(text: str) -> datetime.time:
    return datetime.time.fromisoformat(text)


Conversion = tuple[Schema, Callable[[str], Any]]
_BY_OID: dict[int, Conversion] = {
    16: (BOOLEAN_SCHEMA, _bool), 20: (INT64_SCHEMA, int), 21: (INT16_SCHEMA, int),
    23: (INT32_SCHEMA, int), 26: (INT64_SCHEMA, int), 700: (FLOAT32_SCHEMA, float),
    701: (FLOAT64_SCHEMA, float), 17: (BYTES_SCHEMA, _bytes),
    1082: (date_schema(), datetime.date.fromisoformat), 1083: (time_schema(), _time),
    1114: (timestamp_schema(), _timestamp), 1184: (timestamp_schema(), _timestamp),
}


def conversion(type_oid: int, type_modifier: int) -> Conversion:
    """The Connect schema and the parser of the text form of a PostgreSQL type. numeric
    with a scale is a Decimal of that scale; numeric without one, and every type not
    listed (text, varchar, uuid, json, arrays, ...), is a string of its text form."""
    if type_oid == 1700 and type_modifier >= 4:
        return decimal_schema((type_modifier - 4) & 0xFFFF), decimal.Decimal
    return _BY_OID.get(type_oid, (STRING_SCHEMA, str))


@dataclass(frozen=True)
class TableShape:
    """A table's columns as the events carry them."""

    schema_name: str
    table: str
    columns: tuple[tuple[str, int, int], ...]  # name, type oid, type modifier
    key: tuple[str, ...]
    value_schema: Schema
    key_schema: Schema | None
    envelope: Schema
    parsers: tuple[Callable[[str], Any], ...]

    @classmethod
    def build(cls, prefix: str, schema_name: str, table: str,
              columns: tuple[tuple[str, int, int], ...], key: tuple[str, ...]) -> TableShape:
        base = f"{prefix}.{schema_name}.{table}"
        value = SchemaBuilder.struct().name(f"{base}.Value")
        key_builder = SchemaBuilder.struct().name(f"{base}.Key")
        parsers = []
        for name, oid, modifier in columns:
            schema, parser = conversion(oid, modifier)
            value.field(name, schema if name in key else schema.as_optional())
            if name in key:
                key_builder.field(name, schema)
            parsers.append(parser)
        row = value.optional().build()
        envelope = (SchemaBuilder.struct().name(f"{base}.Envelope").field("before", row)
                    .field("after", row).field("source", SOURCE_SCHEMA).field("op", STRING_SCHEMA)
                    .field("ts_ms", OPTIONAL_INT64_SCHEMA).build())
        return cls(schema_name, table, columns, key, row, key_builder.build() if key else None,
                   envelope, tuple(parsers))

    def row(self, values: tuple[object, ...], fallback: tuple[object, ...] | None = None) -> Struct:
        """A row struct from text values (None: null; an unchanged TOAST value is taken
        from `fallback`, the old row, when there is one)."""
        struct = Struct(self.value_schema)
        for index, ((name, _, _), parse) in enumerate(zip(self.columns, self.parsers, strict=True)):
            raw = values[index] if index < len(values) else None
            if raw is pgoutput.UNCHANGED_TOAST:
                raw = fallback[index] if fallback is not None and index < len(fallback) else None
                raw = None if raw is pgoutput.UNCHANGED_TOAST else raw
            struct.put(name, None if raw is None else parse(str(raw)))
        return struct

    def key_of(self, row: Struct) -> Struct | None:
        if self.key_schema is None:
            return None
        key = Struct(self.key_schema)
        for name in self.key:
            key.put(name, row.get(name))
        return key


Change = tuple[TableShape, str, Struct | None, Struct | None]  # table, op, before, after


@dataclass
class Position:
    """Where the stream stands: transaction (commit LSN) and records of it emitted."""

    lsn: int = 0
    event: int = 0

    def emitted(self, lsn: int, event: int) -> bool:
        return lsn < self.lsn or (lsn == self.lsn and event <= self.event)


class PostgresCdcSourceTask(SourceTask):
    """Snapshot, then stream; see the module docstring."""

    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        from strom.connect.connectors.postgres import CDC_CONFIG

        self.config = CDC_CONFIG.parse(props)
        self.prefix: str = self.config["topic.prefix"]
        self.slot: str = self.config["slot.name"]
        self.publication: str = self.config["publication.name"]
        self.batch: int = self.config["max.batch.size"]
        self.reader: str | None = None  # the temporary copy of the slot this session reads
        self.copies = 0
        self.poll_s: float = self.config["poll.interval.ms"] / 1000
        self.tombstones: bool = self.config["tombstones.on.delete"]
        self.partition = {"server": self.prefix}
        self.conn = connect(self.config, autocommit=True)
        self.database: str = self.conn.info.dbname
        self.tables = self._tables()
        self._ensure_publication()
        self.shapes: dict[int, TableShape] = {}
        self.position = Position()
        self.snapshot_rows: Iterator[SourceRecord] | None = None
        self.snapshot_conn: psycopg.Connection[Any] | None = None
        stored = self.context.offset_storage_reader.offset(self.partition)
        if self.config["snapshot.mode"] == "initial" and not (stored and stored.get("snapshot_completed")):
            self._start_snapshot()
        else:
            self._ensure_slot()
            if stored and "event" in stored:
                self.position = Position(int(stored["lsn"]), int(stored["event"]))

    # -- setup ------------------------------------------------------------------------

    def _tables(self) -> list[tuple[str, str]]:
        """(schema, table) of every captured table."""
        listed = self.config["table.include.list"]
        if listed:
            return [(name.partition(".")[0], name.partition(".")[2]) if "." in name else ("public", name)
                    for name in listed]
        rows = self.conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = ANY(%s) ORDER BY 1, 2",
            [self.config["schema.include.list"]]).fetchall()
        return [(r[0], r[1]) for r in rows]

    def _ensure_publication(self) -> None:
        from psycopg import sql

        exists = self.conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s",
                                   [self.publication]).fetchone()
        if exists or not self.config["publication.autocreate"]:
            return
        if not self.tables:
            raise ConnectError("No table to capture: set table.include.list or schema.include.list")
        names = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in self.tables)
        self.conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(self.publication), names))
        log.info("created publication %s for %s", self.publication, self.tables)

    def _slot_exists(self) -> bool:
        return self.conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                                 [self.slot]).fetchone() is not None

    def _ensure_slot(self) -> None:
        if not self._slot_exists():
            log.warning("replication slot %s is missing: created now; changes before this point "
                        "are not captured", self.slot)
            self.conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [self.slot])

    def _start_snapshot(self) -> None:
        """A new slot and, in its exported snapshot, a read of every table."""
        import psycopg

        if self._slot_exists():
            self.conn.execute("SELECT pg_drop_replication_slot(%s)", [self.slot])
        kwargs = connection_kwargs(self.config)
        replication = psycopg.connect(**kwargs, replication="database", autocommit=True)
        try:
            created = replication.execute(
                f'CREATE_REPLICATION_SLOT "{self.slot}" LOGICAL pgoutput EXPORT_SNAPSHOT').fetchone()
            assert created is not None
            consistent, snapshot_name = pgoutput.parse_lsn(created[1]), created[2]
            self.snapshot_conn = psycopg.connect(**kwargs, autocommit=True)
            self.snapshot_conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self.snapshot_conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_name}'")
        finally:
            replication.close()  # the snapshot is imported: the exporting session may go
        self.snapshot_rows = self._snapshot_records(consistent)
        log.info("snapshot of %s at %s", self.tables, created[1])

    # -- snapshot ---------------------------------------------------------------------

    def _shape_from_catalog(self, schema_name: str, table: str) -> TableShape:
        conn = self.snapshot_conn or self.conn
        rows = conn.execute(
            "SELECT a.attname, a.atttypid, a.atttypmod FROM pg_attribute a "
            "WHERE a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", [schema_name, table]).fetchall()
        columns = tuple((r[0], int(r[1]), int(r[2])) for r in rows)
        key = self._primary_key(schema_name, table)
        return TableShape.build(self.prefix, schema_name, table, columns, key)

    def _primary_key(self, schema_name: str, table: str) -> tuple[str, ...]:
        rows = self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
            "AND i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass "
            "ORDER BY array_position(i.indkey, a.attnum)", [schema_name, table]).fetchall()
        return tuple(r[0] for r in rows)

    def _snapshot_records(self, consistent: int) -> Iterator[SourceRecord]:
        """Every row of every table as an `r` event, the last one marked `last`."""
        from psycopg import sql

        assert self.snapshot_conn is not None
        offset = {"lsn": consistent, "snapshot": True}
        held: tuple[TableShape, Struct] | None = None
        for schema_name, table in self.tables:
            shape = self._shape_from_catalog(schema_name, table)
            columns = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c[0]))
                                         for c in shape.columns)
            query = sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(schema_name, table))
            with self.snapshot_conn.cursor(name=f"strom_snapshot_{table}") as cursor:
                cursor.execute(query)
                while rows := cursor.fetchmany(self.batch):
                    for values in rows:
                        if held is not None:
                            yield self._event(held[0], "r", None, held[1], offset, None, "true")
                        held = (shape, shape.row(tuple(values)))
        self.snapshot_conn.execute("COMMIT")
        if held is not None:
            last = {**offset, "snapshot_completed": True}
            yield self._event(held[0], "r", None, held[1], last, None, "last")
        self.position = Position(consistent, 0)

    # -- events -----------------------------------------------------------------------

    def _event(self, shape: TableShape, op: str, before: Struct | None, after: Struct | None,
               offset: Mapping[str, Any], begin: pgoutput.Begin | None, snapshot: str) -> SourceRecord:
        now = int(time.time() * 1000)
        committed = int(begin.commit_time.timestamp() * 1000) if begin else now
        source = (Struct(SOURCE_SCHEMA).put("version", VERSION).put("connector", "postgresql")
                  .put("name", self.prefix).put("ts_ms", committed).put("snapshot", snapshot)
                  .put("db", self.database).put("schema", shape.schema_name).put("table", shape.table)
                  .put("txId", begin.xid if begin else None).put("lsn", offset["lsn"]))
        value = (Struct(shape.envelope).put("before", before).put("after", after).put("source", source)
                 .put("op", op).put("ts_ms", now))
        key = shape.key_of(after if after is not None else before)  # type: ignore[arg-type]
        return SourceRecord(self._topic(shape), None, shape.key_schema, key, shape.envelope, value,
                            timestamp=committed, source_partition=self.partition,
                            source_offset=dict(offset))

    def _topic(self, shape: TableShape) -> str:
        return f"{self.prefix}.{shape.schema_name}.{shape.table}"

    # -- streaming --------------------------------------------------------------------

    def poll(self) -> list[SourceRecord] | None:
        if self.snapshot_rows is not None:
            records = [r for _, r in zip(range(self.batch), self.snapshot_rows, strict=False)]
            if len(records) < self.batch:
                self.snapshot_rows = None
                self._close_snapshot()
            if records:
                return records
        import psycopg

        try:
            if self.conn.closed:
                self.conn = connect(self.config, autocommit=True)
            records = self._stream()
        except psycopg.OperationalError as exc:
            # the position is in memory and the slot keeps the changes: reconnect and go on
            log.warning("PostgreSQL connection lost (%s); reconnecting", exc)
            self.conn.close()
            self.reader = None  # the temporary copy went with the session
            records = []
        if not records:
            time.sleep(self.poll_s)
        return records

    def _read(self) -> list[bytes]:
        """The next whole transactions (at least `max.batch.size` changes, if there are
        that many) from the session's copy of the slot, consumed."""
        if self.reader is None:
            self.copies += 1
            name = f"{self.slot}_read_{os.getpid()}_{self.copies}"[-63:]
            self.conn.execute("SELECT pg_copy_logical_replication_slot(%s, %s, true)", [self.slot, name])
            self.reader = name
        rows = self.conn.execute(
            "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, %s, 'proto_version', '1', "
            "'publication_names', %s)", [self.reader, self.batch, self.publication]).fetchall()
        return [bytes(r[0]) for r in rows]

    def _stream(self) -> list[SourceRecord]:
        rows = self._read()
        records: list[SourceRecord] = []
        transaction: list[pgoutput.Message] = []
        for data in rows:
            message = pgoutput.decode(data)
            if isinstance(message, pgoutput.Relation):
                self._relation(message)
            elif isinstance(message, pgoutput.Commit):
                records.extend(self._transaction(transaction, message))
                transaction = []
            elif not isinstance(message, pgoutput.Skipped):
                transaction.append(message)
        return records

    def _relation(self, message: pgoutput.Relation) -> None:
        columns = tuple((c.name, c.type_oid, c.type_modifier) for c in message.columns)
        known = self.shapes.get(message.oid)
        if known is not None and known.columns == columns:
            return
        key = self._primary_key(message.namespace, message.name)
        self.shapes[message.oid] = TableShape.build(self.prefix, message.namespace, message.name,
                                                    columns, key)

    def _transaction(self, messages: list[pgoutput.Message], commit: pgoutput.Commit) -> list[SourceRecord]:
        """The records of one committed transaction that were not emitted yet."""
        if not messages or not isinstance(messages[0], pgoutput.Begin):
            return []
        begin = messages[0]
        changes = [e for m in messages[1:] for e in self._changes(m)]
        records = []
        for number, (shape, op, before, after) in enumerate(changes, start=1):
            if self.position.emitted(commit.commit_lsn, number):
                continue
            offset = {"lsn": commit.commit_lsn, "txId": begin.xid, "event": number,
                      "complete": number == len(changes), "end_lsn": commit.end_lsn,
                      "snapshot_completed": True}
            if op == "tombstone":
                assert before is not None
                records.append(SourceRecord(self._topic(shape), None, shape.key_schema,
                                            shape.key_of(before), None, None,
                                            timestamp=int(begin.commit_time.timestamp() * 1000),
                                            source_partition=self.partition, source_offset=offset))
            else:
                records.append(self._event(shape, op, before, after, offset, begin, "false"))
            self.position = Position(commit.commit_lsn, number)
        return records

    def _changes(self, message: pgoutput.Message) -> list[Change]:
        """(table, op, before, after) of one change message (a delete adds its tombstone)."""
        if isinstance(message, pgoutput.Insert):
            shape = self.shapes[message.relation_oid]
            return [(shape, "c", None, shape.row(message.new))]
        if isinstance(message, pgoutput.Update):
            shape = self.shapes[message.relation_oid]
            before = shape.row(message.old) if message.old is not None else None
            return [(shape, "u", before, shape.row(message.new, message.old))]
        if isinstance(message, pgoutput.Delete):
            shape = self.shapes[message.relation_oid]
            before = shape.row(message.old)
            events: list[Change] = [(shape, "d", before, None)]
            if self.tombstones and shape.key_schema is not None:
                events.append((shape, "tombstone", before, None))
            return events
        if isinstance(message, pgoutput.Truncate):
            log.warning("TRUNCATE of relations %s skipped", message.relation_oids)
        return []

    # -- commit and stop --------------------------------------------------------------

    def commit(self) -> None:
        """Advance the slot to the end of the last transaction the stored offsets cover
        whole, so PostgreSQL may drop its WAL and a restart resumes from there."""
        import psycopg

        try:
            self._advance()
        except psycopg.OperationalError as exc:
            log.warning("slot not advanced, connection lost (%s); the next poll reconnects", exc)
            self.conn.close()
            self.reader = None

    def _advance(self) -> None:
        stored = self.context.offset_storage_reader.offset(self.partition)
        if not stored or not stored.get("complete") or not stored.get("end_lsn"):
            return
        target = int(stored["end_lsn"])
        row = self.conn.execute("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = %s",
                                [self.slot]).fetchone()
        if row is None or row[0] is None or pgoutput.parse_lsn(str(row[0])) >= target:
            return
        self.conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                          [self.slot, pgoutput.lsn_text(target)])

    def _close_snapshot(self) -> None:
        conn, self.snapshot_conn = self.snapshot_conn, None
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """Close the connections; the slot stays (it holds the changes for a restart)
        unless `slot.drop.on.stop`."""
        self._close_snapshot()
        conn = getattr(self, "conn", None)
        if conn is None or conn.closed:
            return
        try:
            if self.config["slot.drop.on.stop"] and self._slot_exists():
                conn.execute("SELECT pg_drop_replication_slot(%s)", [self.slot])
        finally:
            conn.close()

"""The PostgreSQL sink task: records into tables, one transaction per `put`.

Configuration follows Confluent's JDBC sink where it applies (see `postgres.SINK_CONFIG`).
Each record becomes a row of the table `table.name.format` names (`${topic}` replaced by
the record's topic). Its columns are:

- the primary key, by `pk.mode`: `none` (no key: insert only), `kafka` (the record's
  coordinates as `__connect_topic`, `__connect_partition`, `__connect_offset`, or the
  three names of `pk.fields`), `record_key` (the key's fields, or a primitive key as the
  one column `pk.fields` names), `record_value` (`pk.fields` of the value, all if empty);
- the value's fields (those in `fields.whitelist` if it is set), minus the key columns.

Values with a schema (a Struct) give their columns' types: int8/int16 smallint, int32
integer, int64 bigint, float real, double double precision, boolean, string text, bytes
bytea, Decimal numeric, Date date, Time time, Timestamp timestamp (UTC), and struct,
array and map jsonb. Schemaless values (JSON maps from a converter with
`schemas.enable=false`) get their types inferred from each value: integers bigint,
floats double precision, booleans, strings text, nested maps and lists jsonb; a field
that is null where its column does not exist yet becomes text. Inferring columns (rather
than writing the whole map into one jsonb column) lets both kinds of topic fill the same
kind of table; a topic whose fields vary wildly is better hoisted into one field first
(the HoistField transform), which then lands in a jsonb column.

`auto.create` creates a missing table (NOT NULL for required fields, the key as PRIMARY
KEY); `auto.evolve` adds missing columns, always nullable, so older rows stay valid.
`insert.mode` is `insert` (INSERT), `upsert` (INSERT ... ON CONFLICT (key) DO UPDATE, so
a redelivered record rewrites the same row) or `update` (UPDATE ... WHERE key). With
`delete.enabled` (which needs `pk.mode=record_key`) a tombstone deletes the row of its
key; without it tombstones are skipped.

Delivery: every `put` is one database transaction (rows grouped into `executemany`
batches of at most `batch.size` by table and column set, in record order, so a delete
after an upsert of the same key stays after it). `put` returns only after the commit,
and the runtime commits the consumed offsets only after `put` returned, so a crash
redelivers records the database may already hold: at-least-once, and idempotent by key
in upsert mode. A lost connection is a RetriableError (the batch is delivered again on a
new connection). A record that cannot become a row, or a row the database refuses
(a constraint, a value out of range), is handed to the errant record reporter: the dead
letter queue under `errors.tolerance=all`, else the task fails; the batch is then written
again row by row under savepoints so the other rows still commit in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.connect.api.errors import ConnectError, DataError, RetriableError
from strom.connect.api.records import SinkRecord
from strom.connect.api.task import SinkTask
from strom.connect.connectors.postgres_common import connect
from strom.connect.converters.json_converter import value_to_json
from strom.connect.data.schema import DATE_NAME, DECIMAL_NAME, TIME_NAME, TIMESTAMP_NAME, Schema, Type
from strom.connect.data.struct import Struct
from strom.connect.version import VERSION

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

KAFKA_PK_FIELDS = ("__connect_topic", "__connect_partition", "__connect_offset")
_PLAIN_TYPES = {
    Type.INT8: "smallint", Type.INT16: "smallint", Type.INT32: "integer", Type.INT64: "bigint",
    Type.FLOAT32: "real", Type.FLOAT64: "double precision", Type.BOOLEAN: "boolean",
    Type.STRING: "text", Type.BYTES: "bytea", Type.STRUCT: "jsonb", Type.ARRAY: "jsonb",
    Type.MAP: "jsonb",
}
_LOGICAL_TYPES = {DECIMAL_NAME: "numeric", DATE_NAME: "date", TIME_NAME: "time",
                  TIMESTAMP_NAME: "timestamp"}


def pg_type(schema: Schema) -> str:
    """The PostgreSQL column type for a Connect schema."""
    return _LOGICAL_TYPES.get(schema.name or "") or _PLAIN_TYPES[schema.type]


def inferred_type(value: Any) -> str:
    """The column type for a schemaless value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, (bytes, bytearray)):
        return "bytea"
    if isinstance(value, (dict, list)):
        return "jsonb"
    return "text"


@dataclass(frozen=True)
class Column:
    """A column a record writes: name, PostgreSQL type, whether it may be null."""

    name: str
    type: str
    optional: bool = True


@dataclass
class Row:
    """One record's effect: `op` upsert/insert/update (columns and values) or delete (key)."""

    table: tuple[str | None, str]
    op: str
    key: list[Column]
    columns: list[Column]
    values: list[Any]

    def shape(self) -> tuple[Any, ...]:
        """Rows of one shape go into one executemany."""
        return (self.table, self.op, tuple(c.name for c in self.key), tuple(c.name for c in self.columns))


def _fields(value: Any, schema: Schema | None) -> list[tuple[Column, Any]]:
    """(column, value) of every field of a Struct or schemaless map."""
    if isinstance(value, Struct):
        return [(Column(f.name, pg_type(f.schema), f.schema.optional), _adapt(f.schema, value.get(f.name)))
                for f in value.schema.fields]
    if isinstance(value, Mapping):
        return [(Column(str(k), inferred_type(v)), _adapt(None, v)) for k, v in value.items()]
    raise DataError(f"PostgreSQL sink needs a struct or map value, got {type(value).__name__} "
                    f"(schema {schema})")


def _adapt(schema: Schema | None, value: Any) -> Any:
    """The Python value psycopg writes for a field."""
    if value is None:
        return None
    if isinstance(value, (Struct, dict, list, tuple)):
        from psycopg.types.json import Jsonb

        return Jsonb(value_to_json(schema, value) if schema is not None else value)
    return value


class PostgresSinkTask(SinkTask):
    """Writes each `put` in one transaction; see the module docstring."""

    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        from strom.connect.connectors.postgres import SINK_CONFIG, check_sink

        self.config = SINK_CONFIG.parse(props)
        check_sink(self.config)
        self.table_format: str = self.config["table.name.format"]
        self.pk_mode: str = self.config["pk.mode"]
        self.pk_fields: list[str] = self.config["pk.fields"]
        self.whitelist = set(self.config["fields.whitelist"])
        self.insert_mode: str = self.config["insert.mode"]
        self.batch_size: int = self.config["batch.size"]
        self.conn: psycopg.Connection[Any] | None = None
        self.tables: dict[tuple[str | None, str], set[str]] = {}

    # -- records to rows --------------------------------------------------------------

    def _table(self, topic: str) -> tuple[str | None, str]:
        """(schema or None, table) for a topic; a dot in the format itself (not in the
        topic) separates the schema."""
        if "." in self.table_format.replace("${topic}", ""):
            schema_part, _, table_part = self.table_format.partition(".")
            return schema_part.replace("${topic}", topic), table_part.replace("${topic}", topic)
        return None, self.table_format.replace("${topic}", topic)

    def _key_columns(self, record: SinkRecord) -> list[tuple[Column, Any]]:
        if self.pk_mode == "kafka":
            names = self.pk_fields if len(self.pk_fields) == 3 else list(KAFKA_PK_FIELDS)
            types = ("text", "integer", "bigint")
            coords = (record.topic, record.kafka_partition, record.kafka_offset)
            return [(Column(n, t, False), v) for n, t, v in zip(names, types, coords, strict=True)]
        if self.pk_mode == "record_key":
            return self._record_key(record)
        if self.pk_mode == "record_value":
            fields = _fields(record.value, record.value_schema)
            wanted = self.pk_fields or [c.name for c, _ in fields]
            found = {c.name: (Column(c.name, c.type, False), v) for c, v in fields}
            missing = [n for n in wanted if n not in found]
            if missing:
                raise DataError(f"pk.fields {missing} are not in the value of {record.topic}")
            return [found[n] for n in wanted]
        return []

    def _record_key(self, record: SinkRecord) -> list[tuple[Column, Any]]:
        if record.key is None:
            raise DataError(f"pk.mode=record_key but a record of {record.topic} at offset "
                            f"{record.kafka_offset} has no key")
        if isinstance(record.key, (Struct, Mapping)):
            fields = _fields(record.key, record.key_schema)
            if self.pk_fields:
                fields = [f for f in fields if f[0].name in self.pk_fields]
            return [(Column(c.name, c.type, False), v) for c, v in fields]
        kind = pg_type(record.key_schema) if record.key_schema else inferred_type(record.key)
        return [(Column(self.pk_fields[0], kind, False), record.key)]

    def to_row(self, record: SinkRecord) -> Row | None:
        """The row a record writes, a delete, or None for a skipped tombstone."""
        table = self._table(record.topic)
        if record.value is None:
            if not self.config["delete.enabled"]:
                return None
            key = self._key_columns(record)
            return Row(table, "delete", [c for c, _ in key], [], [v for _, v in key])
        key = self._key_columns(record)
        key_names = {c.name for c, _ in key}
        fields = [(c, v) for c, v in _fields(record.value, record.value_schema)
                  if c.name not in key_names and (not self.whitelist or c.name in self.whitelist)]
        every = key + fields
        ordered = fields + key if self.insert_mode == "update" else every  # SET ... WHERE key
        return Row(table, self.insert_mode, [c for c, _ in key], [c for c, _ in every],
                   [v for _, v in ordered])

    # -- writing ----------------------------------------------------------------------

    def put(self, records: Sequence[SinkRecord]) -> None:
        pairs = self._rows(records)
        if not pairs:
            return
        import psycopg

        try:
            conn = self._connection()
            try:
                with conn.transaction():
                    self._write(conn, [row for _, row in pairs])
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError):
                self.tables.clear()  # DDL of the failed transaction was rolled back too
                self._write_each(conn, pairs)
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise RetriableError(f"PostgreSQL connection failed: {exc}") from exc
        except psycopg.Error as exc:
            self.tables.clear()
            raise ConnectError(f"PostgreSQL refused the batch: {exc}") from exc

    def _rows(self, records: Sequence[SinkRecord]) -> list[tuple[SinkRecord, Row]]:
        """(record, row) of each record that writes something; a record that cannot be a
        row goes to the errant record reporter (the DLQ, or the task fails)."""
        pairs = []
        for record in records:
            try:
                row = self.to_row(record)
            except DataError as exc:
                self.context.errant_record_reporter()(record, exc)
                continue
            if row is not None:
                pairs.append((record, row))
        return pairs

    def _write_each(self, conn: psycopg.Connection[Any], pairs: list[tuple[SinkRecord, Row]]) -> None:
        """The batch again, each row under its own savepoint, so the rows the database
        refuses (constraint, value out of range) are reported one by one and the others
        still commit together."""
        import psycopg

        report = self.context.errant_record_reporter()
        with conn.transaction():
            for record, row in pairs:
                try:
                    with conn.transaction():
                        self._write(conn, [row])
                except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                    self.tables.clear()
                    report(record, DataError(f"PostgreSQL refused the row: {exc}"))

    def _write(self, conn: psycopg.Connection[Any], rows: list[Row]) -> None:
        start = 0
        while start < len(rows):
            end, shape = start + 1, rows[start].shape()
            while end < len(rows) and end - start < self.batch_size and rows[end].shape() == shape:
                end += 1
            batch = rows[start:end]
            if batch[0].op != "delete":
                self._ensure_table(conn, batch)
            statement = self._statement(batch[0])
            with conn.cursor() as cursor:
                cursor.executemany(statement, [r.values for r in batch])
            start = end

    def _statement(self, row: Row) -> Any:
        from psycopg import sql

        table = _identifier(row.table)
        if row.op == "delete":
            return sql.SQL("DELETE FROM {} WHERE {}").format(table, _match(row.key))
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in row.columns)
        marks = sql.SQL(", ").join(sql.Placeholder() * len(row.columns))
        if row.op == "update":
            rest = [c for c in row.columns if c.name not in {k.name for k in row.key}]
            sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c.name)) for c in rest)
            return sql.SQL("UPDATE {} SET {} WHERE {}").format(table, sets, _match(row.key))
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(table, names, marks)
        if row.op == "insert" or not row.key:
            return insert
        return insert + _on_conflict(row)

    def _ensure_table(self, conn: psycopg.Connection[Any], batch: list[Row]) -> None:
        """Create the table or add columns as `auto.create`/`auto.evolve` allow."""
        row = batch[0]
        known = self.tables.get(row.table)
        if known is None:
            known = self._describe(conn, row.table)
        if known is None:
            if not self.config["auto.create"]:
                raise ConnectError(f"Table {_display(row.table)} is missing and auto.create is disabled")
            self._create(conn, row)
            known = {c.name for c in row.columns}
        columns = row.columns  # rows of one batch share their columns
        missing = [c for c in columns if c.name not in known]
        if missing:
            if not self.config["auto.evolve"]:
                raise ConnectError(f"Table {_display(row.table)} is missing columns "
                                   f"{[c.name for c in missing]} and auto.evolve is disabled")
            self._add_columns(conn, row.table, missing)
            known = known | {c.name for c in missing}
        self.tables[row.table] = known

    @staticmethod
    def _describe(conn: psycopg.Connection[Any], table: tuple[str | None, str]) -> set[str] | None:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = coalesce(%s, current_schema()) AND table_name = %s",
            [table[0], table[1]]).fetchall()
        return {r[0] for r in rows} or None

    @staticmethod
    def _create(conn: psycopg.Connection[Any], row: Row) -> None:
        from psycopg import sql

        defs = [sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.type),
                                           sql.SQL("" if c.optional else " NOT NULL"))
                for c in row.columns]
        if row.key:
            keys = sql.SQL(", ").join(sql.Identifier(c.name) for c in row.key)
            defs.append(sql.SQL("PRIMARY KEY ({})").format(keys))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
            _identifier(row.table), sql.SQL(", ").join(defs)))
        log.info("created table %s", _display(row.table))

    @staticmethod
    def _add_columns(conn: psycopg.Connection[Any], table: tuple[str | None, str],
                     columns: list[Column]) -> None:
        from psycopg import sql

        adds = sql.SQL(", ").join(sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
            sql.Identifier(c.name), sql.SQL(c.type)) for c in columns)
        conn.execute(sql.SQL("ALTER TABLE {} {}").format(_identifier(table), adds))
        log.info("added columns %s to %s", [c.name for c in columns], _display(table))

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.config, autocommit=True)
        return self.conn

    def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        self.tables.clear()
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """Close the connection: every put already committed its transaction."""
        self._drop_connection()


def _identifier(table: tuple[str | None, str]) -> Any:
    from psycopg import sql

    return sql.Identifier(*(p for p in table if p is not None))


def _display(table: tuple[str | None, str]) -> str:
    return ".".join(p for p in table if p is not None)


def _match(key: list[Column]) -> Any:
    from psycopg import sql

    return sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c.name)) for c in key)


def _on_conflict(row: Row) -> Any:
    from psycopg import sql

    keys = sql.SQL(", ").join(sql.Identifier(c.name) for c in row.key)
    rest = [c for c in row.columns if c.name not in {k.name for k in row.key}]
    if not rest:
        return sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(keys)
    sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in rest)
    return sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(keys, sets)

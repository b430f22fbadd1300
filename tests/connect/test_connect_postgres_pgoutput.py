"""The pgoutput decoder on messages captured from PostgreSQL 15
(`pg_logical_slot_peek_binary_changes(..., 'proto_version', '1', ...)`) for
`CREATE TABLE t (id int PRIMARY KEY, name text, n numeric(10,2), ts timestamptz, b bytea,
ok bool)` under REPLICA IDENTITY FULL: an insert, an update and a delete."""

from __future__ import annotations

import datetime

import pytest

from strom.connect.connectors import pgoutput
from strom.connect.connectors.postgres_cdc import TableShape, conversion

BEGIN = b"B\x00\x00\x00\x00\x01\x92Qp\x00\x03\x04\x97\xefZ]\xf6\x00\x00\x02\xd8"
RELATION = (b"R\x00\x00@\x01public\x00t\x00f\x00\x06\x01id\x00\x00\x00\x00\x17\xff\xff\xff\xff\x01name"
            b"\x00\x00\x00\x00\x19\xff\xff\xff\xff\x01n\x00\x00\x00\x06\xa4\x00\n\x00\x06\x01ts\x00\x00\x00"
            b"\x04\xa0\xff\xff\xff\xff\x01b\x00\x00\x00\x00\x11\xff\xff\xff\xff\x01ok\x00\x00\x00\x00\x10"
            b"\xff\xff\xff\xff")
ROW_A = (b"\x00\x06t\x00\x00\x00\x011t\x00\x00\x00\x01at\x00\x00\x00\x041.50t\x00\x00\x00\x1c"
         b"2026-12-01 21:25:32.38115+00t\x00\x00\x00\x06\\x0001t\x00\x00\x00\x01t")
ROW_B = ROW_A.replace(b"\x01a", b"\x01b")
INSERT = b"I\x00\x00@\x01N" + ROW_A
COMMIT = (b"C\x00\x00\x00\x00\x00\x01\x92Qp\x00\x00\x00\x00\x01\x92Q\xa0\x00\x03\x04\x97\xefZ]\xf6")
UPDATE = b"U\x00\x00@\x01O" + ROW_A + b"N" + ROW_B
DELETE = b"D\x00\x00@\x01O" + ROW_B


def test_begin_and_commit() -> None:
    begin = pgoutput.decode(BEGIN)
    assert isinstance(begin, pgoutput.Begin)
    assert pgoutput.lsn_text(begin.final_lsn) == "0/1925170"
    assert begin.xid == 728
    assert begin.commit_time.year == 2026
    commit = pgoutput.decode(COMMIT)
    assert isinstance(commit, pgoutput.Commit)
    assert commit.commit_lsn == begin.final_lsn
    assert pgoutput.lsn_text(commit.end_lsn) == "0/19251A0"
    assert commit.commit_time == begin.commit_time


def test_relation() -> None:
    relation = pgoutput.decode(RELATION)
    assert isinstance(relation, pgoutput.Relation)
    assert (relation.oid, relation.namespace, relation.name, relation.replica_identity) == (
        16385, "public", "t", "f")
    assert [(c.name, c.type_oid, c.type_modifier, c.is_key) for c in relation.columns] == [
        ("id", 23, -1, True), ("name", 25, -1, True), ("n", 1700, 655366, True),
        ("ts", 1184, -1, True), ("b", 17, -1, True), ("ok", 16, -1, True)]


def test_insert_update_delete_tuples() -> None:
    insert = pgoutput.decode(INSERT)
    assert isinstance(insert, pgoutput.Insert)
    assert insert.new == ("1", "a", "1.50", "2026-12-01 21:25:32.38115+00", "\\x0001", "t")
    update = pgoutput.decode(UPDATE)
    assert isinstance(update, pgoutput.Update)
    assert update.old == insert.new and not update.old_is_key
    assert update.new[1] == "b"
    delete = pgoutput.decode(DELETE)
    assert isinstance(delete, pgoutput.Delete)
    assert delete.old == update.new


def test_null_and_unchanged_toast_values() -> None:
    message = pgoutput.decode(b"I\x00\x00@\x01N\x00\x02nu")
    assert isinstance(message, pgoutput.Insert)
    assert message.new == (None, pgoutput.UNCHANGED_TOAST)


def test_truncate_and_skipped_messages() -> None:
    truncate = pgoutput.decode(b"T\x00\x00\x00\x02\x01\x00\x00@\x01\x00\x00@\x02")
    assert truncate == pgoutput.Truncate((16385, 16386), cascade=True, restart_identity=False)
    assert pgoutput.decode(b"O\x00\x00\x00\x00\x00\x00\x00\x01origin\x00") == pgoutput.Skipped("origin")


@pytest.mark.parametrize("data", [b"", b"Z", b"B\x00\x00", b"I\x00\x00@\x01N\x00\x01t\x00\x00\x00\x09ab",
                                  b"I\x00\x00@\x01N\x00\x01x", b"D\x00\x00@\x01N\x00\x00"])
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(pgoutput.PgOutputError):
        pgoutput.decode(data)


def test_rows_become_typed_structs() -> None:
    relation = pgoutput.decode(RELATION)
    assert isinstance(relation, pgoutput.Relation)
    shape = TableShape.build("db1", "public", "t", tuple((c.name, c.type_oid, c.type_modifier)
                                                         for c in relation.columns), ("id",))
    insert = pgoutput.decode(INSERT)
    assert isinstance(insert, pgoutput.Insert)
    row = shape.row(insert.new)
    assert row.get("id") == 1 and row.get("name") == "a" and str(row.get("n")) == "1.50"
    assert row.get("ts") == datetime.datetime(2026, 12, 1, 21, 25, 32, 381150, tzinfo=datetime.UTC)
    assert row.get("b") == b"\x00\x01" and row.get("ok") is True
    assert shape.value_schema.name == "db1.public.t.Value"
    assert shape.key_of(row) is not None and shape.key_schema is not None
    assert shape.key_schema.field_names() == ["id"]
    assert conversion(1700, 655366)[0].parameters == {"scale": "2"}
    assert conversion(1700, -1)[0].type.value == "string"

"""A decoder of `pgoutput` messages, PostgreSQL's built-in logical decoding output
(protocol version 1, as PostgreSQL's "Logical Replication Message Formats" page
describes it).

The CDC source reads them as the `data` column of `pg_logical_slot_peek_binary_changes`
(psycopg 3 has no streaming replication API), one message per row. Integers are
big-endian; strings are NUL-terminated; LSNs are 64-bit; timestamps are microseconds
since 2000-01-01 UTC. Column values in tuples arrive in text form (`t`), as null (`n`),
or as `u`: an unchanged TOASTed value the message leaves out.

Only what the source needs is decoded (Begin, Commit, Relation, Insert, Update, Delete,
Truncate, and Origin/Type, which are skipped); anything else is a `PgOutputError`.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
UNCHANGED_TOAST = object()
"""The value of a column an update left unchanged and TOASTed (not sent)."""


class PgOutputError(ValueError):
    """Bytes that are not a pgoutput message this decoder knows."""


def pg_time(micros: int) -> datetime.datetime:
    """A pgoutput timestamp (µs since 2000-01-01 UTC) as an aware datetime."""
    return PG_EPOCH + datetime.timedelta(microseconds=micros)


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it (`0/1925078`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """`0/1925078` as an integer."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class Begin:
    final_lsn: int  # the LSN of the transaction's commit record
    commit_time: datetime.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int  # the slot may be advanced here once the transaction is stored
    commit_time: datetime.datetime


@dataclass(frozen=True)
class RelColumn:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool  # part of the replica identity (every column under REPLICA IDENTITY FULL)


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[RelColumn, ...]


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: tuple[object, ...]


@dataclass(frozen=True)
class Update:
    relation_oid: int
    old: tuple[object, ...] | None  # the old key ('K') or the old row ('O', REPLICA IDENTITY FULL)
    old_is_key: bool
    new: tuple[object, ...]


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: tuple[object, ...]
    old_is_key: bool


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class Skipped:
    kind: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Skipped


@dataclass
class _Reader:
    data: bytes
    pos: int = field(default=0)

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise PgOutputError(f"message ends at {len(self.data)}, needs {self.pos + size}")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def byte(self) -> str:
        return chr(self.take("!B"))

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError("unterminated string")
        text = self.data[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return text

    def raw(self, length: int) -> bytes:
        if self.pos + length > len(self.data):
            raise PgOutputError("column value runs past the message")
        chunk = self.data[self.pos:self.pos + length]
        self.pos += length
        return chunk

    def tuple_data(self) -> tuple[object, ...]:
        values: list[object] = []
        for _ in range(self.take("!H")):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED_TOAST)
            elif kind in ("t", "b"):
                chunk = self.raw(self.take("!I"))
                values.append(chunk.decode("utf-8") if kind == "t" else chunk)
            else:
                raise PgOutputError(f"unknown tuple value kind {kind!r}")
        return tuple(values)


def decode(data: bytes) -> Message:
    """One pgoutput message."""
    reader = _Reader(bytes(data))
    kind = reader.byte()
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise PgOutputError(f"unknown pgoutput message type {kind!r}")
    return decoder(reader)


def _begin(r: _Reader) -> Begin:
    return Begin(r.take("!Q"), pg_time(r.take("!q")), r.take("!I"))


def _commit(r: _Reader) -> Commit:
    r.take("!B")  # flags, unused
    return Commit(r.take("!Q"), r.take("!Q"), pg_time(r.take("!q")))


def _relation(r: _Reader) -> Relation:
    oid, namespace, name, identity = r.take("!I"), r.string(), r.string(), r.byte()
    columns = []
    for _ in range(r.take("!H")):
        flags = r.take("!B")
        columns.append(RelColumn(r.string(), r.take("!I"), r.take("!i"), bool(flags & 1)))
    return Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))


def _insert(r: _Reader) -> Insert:
    oid = r.take("!I")
    if r.byte() != "N":
        raise PgOutputError("insert without a new tuple")
    return Insert(oid, r.tuple_data())


def _update(r: _Reader) -> Update:
    oid = r.take("!I")
    marker = r.byte()
    old = None
    old_is_key = False
    if marker in ("K", "O"):
        old, old_is_key = r.tuple_data(), marker == "K"
        marker = r.byte()
    if marker != "N":
        raise PgOutputError("update without a new tuple")
    return Update(oid, old, old_is_key, r.tuple_data())


def _delete(r: _Reader) -> Delete:
    oid = r.take("!I")
    marker = r.byte()
    if marker not in ("K", "O"):
        raise PgOutputError("delete without an old key or row")
    return Delete(oid, r.tuple_data(), marker == "K")


def _truncate(r: _Reader) -> Truncate:
    count, options = r.take("!I"), r.take("!B")
    oids = tuple(r.take("!I") for _ in range(count))
    return Truncate(oids, bool(options & 1), bool(options & 2))


def _skipped(kind: str) -> Callable[[_Reader], Message]:
    def skip(r: _Reader) -> Skipped:
        return Skipped(kind)

    return skip


_DECODERS: dict[str, Callable[[_Reader], Message]] = {
    "B": _begin, "C": _commit, "R": _relation, "I": _insert, "U": _update, "D": _delete,
    "T": _truncate, "O": _skipped("origin"), "Y": _skipped("type"), "M": _skipped("message")}

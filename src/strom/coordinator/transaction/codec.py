"""Keys and values of `__transaction_state` records, in Kafka's own encoding.

Kafka's tools (kafka-dump-log's transaction-log decoder, a Kafka broker loading the
topic after a migration) read these exact layouts, so they are byte-compatible with
Kafka's TransactionLogKey and TransactionLogValue. All integers big-endian.

Key: int16 record type 0 (TransactionLogKey), then transactional_id as a string of
version 0 (int16 length + UTF-8).

Value: int16 version, then
    v0  producer_id int64, producer_epoch int16, transaction_timeout_ms int32,
        transaction_status int8, transaction_partitions nullable array(int32) of
        [topic string, partition_ids array(int32) of int32],
        last_update_timestamp_ms int64, start_timestamp_ms int64
    v1  the same fields in the flexible encoding (compact strings and arrays with
        unsigned-varint lengths, a tagged-field section after each struct), with
        tagged fields 0 previous_producer_id int64, 1 next_producer_id int64,
        2 client_transaction_version int16, 3 next_producer_epoch int16.

Kafka writes v0 under transaction version 0 and 1 (the only one Strom coordinates),
and v1 under transaction version 2; both are read. A state other than Empty carries
its partitions; Empty writes a null array.

Decoders raise `CodecError` and nothing else, so a loader can skip what it cannot read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

KEY_TYPE = 0  # CoordinatorRecordType.TRANSACTION_LOG
MAX_STATUS = 7  # PrepareEpochFence, the highest TransactionState id

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_FIXED = struct.Struct(">qhib")  # producer id, epoch, timeout, status
_TIMES = struct.Struct(">qq")


class CodecError(ValueError):
    """The bytes are not a `__transaction_state` key or value this codec can read."""


class UnknownRecordType(CodecError):
    """A key type (or value version) this codec does not know; Kafka skips those."""


@dataclass(frozen=True, slots=True)
class TxnValue:
    """TransactionLogValue: one transactional id's state as of its last write."""

    producer_id: int
    producer_epoch: int
    timeout_ms: int
    status: int
    partitions: tuple[tuple[str, tuple[int, ...]], ...]
    last_update_ms: int
    start_ms: int
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_transaction_version: int = 0
    next_producer_epoch: int = -1


# --- writing --------------------------------------------------------------------------


def encode_key(transactional_id: str) -> bytes:
    data = transactional_id.encode()
    return _I16.pack(KEY_TYPE) + _I16.pack(len(data)) + data


def encode_value(value: TxnValue, version: int = 0) -> bytes:
    """Kafka's bytes for ``value`` at ``version`` (0 for transaction versions 0-1)."""
    out = bytearray(_I16.pack(version))
    out += _FIXED.pack(value.producer_id, value.producer_epoch, value.timeout_ms, value.status)
    if version == 0:
        _write_partitions_v0(out, value.partitions)
    else:
        _write_partitions_v1(out, value.partitions)
    out += _TIMES.pack(value.last_update_ms, value.start_ms)
    if version >= 1:
        _write_tags(out, value)
    return bytes(out)


def _write_partitions_v0(out: bytearray, partitions: tuple[tuple[str, tuple[int, ...]], ...]
                         ) -> None:
    if not partitions:
        out += _I32.pack(-1)  # Kafka writes null for Empty and an empty set alike
        return
    out += _I32.pack(len(partitions))
    for topic, ids in partitions:
        data = topic.encode()
        out += _I16.pack(len(data)) + data + _I32.pack(len(ids))
        for pid in ids:
            out += _I32.pack(pid)


def _write_partitions_v1(out: bytearray, partitions: tuple[tuple[str, tuple[int, ...]], ...]
                         ) -> None:
    if not partitions:
        _uvarint(out, 0)  # compact null
        return
    _uvarint(out, len(partitions) + 1)
    for topic, ids in partitions:
        data = topic.encode()
        _uvarint(out, len(data) + 1)
        out += data
        _uvarint(out, len(ids) + 1)
        for pid in ids:
            out += _I32.pack(pid)
        _uvarint(out, 0)  # the struct's tagged fields


def _write_tags(out: bytearray, value: TxnValue) -> None:
    tags: list[tuple[int, bytes]] = []
    if value.previous_producer_id != -1:
        tags.append((0, _I64.pack(value.previous_producer_id)))
    if value.next_producer_id != -1:
        tags.append((1, _I64.pack(value.next_producer_id)))
    if value.client_transaction_version != 0:
        tags.append((2, _I16.pack(value.client_transaction_version)))
    if value.next_producer_epoch != -1:
        tags.append((3, _I16.pack(value.next_producer_epoch)))
    _uvarint(out, len(tags))
    for tag, data in tags:
        _uvarint(out, tag)
        _uvarint(out, len(data))
        out += data


def _uvarint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


# --- reading --------------------------------------------------------------------------


class _Reader:
    """Bounds-checked reads: running off the end is a `CodecError`, never an IndexError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CodecError(f"truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        return fmt.unpack(self.take(fmt.size))

    def i16(self) -> int:
        return self.unpack(_I16)[0]

    def i32(self) -> int:
        return self.unpack(_I32)[0]

    def uvarint(self) -> int:
        result = shift = 0
        while True:
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 28:
                raise CodecError("unsigned varint too long")

    def text(self, size: int) -> str:
        try:
            return self.take(size).decode()
        except UnicodeDecodeError as exc:
            raise CodecError(f"string is not UTF-8: {exc}") from exc


def decode_key(data: bytes) -> str:
    """The transactional id of a key; `UnknownRecordType` for other record types."""
    reader = _Reader(data)
    key_type = reader.i16()
    if key_type != KEY_TYPE:
        raise UnknownRecordType(f"unknown __transaction_state key type {key_type}")
    size = reader.i16()
    if size < 0:
        raise CodecError("null transactional id")
    txn_id = reader.text(size)
    return txn_id


def decode_value(data: bytes) -> TxnValue:
    reader = _Reader(data)
    version = reader.i16()
    if version not in (0, 1):
        raise UnknownRecordType(f"unknown __transaction_state value version {version}")
    producer_id, epoch, timeout, status = reader.unpack(_FIXED)
    if not 0 <= status <= MAX_STATUS:
        raise CodecError(f"unknown transaction status {status}")
    flexible = version >= 1
    partitions = _read_partitions(reader, flexible)
    last_update, start = reader.unpack(_TIMES)
    value = TxnValue(producer_id, epoch, timeout, status, partitions, last_update, start)
    if flexible:
        value = _read_tags(reader, value)
    return value


def _read_partitions(reader: _Reader, flexible: bool) -> tuple[tuple[str, tuple[int, ...]], ...]:
    count = reader.uvarint() - 1 if flexible else reader.i32()
    if count < 0:
        return ()
    partitions = []
    for _ in range(count):
        size = reader.uvarint() - 1 if flexible else reader.i16()
        topic = reader.text(size)
        n = reader.uvarint() - 1 if flexible else reader.i32()
        if n < 0:
            raise CodecError("null partition id array")
        ids = tuple(reader.i32() for _ in range(n))
        if flexible:
            _skip_tags(reader)
        partitions.append((topic, ids))
    return tuple(partitions)


def _skip_tags(reader: _Reader) -> None:
    for _ in range(reader.uvarint()):
        reader.uvarint()
        reader.take(reader.uvarint())


def _read_tags(reader: _Reader, value: TxnValue) -> TxnValue:
    fields: dict[str, int] = {}
    names = {0: ("previous_producer_id", _I64), 1: ("next_producer_id", _I64),
             2: ("client_transaction_version", _I16), 3: ("next_producer_epoch", _I16)}
    for _ in range(reader.uvarint()):
        tag = reader.uvarint()
        data = reader.take(reader.uvarint())
        known = names.get(tag)
        if known is not None and len(data) == known[1].size:
            fields[known[0]] = known[1].unpack(data)[0]
    return replace(value, **fields) if fields else value  # type: ignore[arg-type]

"""Kafka Streams' binary layouts for store keys and values, byte for byte.

These are what changelog topics hold, so Kafka's tools (and a Java application restoring
the same changelog) read Strom's state, and Strom reads theirs:

- key-value stores: the serialized key; changelog value = the serialized value, and the
  record's timestamp is the value's timestamp (Kafka's timestamped stores keep
  `[timestamp: 8][value]` locally and log the plain value with that timestamp).
- window stores (WindowKeySchema): `[key][window start: 8][sequence number: 4]`, all
  big-endian; the sequence number is 0 unless the store keeps duplicates (joins).
- session stores (SessionKeySchema): `[key][session end: 8][session start: 8]`.

Timestamps are never negative here, so big-endian order is time order within a key.
"""

from __future__ import annotations

import struct

_TS = struct.Struct(">q")
_WINDOW_SUFFIX = struct.Struct(">qi")
_SESSION_SUFFIX = struct.Struct(">qq")
WINDOW_SUFFIX_SIZE = _WINDOW_SUFFIX.size  # 12
SESSION_SUFFIX_SIZE = _SESSION_SUFFIX.size  # 16
TIMESTAMP_SIZE = _TS.size


def stamped(timestamp: int, value: bytes) -> bytes:
    """Kafka's ValueAndTimestamp bytes: the timestamp, then the value."""
    return _TS.pack(timestamp) + value


def unstamped(data: bytes) -> tuple[bytes, int]:
    """The value and its timestamp from `stamped` bytes."""
    return data[TIMESTAMP_SIZE:], _TS.unpack_from(data)[0]


def window_key(key: bytes, window_start: int, seqnum: int = 0) -> bytes:
    return key + _WINDOW_SUFFIX.pack(window_start, seqnum)


def split_window_key(store_key: bytes) -> tuple[bytes, int, int]:
    """key, window start, sequence number."""
    start, seqnum = _WINDOW_SUFFIX.unpack_from(store_key, len(store_key) - WINDOW_SUFFIX_SIZE)
    return store_key[:-WINDOW_SUFFIX_SIZE], start, seqnum


def session_key(key: bytes, start: int, end: int) -> bytes:
    return key + _SESSION_SUFFIX.pack(end, start)


def split_session_key(store_key: bytes) -> tuple[bytes, int, int]:
    """key, session start, session end."""
    end, start = _SESSION_SUFFIX.unpack_from(store_key, len(store_key) - SESSION_SUFFIX_SIZE)
    return store_key[:-SESSION_SUFFIX_SIZE], start, end


def timestamp_bytes(timestamp: int) -> bytes:
    return _TS.pack(timestamp)

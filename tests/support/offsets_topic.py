"""Hostile content for `__consumer_offsets`, written straight into its log on disk.

Produce to internal topics is refused, so tests that need a damaged offsets log (one an
older version wrote, or a disk damaged) append batches with the storage API while the
broker is stopped. Every batch built here has a valid CRC unless its name says so: the
point is content a CRC cannot vouch for.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import cramjam
import crc32c

from strom.coordinator.group import codec
from strom.coordinator.group.config import partition_for
from strom.protocol import records
from strom.storage import Log, LogConfig

OFFSETS_TOPIC = "__consumer_offsets"
ZSTD = 4
_TAIL = struct.Struct(">hiqqqhii")  # attributes .. records_count


def raw_batch(body: bytes, *, count: int, attributes: int = 0, base_offset: int = 0,
              last_offset_delta: int | None = None) -> bytes:
    """A v2 batch around `body` (already compressed if `attributes` says so), CRC computed."""
    now = int(time.time() * 1000)
    delta = max(count - 1, 0) if last_offset_delta is None else last_offset_delta
    tail = _TAIL.pack(attributes, delta, now, now, -1, -1, -1, count) + body
    return struct.pack(">qiibI", base_offset, 9 + len(tail), 0, 2, crc32c.crc32c(tail)) + tail


def zstd_bomb(expanded: int) -> bytes:
    """A zstd frame of zeros: about 40 KB per GiB on the wire, `expanded` bytes once read."""
    compressor = cramjam.zstd.Compressor()
    chunk = bytes(16 << 20)
    for _ in range(expanded // len(chunk)):
        compressor.compress(chunk)
    return bytes(compressor.finish())


def commit_record(group: str, topic: str, partition: int, offset: int
                  ) -> tuple[bytes, bytes | None]:
    """A committed offset exactly as the coordinator writes it."""
    key = codec.encode_offset_key(codec.OffsetKey(group, topic, partition))
    value = codec.encode_offset_value(
        codec.OffsetValue(offset, -1, "", int(time.time() * 1000)))
    return key, value


def hostile_batches() -> dict[str, bytes]:
    """Named batches a coordinator load must skip (base offsets are patched on append)."""
    plain = records.encode_batch([(b"k", b"v")])
    body = plain[records.HEADER_SIZE:]
    group_key = codec.encode_group_key(codec.GroupKey("hostile"))
    offset_key = codec.encode_offset_key(codec.OffsetKey("hostile", "t", 0))
    return {
        # the records are not zstd, but the attributes say they are
        "garbage-zstd-payload": raw_batch(body, count=1, attributes=ZSTD),
        "garbage-records": raw_batch(bytes(range(256)) * 2, count=3),
        "record-count-lies": raw_batch(body, count=2_000_000, last_offset_delta=0),
        "garbage-key": records.encode_batch([(b"\x00\x01\xff\xff\xff", b"\x00\x03junk")]),
        "unknown-record-type": records.encode_batch([(b"\x00\x63whatever", b"\x00\x00")]),
        "garbage-values": records.encode_batch([(group_key, b"\x00\x03\x00\x07con"),
                                                (offset_key, b"\x7f\x7f" + bytes(40)),
                                                (None, b"keyless")]),
    }


def append_to_offsets_log(data_dir: Path, group: str, batches: list[bytes],
                          num_partitions: int = 50) -> int:
    """Append batches to the log of `group`'s offsets partition (broker stopped); returns
    the partition written to."""
    partition = partition_for(group, num_partitions)
    append_raw(data_dir / f"{OFFSETS_TOPIC}-{partition}", batches)
    return partition


def append_raw(partition_dir: Path, batches: list[bytes]) -> None:
    """Append batches to the end of a partition's active segment file as they are.

    This bypasses every check of the append path, as a disk or an older version would.
    Base offsets follow the log end, as a leader assigns them; whoever opens the log next
    finds the new end by scanning the active segment."""
    log = Log.open(partition_dir, LogConfig(), clean_shutdown=True)
    next_offset = log.log_end_offset
    path = log.active_segment.log_path
    log.close()
    with open(path, "ab") as out:
        for batch in batches:
            data = bytearray(batch)
            records.patch_base_offset(data, 0, next_offset)
            out.write(data)
            next_offset += max(records.read_header(data).last_offset_delta, 0) + 1


def append_indexed(data_dir: Path, group: str, batches: list[bytes],
                   num_partitions: int = 50) -> int:
    """Append batches to `group`'s offsets partition through the log, indexing every
    batch (so a clean start rescans none of them); returns the partition."""
    partition = partition_for(group, num_partitions)
    log = Log.open(data_dir / f"{OFFSETS_TOPIC}-{partition}", LogConfig(index_interval_bytes=0),
                   clean_shutdown=True)
    try:
        for batch in batches:
            data = bytearray(batch)
            records.patch_base_offset(data, 0, log.log_end_offset)
            log.append_as_follower(data)
        log.flush()
    finally:
        log.close()
    return partition


def damage_batch(data_dir: Path, partition: int, offset: int) -> None:
    """Flip the last byte (inside a value) of the batch at `offset`: its CRC no longer
    matches. Below the last index entry, a clean start does not notice; reads do."""
    partition_dir = data_dir / f"{OFFSETS_TOPIC}-{partition}"
    for path in sorted(partition_dir.glob("*.log")):
        data = path.read_bytes()
        for pos, header in records.scan_batches(data):
            if header.base_offset == offset:
                with open(path, "r+b") as f:
                    f.seek(pos + header.size - 1)
                    f.write(bytes([data[pos + header.size - 1] ^ 0xFF]))
                return
    raise AssertionError(f"no batch at offset {offset} in {partition_dir}")

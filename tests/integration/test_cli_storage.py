"""`strom storage verify` on data a real broker wrote for a real client, in every codec.

A healthy log dir passes with exit 0 and the record count the producer wrote; a flipped
byte, a damaged length and a wrong index entry each fail it with exit 1, naming the file
and the byte position, in text and in `--format json`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from confluent_kafka import Producer

from strom.protocol.records import scan_batches
from support.broker_process import BrokerProcess
from support.cli import strom, table
from support.clients import create_topic

pytestmark = pytest.mark.timeout(300)

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PER_CODEC = 500


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """A stopped broker's log dir holding one topic per codec."""
    data = tmp_path / "data"
    broker = BrokerProcess(data, overrides={"log.segment.bytes": "20000"}).start()
    try:
        for codec in CODECS:
            topic = create_topic(broker.bootstrap, f"codec-{codec}", partitions=2)
            producer = Producer({"bootstrap.servers": broker.bootstrap,
                                 "compression.type": codec, "linger.ms": 5})
            for i in range(PER_CODEC):
                producer.produce(topic, b"value-%d-" % i + bytes(i % 50), key=b"k%d" % i)
                if i % 50 == 49:  # several batches per partition, not one
                    assert producer.flush(30) == 0
    finally:
        assert broker.stop() == 0
    return data


def _first_segment(data: Path) -> Path:
    logs = sorted((data / "codec-zstd-0").glob("*.log"))
    return logs[0]


def test_healthy_data_passes(written: Path) -> None:
    result = strom("storage", "verify", str(written), "--format", "json")
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == 0
    logs = [f for f in report["files"]
            if f["kind"] == "log" and Path(f["path"]).parent.name.startswith("codec-")]
    assert sum(f["records"] for f in logs) == PER_CODEC * len(CODECS)
    assert len({Path(f["path"]).parent.name for f in logs}) == 2 * len(CODECS)
    text = strom("storage", "verify", str(written / "codec-gzip-1"))
    assert text.stdout.rstrip().endswith("no problems")
    rows = table(text.stdout.split("\n\n")[0])
    assert {r["STATUS"] for r in rows} == {"ok"}


def test_damage_fails_with_file_and_position(written: Path) -> None:
    segment = _first_segment(written)
    raw = segment.read_bytes()
    positions = [pos for pos, _ in scan_batches(raw)]
    assert len(positions) >= 3
    with open(segment, "r+b") as f:
        f.seek(positions[1] + 70)  # inside the compressed records of the second batch
        f.write(bytes([raw[positions[1] + 70] ^ 0xFF]))
        f.seek(positions[2] + 8)  # the third batch's length
        f.write(struct.pack(">i", len(raw)))
    index = segment.with_suffix(".index")
    if index.stat().st_size:
        with open(index, "r+b") as f:
            f.seek(4)
            f.write(struct.pack(">i", 3))
    result = strom("storage", "verify", str(written), check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    name = f"codec-zstd-0/{segment.name}"
    assert f"{name}: byte {positions[1]}: CRC-32C mismatch" in result.stdout
    assert f"{name}: byte {positions[2]}: batch of" in result.stdout
    if index.stat().st_size:
        assert "which is not a batch start" in result.stdout
    report = json.loads(strom("storage", "verify", str(segment), "--format", "json",
                              check=False).stdout)
    assert report["ok"] is False
    [log_report] = [f for f in report["files"] if f["kind"] == "log"]
    assert [p["position"] for p in log_report["problems"]] == positions[1:3]


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    result = strom("storage", "verify", str(tmp_path / "nope"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("strom: error: INVALID_ARGUMENT:")

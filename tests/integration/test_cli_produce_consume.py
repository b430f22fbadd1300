"""`strom topic produce` and `strom topic consume` against a live broker: the 10,000-line
round trip, keys, headers, input and output formats, start offsets, decoders, and the
progress bar for file input."""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.broker_process import BrokerProcess
from support.cli import strom, strom_bytes, unique

pytestmark = pytest.mark.timeout(300)


def _read_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int, object]]:
    """(partition, offset, message) of every record, read with a plain client."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "enable.partition.eof": True, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found, eof = [], set()
    deadline = time.monotonic() + 30
    while len(eof) < partitions and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            eof.add(msg.partition())
            continue
        found.append((msg.partition(), msg.offset(), msg))
    consumer.close()
    return found


def test_round_trip_of_a_10000_line_file(broker: BrokerProcess, tmp_path: Path) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("roundtrip")
    strom("topic", "create", topic, "-p", "3", *b)
    lines = [f"line {i:05d} {'x' * (i % 50)}" for i in range(10_000)]
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(lines) + "\n")

    produced = strom("topic", "produce", topic, "--input", str(source), *b)
    assert "produced 10000 records" in produced.stderr
    assert "records/s" in produced.stderr and produced.stdout == ""

    out = strom("topic", "consume", topic, "-n", "10000", "-f", "%p\\t%o\\t%v\\n", *b).stdout
    rows = [line.split("\t", 2) for line in out.splitlines()]
    assert len(rows) == 10_000
    assert sorted(value for _, _, value in rows) == sorted(lines)
    per_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for partition, offset, value in rows:
        per_partition[int(partition)].append((int(offset), value))
    position = {line: i for i, line in enumerate(lines)}
    for partition, records in per_partition.items():
        assert [o for o, _ in records] == list(range(len(records))), partition
        order = [position[v] for _, v in records]
        assert order == sorted(order), f"partition {partition} is out of file order"


def test_stdin_keys_headers_and_partition(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("keyed")
    strom("topic", "create", topic, "-p", "2", *b)
    strom("topic", "produce", topic, "-K", ":", "-H", "source=test", "-H", "v=2", "-p", "1",
          "-z", "zstd", *b, input="k1:hello\nk2:wor:ld\n\nnokey\n")
    records = _read_all(broker.bootstrap, topic, 2)
    assert [(p, o) for p, o, _ in records] == [(1, 0), (1, 1), (1, 2)]
    msgs = [m for _, _, m in records]
    assert [(m.key(), m.value()) for m in msgs] == [  # type: ignore[attr-defined]
        (b"k1", b"hello"), (b"k2", b"wor:ld"), (None, b"nokey")]
    assert msgs[0].headers() == [("source", b"test"), ("v", b"2")]  # type: ignore[attr-defined]

    out = strom("topic", "consume", topic, "-f", "%t %p %o %k=%v [%h] %K %S\\n", *b).stdout
    assert out.splitlines() == [
        f"{topic} 1 0 k1=hello [source=test,v=2] 2 5",
        f"{topic} 1 1 k2=wor:ld [source=test,v=2] 2 6",
        f"{topic} 1 2 =nokey [source=test,v=2] -1 5",
    ]


def test_input_format_grammar(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("grammar")
    strom("topic", "create", topic, "-p", "3", *b)
    stamp = 1_700_000_000_000
    text = "".join(f"{stamp + i} {i % 3} key{i} a=1,b=x{i} value {i} with spaces\n"
                   for i in range(6))
    strom("topic", "produce", topic, "-f", "%T %p %k %h %v", *b, input=text)
    msgs = sorted((m.value(), m) for _, _, m in _read_all(broker.bootstrap, topic, 3))
    assert len(msgs) == 6
    for i, (_, m) in enumerate(msgs):
        assert m.partition() == i % 3  # type: ignore[attr-defined]
        assert m.key() == f"key{i}".encode()  # type: ignore[attr-defined]
        assert m.value() == f"value {i} with spaces".encode()  # type: ignore[attr-defined]
        assert m.timestamp()[1] == stamp + i  # type: ignore[attr-defined]
        assert m.headers() == [("a", b"1"), ("b", f"x{i}".encode())]  # type: ignore[attr-defined]

    bad = strom("topic", "produce", topic, "-f", "%k|%v", *b, input="no bar here\n", check=False)
    assert bad.returncode == 1 and "line 1 does not match" in bad.stderr


def test_json_envelope_round_trips_binary_and_json(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    source, copy = unique("jsrc"), unique("jcopy")
    strom("topic", "create", source, *b)
    strom("topic", "create", copy, *b)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(source, b'{"amount": 12, "currency": "EUR"}', b"order-1",
                     headers=[("h", b"1")])
    producer.produce(source, b"\x00\xff\x10binary", None)
    producer.produce(source, None, b"tombstone")
    assert producer.flush(30) == 0

    envelopes = [json.loads(line) for line in
                 strom("topic", "consume", source, "-f", "json", *b).stdout.splitlines()]
    assert [e["offset"] for e in envelopes] == [0, 1, 2]
    first, binary, tomb = envelopes
    assert first["key"] == "order-1" and first["value"] == '{"amount": 12, "currency": "EUR"}'
    assert first["headers"] == [{"key": "h", "value": "1"}]
    assert first["timestamp_type"] == "CreateTime" and first["timestamp"] > 0
    assert binary["value_encoding"] == "base64"
    assert base64.b64decode(binary["value"]) == b"\x00\xff\x10binary"
    assert tomb["value"] is None and tomb["key"] == "tombstone"

    decoded = json.loads(strom("topic", "consume", source, "-n", "1", "-f", "json",
                               "--value-decoder", "json", *b).stdout)
    assert decoded["value"] == {"amount": 12, "currency": "EUR"}

    dump = strom_bytes("topic", "consume", source, "-f", "json", *b)
    strom("topic", "produce", copy, "-f", "json", *b, input=dump.decode())
    copied = [m for _, _, m in _read_all(broker.bootstrap, copy, 1)]
    assert [(m.key(), m.value()) for m in copied] == [  # type: ignore[attr-defined]
        (b"order-1", b'{"amount": 12, "currency": "EUR"}'),
        (None, b"\x00\xff\x10binary"), (b"tombstone", None)]
    assert copied[0].headers() == [("h", b"1")]  # type: ignore[attr-defined]

    pretty = strom("topic", "consume", source, "-n", "1", "--value-decoder", "json",
                   "--pretty", *b).stdout
    assert pretty == '{\n  "amount": 12,\n  "currency": "EUR"\n}\n'
    hexed = strom("topic", "consume", source, "-o", "1", "-n", "1", "--value-decoder", "hex",
                  *b).stdout
    assert hexed == "00ff1062696e617279\n"
    escaped = strom("topic", "consume", source, "-o", "1", "-n", "1", *b).stdout
    assert escaped == "\\x00\\xff\\x10binary\n"


def test_start_offsets(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("offsets")
    strom("topic", "create", topic, "-p", "2", *b)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    base = int(time.time() * 1000) - 60_000
    for i in range(10):
        producer.produce(topic, b"v%d" % i, partition=0, timestamp=base + i * 1000)
    assert producer.flush(30) == 0

    def values(*args: str) -> list[str]:
        return strom("topic", "consume", topic, "-p", "0", *args, *b).stdout.split()

    assert values() == [f"v{i}" for i in range(10)]
    assert values("-o", "beginning", "-n", "3") == ["v0", "v1", "v2"]
    assert values("-o", "7") == ["v7", "v8", "v9"]
    assert values("-o", "-2") == ["v8", "v9"]
    assert values("-o", "+8") == ["v8", "v9"]
    assert values("-o", "end") == []
    assert values("-o", f"s@{base + 5000}") == ["v5", "v6", "v7", "v8", "v9"]
    assert values("-o", f"s@{base + 3000}", "-o", f"e@{base + 6000}") == ["v3", "v4", "v5"]
    assert values("-o", "s@now") == []
    out = strom("topic", "consume", topic, "-o", "3", "-p", "0", "-n", "1", "-f",
                "%o:%T\\n", *b).stdout
    assert out == f"3:{base + 3000}\n"

    beyond = strom("topic", "consume", topic, "-p", "0", "-o", "500", *b, check=False)
    assert beyond.returncode == 1 and "_AUTO_OFFSET_RESET" in beyond.stderr
    assert "Offset out of range" in beyond.stderr and "Hint:" in beyond.stderr
    unknown = strom("topic", "consume", unique("nope"), *b, check=False)
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr


def test_group_mode_commits_what_it_printed(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    topic, group = unique("gtopic"), unique("cli-group")
    strom("topic", "create", topic, *b)
    strom("topic", "produce", topic, *b, input="".join(f"m{i}\n" for i in range(10)))
    first = strom("topic", "consume", topic, "-g", group, "-n", "4", *b).stdout.split()
    assert first == ["m0", "m1", "m2", "m3"]
    rest = strom("topic", "consume", topic, "-g", group, *b).stdout.split()
    assert rest == [f"m{i}" for i in range(4, 10)]
    nothing = strom("topic", "consume", topic, "-g", group, *b).stdout
    assert nothing == ""


def test_progress_bar_for_file_input(broker: BrokerProcess, tmp_path: Path) -> None:
    b = ("-b", broker.bootstrap)
    topic = unique("progress")
    source = tmp_path / "in.txt"
    source.write_text("".join(f"r{i}\n" for i in range(3000)))
    result = strom("topic", "produce", topic, "-i", str(source), "--progress", *b)
    assert "producing" in result.stderr and "3,000 acked" in result.stderr
    assert "rec/s" in result.stderr and "100%" not in result.stdout
    quiet = strom("topic", "produce", topic, "-q", *b, input="a\nb\n")
    assert quiet.stderr == ""


def test_follow_mode_waits_for_new_records(broker: BrokerProcess) -> None:
    import subprocess
    import sys

    topic = unique("follow")
    strom("topic", "create", topic, "-b", broker.bootstrap)
    follower = subprocess.Popen(
        [sys.executable, "-m", "strom", "topic", "consume", topic, "-F", "-n", "3",
         "-b", broker.bootstrap], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2)
        assert follower.poll() is None  # waiting at the end, not exited
        strom("topic", "produce", topic, "-b", broker.bootstrap, input="x\ny\nz\n")
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert out.decode().split() == ["x", "y", "z"]

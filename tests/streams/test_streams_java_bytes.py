"""Bytes Strom Streams shares with Kafka Streams instances, checked with Kafka Streams 4.4's
own classes (`java_bytes/StromStreamsBytes.java`, one JVM per session):

- the foreign-key join's subscription (SubscriptionWrapper) and response
  (SubscriptionResponseWrapper) values, both ways: what Strom writes, Java's serdes decode
  to the same fields; what Java's serdes write, Strom writes byte for byte;
- the hash inside them: MurmurHash3-128 as Kafka's `Murmur3.hash128`;
- the records a Strom FK join topology actually sends to its subscription and response
  topics (through Strom's TopologyTestDriver), decoded by Java.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from strom.streams import Serdes, StreamsBuilder, Suppressed, TimeWindows, TopologyTestDriver
from strom.streams.dsl.fk_join import (
    decode_response,
    decode_subscription,
    encode_response,
    encode_subscription,
)
from strom.streams.dsl.suppress import BufferedRecord, decode_buffered, encode_buffered
from strom.streams.murmur3 import hash128_bytes
from support.interop import kafka_dist

pytestmark = pytest.mark.interop

SOURCES = sorted((Path(__file__).parent / "java_bytes").glob("*.java"))
Java = Callable[[list[str]], list[str]]


@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory) -> Java:
    """Runs a batch of commands through one JVM; their answers in order."""
    if not kafka_dist.javac_available():
        pytest.skip("no JDK: these checks need java and javac (apt-get install default-jdk-headless)")
    lib = kafka_dist.ensure_jars()
    out = tmp_path_factory.mktemp("java-bytes")
    subprocess.run(["javac", "-d", str(out), "-cp", str(lib / "*"), *map(str, SOURCES)], check=True,
                   capture_output=True, timeout=300)

    def run(commands: list[str]) -> list[str]:
        done = subprocess.run(["java", *kafka_dist.TOOL_JVM_OPTS, "-cp", f"{out}:{lib / '*'}",
                               "StromStreamsBytes"], input="\n".join(commands) + "\n",
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    return run


def _hex(data: bytes | None) -> str:
    return "-" if data is None else data.hex()


def test_murmur3_hash128_matches_kafka(java: Java) -> None:
    rng = random.Random(13)
    samples = [b"", b"a", b"hello", bytes(range(256))] + [
        rng.randbytes(n) for n in range(1, 48) for _ in range(2)]
    answers = java([f"hash {s.hex()}" for s in samples])
    assert answers == [hash128_bytes(s).hex() for s in samples]


def test_subscription_bytes_both_ways(java: Java) -> None:
    cases = [(instruction, digest, pk, partition)
             for instruction in range(4)
             for digest in (None, hash128_bytes(f"v{instruction}".encode()))
             for pk, partition in (("order-1", 0), ("ö-ключ", 7), ("k", 2147483647))]
    strom = [encode_subscription(i, d, pk.encode(), p) for i, d, pk, p in cases]
    decoded = java([f"dsub {b.hex()}" for b in strom])
    assert decoded == [f"1 {i} {_hex(d)} {pk} {p}" for i, d, pk, p in cases]
    written = java([f"esub {i} {_hex(d)} {pk} {p}" for i, d, pk, p in cases])
    assert written == [b.hex() for b in strom]
    for raw, (i, d, pk, p) in zip(strom, cases, strict=True):
        assert decode_subscription(raw) == (i, d, pk.encode(), p)


def test_response_bytes_both_ways(java: Java) -> None:
    cases = [(digest, value) for digest in (None, hash128_bytes(b"left"))
             for value in (None, "customer-9", "ü")]
    strom = [encode_response(d, None if v is None else v.encode()) for d, v in cases]
    assert java([f"dresp {b.hex()}" for b in strom]) == [
        f"0 {_hex(d)} {v if v is not None else '-'}" for d, v in cases]
    assert java([f"eresp {_hex(d)} {v if v is not None else '-'}" for d, v in cases]) == [
        b.hex() for b in strom]
    for raw, (d, v) in zip(strom, cases, strict=True):
        assert decode_response(raw) == (d, None if v is None else v.encode())


def test_fk_join_topics_carry_kafkas_bytes(java: Java) -> None:
    """What a Strom FK join really sends to its internal topics, read by Java's serdes."""
    s = Serdes.String
    b = StreamsBuilder()
    orders = b.table("orders", s, s)
    customers = b.table("customers", s, s)
    orders.join(customers, lambda o, c: f"{o}/{c}", foreign_key=lambda o: o.split(":")[0],
                name="fk").to_stream().to("out", s, s)
    with TopologyTestDriver(b.build(), application_id="app") as driver:
        driver.create_input_topic("customers", s, s).pipe_input("c1", "Ada", timestamp=1)
        order_topic = driver.create_input_topic("orders", s, s)
        order_topic.pipe_input("o1", "c1:book", timestamp=2)
        order_topic.pipe_input("o1", "c2:pen", timestamp=3)  # moves: unsubscribe c1
        order_topic.pipe_input("o1", None, timestamp=4)
        subs = driver.create_output_topic("app-fk-subscription-registration-topic").read_raw()
        resps = driver.create_output_topic("app-fk-subscription-response-topic").read_raw()
    assert [(r.key, decode_subscription(r.value)[0]) for r in subs] == [
        (b"c1", 3), (b"c1", 0), (b"c2", 2), (b"c2", 1)]
    decoded = java([f"dsub {r.value.hex()}" for r in subs])
    assert decoded == [
        f"1 3 {hash128_bytes(b'c1:book').hex()} o1 0", "1 0 - o1 0",
        f"1 2 {hash128_bytes(b'c2:pen').hex()} o1 0", "1 1 - o1 0"]
    answers = java([f"dresp {r.value.hex()}" for r in resps])
    assert answers[0] == f"0 {hash128_bytes(b'c1:book').hex()} Ada"
    assert len(answers) == len(resps) >= 2


def _buffer_fields(e: BufferedRecord) -> str:
    headers = ",".join(f"{k}={_hex(v)}" for k, v in e.headers) or "-"
    return (f"{_hex(e.prior)} {_hex(e.old)} {_hex(e.new)} {e.timestamp} {e.offset} "
            f"{e.topic or '-'} {e.partition} {headers} {e.buffer_time}")


def test_suppression_buffer_bytes_both_ways(java: Java) -> None:
    n1, n2 = (1).to_bytes(8, "big"), (2).to_bytes(8, "big")
    entries = [
        BufferedRecord(None, None, n1, 5, 0, "clicks", 0, (), 10),
        BufferedRecord(n1, n1, n2, 7, 41, "app-x-repartition", 2, (("trace", b"\x01\x02"),), 20),
        BufferedRecord(n1, n2, b"", -1, -1, "", 1, (("a", None), ("ü", b"")), 2**40),
        BufferedRecord(None, n2, None, 9, 3, "t", 0, (), 30),
    ]
    strom = [encode_buffered(e) for e in entries]
    assert java([f"ebuf {_buffer_fields(e)}" for e in entries]) == [b.hex() for b in strom]
    assert java([f"dbuf 3 {b.hex()}" for b in strom]) == [_buffer_fields(e) for e in entries]
    assert [decode_buffered(b) for b in strom] == entries


def test_suppress_changelog_is_kafkas_buffer_changelog(java: Java) -> None:
    """The changelog a Strom suppress writes, record by record: header v=3, values Java's
    restore reads back to the buffered counts, their record context and window end."""
    b = StreamsBuilder()
    (b.stream("clicks", key_serde=Serdes.String, value_serde=Serdes.String).group_by_key()
     .windowed_by(TimeWindows.of(10, grace_ms=5)).count("per-window")
     .suppress(Suppressed.until_window_closes()).to_stream().to("out"))
    with TopologyTestDriver(b.build(), application_id="app") as driver:
        clicks = driver.create_input_topic("clicks", Serdes.String, Serdes.String)
        for key, ts in (("a", 1), ("a", 3), ("b", 12), ("a", 30)):
            clicks.pipe_input(key, "x", ts)
        topic = next(t for t in driver.produced_topics()
                     if "SUPPRESS-STATE-STORE" in t and t.endswith("-changelog"))
        logged = driver.create_output_topic(topic).read_raw()
    values = [r for r in logged if r.value is not None]
    assert len(values) == 4 and len(logged) == 6  # windows [0,10) and [10,20) evicted
    assert all(tuple(r.headers) == (("v", b"\x03"),) for r in values)
    assert all(not r.headers for r in logged if r.value is None)
    n = [i.to_bytes(8, "big") for i in range(3)]
    assert java([f"dbuf 3 {r.value.hex()}" for r in values]) == [
        f"- - {n[1].hex()} 1 0 clicks 0 - 10",
        f"- {n[1].hex()} {n[2].hex()} 3 1 clicks 0 - 10",
        f"- - {n[1].hex()} 12 2 clicks 0 - 20",
        f"- - {n[1].hex()} 30 3 clicks 0 - 40"]

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

from strom.streams import Serdes, StreamsBuilder, TopologyTestDriver
from strom.streams.dsl.fk_join import (
    decode_response,
    decode_subscription,
    encode_response,
    encode_subscription,
)
from strom.streams.murmur3 import hash128_bytes
from support.interop import kafka_dist

pytestmark = pytest.mark.interop

SOURCE = Path(__file__).parent / "java_bytes" / "StromStreamsBytes.java"
Java = Callable[[list[str]], list[str]]


@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory) -> Java:
    """Runs a batch of commands through one JVM; their answers in order."""
    if not kafka_dist.javac_available():
        pytest.skip("no JDK: these checks need java and javac (apt-get install default-jdk-headless)")
    lib = kafka_dist.ensure_jars()
    out = tmp_path_factory.mktemp("java-bytes")
    subprocess.run(["javac", "-d", str(out), "-cp", str(lib / "*"), str(SOURCE)], check=True,
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

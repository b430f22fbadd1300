"""Regenerate tests/golden: real clients' requests and Strom's responses, byte for byte.

Each client runs one short session against a fresh Strom broker through a recording
proxy (the fuzz corpus's `RecordingProxy`, here keeping both directions with arrival
times): create a topic where the client can, produce, consume in a group and commit,
and ask for offsets. From everything it sent, the exchanges of the APIs below are kept
in the order the requests arrived; repeats that differ only in correlation id (long
polls, metadata refreshes) are kept once. Because every session starts on a fresh
broker, replaying the exchanges in order against another fresh broker
(tests/golden/test_golden_replay.py) reproduces the same state and the same answers,
but for member ids, topic ids and the cluster id.

Clients: confluent-kafka (librdkafka), kafka-python, kcat (librdkafka underneath, no
admin API, so its topic is created beforehand) and the Java client (Kafka's own tools
from the jars tools/kafka_dist.py caches: kafka-topics, the console producer and
consumer, kafka-get-offsets). A client that is not installed is skipped.

    python tests/golden/record_golden.py [--only confluent-kafka,kcat]

Re-record after a deliberate change in what Strom answers, and review the diff of the
response files.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

from fuzz.record_corpus import RecordingProxy  # noqa: E402
from strom.protocol import apis  # noqa: E402
from support.broker_process import BrokerProcess, free_port  # noqa: E402
from support.fuzz_frames import frame_key, split_frames  # noqa: E402
from support.golden import (  # noqa: E402
    GOLDEN_DIR,
    RETRIABLE,
    correlation_id_of_request,
    decode_response,
    error_codes,
    plain,
)
from support.raw_client import RawClient, create_topic  # noqa: E402

PRODUCE, FETCH, LIST_OFFSETS, METADATA, OFFSET_COMMIT, FIND_COORDINATOR = 0, 1, 2, 3, 8, 10
JOIN_GROUP, SYNC_GROUP, API_VERSIONS, CREATE_TOPICS, INIT_PRODUCER_ID = 11, 14, 18, 19, 22
KEPT_APIS = frozenset({API_VERSIONS, METADATA, PRODUCE, FETCH, LIST_OFFSETS, FIND_COORDINATOR,
                       JOIN_GROUP, SYNC_GROUP, OFFSET_COMMIT, CREATE_TOPICS,
                       INIT_PRODUCER_ID})  # an idempotent producer's ids: replays need it
BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
MESSAGES = 12
TIMEOUT = 30.0


# --- the proxy, both directions ----------------------------------------------------------------


@dataclass
class Tap:
    """What went one way over one connection, with the time each chunk arrived."""

    data: bytearray = field(default_factory=bytearray)
    ends: list[int] = field(default_factory=list)  # cumulative size after each chunk
    times: list[float] = field(default_factory=list)

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        self.ends.append(len(self.data))
        self.times.append(time.monotonic())

    def time_of(self, end: int) -> float:
        """When the byte at offset end-1 arrived."""
        return self.times[bisect.bisect_left(self.ends, end)]


@dataclass
class Connection:
    scenario: str
    sent: Tap = field(default_factory=Tap)
    received: Tap = field(default_factory=Tap)


class ExchangeProxy(RecordingProxy):
    """The fuzz corpus's recording proxy, keeping the broker's answers too."""

    def __init__(self, upstream_port: int, port: int) -> None:
        super().__init__(upstream_port, port)
        self.connections: list[Connection] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        conn = Connection(self.scenario)
        self.connections.append(conn)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._tap(reader, up_writer, conn.sent),
                                 self._tap(up_reader, writer, conn.received),
                                 return_exceptions=True)

    @staticmethod
    async def _tap(src: asyncio.StreamReader, dst: asyncio.StreamWriter, tap: Tap) -> None:
        try:
            while data := await src.read(65536):
                tap.add(data)
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()


@dataclass(frozen=True)
class Recorded:
    at: float
    request: bytes
    response: bytes


def exchanges(connections: list[Connection]) -> list[Recorded]:
    """Every answered request of the connections, in the order the requests arrived."""
    out = []
    for conn in connections:
        responses = {struct.unpack_from(">i", f, 4)[0]: f
                     for f in split_frames(bytes(conn.received.data))}
        end = 0
        for frame in split_frames(bytes(conn.sent.data)):
            end += len(frame)
            response = responses.get(correlation_id_of_request(frame))
            if response is not None:
                out.append(Recorded(conn.sent.time_of(end), frame, response))
    return sorted(out, key=lambda r: r.at)


def keep(recorded: list[Recorded]) -> list[Recorded]:
    """The exchanges of KEPT_APIS, each distinct request once: the first time it was sent,
    unless that answer was a retriable error (a coordinator still loading, say); then
    the later answer the client went on with replaces it."""
    kept: dict[bytes, Recorded] = {}
    for item in recorded:
        api = struct.unpack_from(">h", item.request, 4)[0]
        key = frame_key(item.request) + generation_of(item)
        if api not in KEPT_APIS:
            continue
        earlier = kept.get(key)
        if earlier is None or retriable(earlier):
            kept.pop(key, None)
            kept[key] = item
    return sorted(kept.values(), key=lambda r: r.at)


def generation_of(item: Recorded) -> bytes:
    """A JoinGroup's answered generation: a member that joins again with the very same
    request (kafka-python does once a created topic's partitions appear) starts a new
    generation, and the replay needs that join to sync with it."""
    key, version = struct.unpack_from(">hh", item.request, 4)
    if key != JOIN_GROUP:
        return b""
    body = decode_response(item.response, key, version).body
    return struct.pack(">i", int(getattr(body, "generation_id", -1)))


def retriable(item: Recorded) -> bool:
    key, version = struct.unpack_from(">hh", item.request, 4)
    body = decode_response(item.response, key, version).body
    return bool(error_codes(plain(body)) & RETRIABLE)


# --- client sessions ----------------------------------------------------------------------------


def _values(tag: str) -> list[tuple[bytes, bytes]]:
    return [(f"key-{i % 3}".encode(), f"{tag}-value-{i}".encode()) for i in range(MESSAGES)]


def confluent_session(bootstrap: str, topic: str, group: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(TIMEOUT)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20})
    for i, (key, value) in enumerate(_values("confluent")):
        producer.produce(topic, value, key, partition=i % 2, timestamp=1_700_000_000_000 + i)
    assert producer.flush(TIMEOUT) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    _drain(lambda: consumer.poll(0.5), lambda m: m is not None and m.error() is None)
    consumer.commit(asynchronous=False)
    consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT, cached=False)
    consumer.offsets_for_times([TopicPartition(topic, 1, 1_700_000_000_005)], timeout=TIMEOUT)
    consumer.close()


def kafka_python_session(bootstrap: str, topic: str, group: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for i, (key, value) in enumerate(_values("kafka-python")):
        producer.send(topic, value=value, key=key, partition=i % 2,
                      timestamp_ms=1_700_000_000_000 + i)
    producer.flush(TIMEOUT)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    for seen, _ in enumerate(consumer, 1):
        if seen == MESSAGES:
            break
    consumer.commit()
    consumer.end_offsets([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    consumer.close()


def kcat_session(bootstrap: str, topic: str, group: str) -> None:
    def run(*args: str, data: str | None = None) -> None:
        result = subprocess.run(["kcat", "-b", bootstrap, *args], input=data, text=True,
                                capture_output=True, timeout=TIMEOUT, check=False)
        if result.returncode != 0:
            print(f"  kcat {' '.join(args)}: {result.stderr.strip()[-300:]}")

    run("-L", "-t", topic)
    lines = "".join(f"{k.decode()}:{v.decode()}\n" for k, v in _values("kcat"))
    run("-P", "-t", topic, "-p", "0", "-K", ":", data=lines)
    run("-C", "-t", topic, "-o", "beginning", "-e", "-q")
    run("-G", group, "-o", "beginning", "-e", "-q", "-X", "auto.commit.interval.ms=100",
        topic)


def java_session(bootstrap: str, topic: str, group: str) -> None:
    from tools import kafka_dist

    def tool(main_class: str, *args: str, data: str | None = None) -> None:
        result = kafka_dist.run_tool(main_class, "--bootstrap-server", bootstrap, *args,
                                     input=data, timeout=120)
        if result.returncode != 0:
            print(f"  {main_class}: {result.stderr.strip()[-500:]}")

    tool("org.apache.kafka.tools.TopicCommand", "--create", "--topic", topic,
         "--partitions", "2")
    lines = "".join(f"{v.decode()}\n" for _, v in _values("java"))
    tool("org.apache.kafka.tools.ConsoleProducer", "--topic", topic, data=lines)
    tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", topic, "--group", group,
         "--from-beginning", "--max-messages", str(MESSAGES), "--timeout-ms", "20000")
    tool("org.apache.kafka.tools.GetOffsetShell", "--topic", topic)


def _drain(poll: Callable[[], Any], ok: Callable[[Any], bool]) -> None:
    seen, deadline = 0, time.monotonic() + TIMEOUT
    while seen < MESSAGES and time.monotonic() < deadline:
        if ok(poll()):
            seen += 1


# --- clients, versions, sessions ----------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    name: str
    session: Callable[[str, str, str], None]
    version: Callable[[], str | None]  # None: not installed here
    creates_topic: bool = True


def _confluent_version() -> str | None:
    import confluent_kafka

    return str(confluent_kafka.__version__)


def _kafka_python_version() -> str | None:
    import kafka

    return str(kafka.__version__)


def _kcat_version() -> str | None:
    if shutil.which("kcat") is None:
        return None
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True, check=False).stdout
    return next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Version")), "unknown")


def _java_version() -> str | None:
    from tools import kafka_dist

    if not (kafka_dist.java_available() and kafka_dist.jars_present()):
        return None
    return str(kafka_dist.KAFKA_VERSION)


CLIENTS = (
    Client("confluent-kafka", confluent_session, _confluent_version),
    Client("kafka-python", kafka_python_session, _kafka_python_version),
    Client("kcat", kcat_session, _kcat_version, creates_topic=False),
    Client("java", java_session, _java_version),
)


def record_client(client: Client, version: str, out: Path) -> dict[str, Any]:
    """Run one client's session on a fresh broker; write its exchanges under `out`."""
    work = Path(tempfile.mkdtemp(prefix="strom-golden-"))
    proxy_port = free_port()
    broker = BrokerProcess(work / "data", overrides={
        **BROKER_OVERRIDES, "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}"})
    broker.start()
    proxy = ExchangeProxy(broker.port, proxy_port).start()
    topic, group = f"golden-{client.name}", f"golden-{client.name}-group"
    try:
        if not client.creates_topic:
            with RawClient(broker.bootstrap) as raw:
                assert create_topic(raw, topic, 2).error_code == 0
        proxy.scenario = client.name
        client.session(f"127.0.0.1:{proxy_port}", topic, group)
        time.sleep(0.5)
    finally:
        proxy.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    kept = keep(exchanges(proxy.connections))
    directory = out / f"{client.name}-{version}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for index, item in enumerate(kept):
        key, api_version = struct.unpack_from(">hh", item.request, 4)
        stem = f"{index:02d}-{apis.api_name(key)}-v{api_version}"
        (directory / f"{stem}.request.bin").write_bytes(item.request)
        (directory / f"{stem}.response.bin").write_bytes(item.response)
    print(f"  {directory.name}: {len(kept)} exchanges, "
          f"{sum(len(i.request) + len(i.response) for i in kept)} bytes")
    return {"client": client.name, "version": version, "topic": topic, "group": group,
            "precreated_topics": {} if client.creates_topic else {topic: 2},
            "exchanges": len(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR)
    parser.add_argument("--only", default="", help="comma-separated client names")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    manifest_path = args.out / "manifest.json"
    doc: dict[str, Any] = (json.loads(manifest_path.read_text()) if manifest_path.exists()
                           else {"broker_overrides": BROKER_OVERRIDES, "sessions": {}})
    for client in CLIENTS:
        if only and client.name not in only:
            continue
        version = client.version()
        if version is None:
            print(f"{client.name}: not installed; skipped")
            continue
        for old in [k for k, v in doc["sessions"].items() if v["client"] == client.name]:
            shutil.rmtree(args.out / old, ignore_errors=True)
            del doc["sessions"][old]
        print(f"recording {client.name} {version}")
        entry = record_client(client, version, args.out)
        doc["sessions"][f"{client.name}-{version}"] = {**entry,
                                                       "recorded": time.strftime("%Y-%m-%d")}
    doc["broker_overrides"] = BROKER_OVERRIDES
    manifest_path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

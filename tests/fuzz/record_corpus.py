"""Regenerate tests/fuzz/corpus: request frames recorded from real clients.

Hand-written seed requests only cover what their author thought of. Real clients send
versions, tagged fields, batch layouts and request sequences nobody writes by hand, so
the fuzz suite mutates frames recorded from them instead. This script starts a Strom
broker, puts a recording TCP proxy in front of it (the broker advertises the proxy's
address, so every connection a client opens goes through it, coordinator connections
included) and runs each client scenario:

- confluent-kafka producers with each codec (none, gzip, snappy, lz4, zstd), an
  idempotent acks=all producer, a consumer in a group (join, sync, heartbeat, fetch,
  commit, leave) and the AdminClient (create/describe/alter/delete topics and configs,
  partitions, groups, offsets);
- kafka-python: a gzip producer, a group consumer and its admin client;
- kcat: metadata, produce (snappy), consume, and a balanced consumer group.

Every client→broker frame is kept as sent (size prefix included), per scenario, then
thinned: repeats that differ only in correlation id are dropped and each (API, version)
keeps at most `--per-api` frames, so the corpus stays small. Output: one
`<scenario>.bin` per scenario (concatenated frames) and `manifest.json` naming the
topics the frames refer to (the fuzz suite creates them before replaying) and the client
versions recorded.

    python tests/fuzz/record_corpus.py [--out tests/fuzz/corpus] [--per-api 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support.broker_process import BrokerProcess, free_port  # noqa: E402
from support.fuzz_frames import CORPUS_DIR, frame_key, split_frames  # noqa: E402
from support.raw_client import RawClient, create_topic  # noqa: E402

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# topics the recorded frames name; created directly on the broker (not through the proxy)
TOPICS: dict[str, int] = {
    **{f"corpus-{codec}": 3 for codec in CODECS},
    "corpus-idempotent": 2,
    "corpus-kp": 2,
    "corpus-kcat": 2,
}
TIMEOUT = 30.0


class RecordingProxy:
    """A loopback TCP forwarder that keeps every client→broker byte, per scenario.

    Runs its own asyncio loop on a thread; `scenario` names where new bytes are filed."""

    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.scenario = "setup"
        self.streams: list[tuple[str, bytearray]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RecordingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        stream = bytearray()
        self.streams.append((self.scenario, stream))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._pump(reader, up_writer, stream),
                                 self._pump(up_reader, writer, None), return_exceptions=True)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    keep: bytearray | None) -> None:
        try:
            while data := await src.read(65536):
                if keep is not None:
                    keep += data
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._thread.join(10)


# --- scenarios -------------------------------------------------------------------------------


def _messages(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    return [(f"key-{i % 7}".encode(), f"{tag}-value-{i}-".encode() + b"x" * (i * 13 % 200))
            for i in range(n)]


def confluent_producer(bootstrap: str, codec: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                         "linger.ms": 20, "enable.idempotence": False, "acks": 1})
    for key, value in _messages(40, codec):
        producer.produce(f"corpus-{codec}", value, key, headers=[("h", b"v"), ("n", None)])
    assert producer.flush(TIMEOUT) == 0


def confluent_idempotent(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "compression.type": "lz4", "linger.ms": 5})
    for i, (key, value) in enumerate(_messages(60, "idem")):
        producer.produce("corpus-idempotent", value, key, partition=i % 2)
        if i % 20 == 19:
            producer.flush(TIMEOUT)
    assert producer.flush(TIMEOUT) == 0


def _commit(consumer: Any) -> None:
    from confluent_kafka import KafkaException

    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:  # nothing new to commit
        print(f"  commit: {exc}")


def confluent_group(bootstrap: str) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "corpus-group",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 10_000, "heartbeat.interval.ms": 500})
    consumer.subscribe(["corpus-none", "corpus-gzip", "corpus-zstd"])
    seen, deadline = 0, time.monotonic() + TIMEOUT
    while seen < 120 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen += 1
            if seen % 40 == 0:
                _commit(consumer)
    _commit(consumer)
    consumer.committed(consumer.assignment(), timeout=10)
    time.sleep(1.2)  # a couple of heartbeats
    consumer.close()


def confluent_admin(bootstrap: str) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        NewTopic,
        OffsetSpec,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})

    def wait(futures: dict[Any, Any]) -> None:
        for future in futures.values():
            try:
                future.result(TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - recorded either way; an unsupported call is fine
                print(f"  admin: {exc}")

    wait(admin.create_topics([NewTopic("corpus-admin-a", 2, 1, config={"retention.ms": "3600000"}),
                              NewTopic("corpus-admin-b", 1, 1)]))
    topic = ConfigResource(ConfigResource.Type.TOPIC, "corpus-admin-a")
    wait(admin.describe_configs([topic, ConfigResource(ConfigResource.Type.BROKER, "0")]))
    wait(admin.incremental_alter_configs([ConfigResource(
        ConfigResource.Type.TOPIC, "corpus-admin-a", incremental_configs=[
            ConfigEntry("cleanup.policy", "compact",
                        incremental_operation=AlterConfigOpType.SET)])]))
    wait(admin.alter_configs([ConfigResource(ConfigResource.Type.TOPIC, "corpus-admin-b",
                                             set_config={"segment.ms": "600000"})]))
    wait(admin.create_partitions([NewPartitions("corpus-admin-a", 4)]))
    admin.list_topics(timeout=TIMEOUT)
    wait(admin.list_offsets({TopicPartition("corpus-none", 0): OffsetSpec.latest(),
                             TopicPartition("corpus-none", 1): OffsetSpec.earliest()}))
    admin.list_consumer_groups().result(TIMEOUT)
    wait(admin.describe_consumer_groups(["corpus-group"]))
    wait(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("corpus-group")]))
    wait(admin.delete_records([TopicPartition("corpus-admin-b", 0, 0)]))
    admin.describe_cluster().result(TIMEOUT)
    wait(admin.delete_topics(["corpus-admin-a", "corpus-admin-b"]))


def kafka_python(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=5)
    for key, value in _messages(30, "kp"):
        producer.send("corpus-kp", value=value, key=key, headers=[("h", b"1")])
    producer.flush(TIMEOUT)
    producer.close()
    consumer = KafkaConsumer("corpus-kp", bootstrap_servers=bootstrap, group_id="corpus-kp-group",
                             auto_offset_reset="earliest", consumer_timeout_ms=4000,
                             enable_auto_commit=False)
    for _ in consumer:
        pass
    consumer.commit()
    consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("corpus-kp-admin", 1, 1)])
    for call in (lambda: admin.describe_topics(["corpus-kp"]), admin.list_groups,
                 lambda: admin.describe_groups(["corpus-kp-group"]),
                 lambda: admin.list_group_offsets("corpus-kp-group"),
                 lambda: admin.delete_topics(["corpus-kp-admin"])):
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - recorded either way
            print(f"  kafka-python admin: {exc}")
    admin.close()


def kcat(bootstrap: str) -> None:
    if shutil.which("kcat") is None:
        print("  kcat not installed; skipped")
        return

    def run(*args: str, data: str | None = None) -> None:
        subprocess.run(["kcat", "-b", bootstrap, *args], input=data, text=True,
                       capture_output=True, timeout=TIMEOUT, check=False)

    run("-L")
    lines = "".join(f"k{i}:kcat-value-{i}\n" for i in range(30))
    run("-P", "-t", "corpus-kcat", "-K", ":", "-z", "snappy", data=lines)
    run("-C", "-t", "corpus-kcat", "-o", "beginning", "-e", "-q")
    run("-G", "corpus-kcat-group", "-o", "beginning", "-e", "-q", "corpus-kcat")


SCENARIOS: dict[str, Callable[[str], None]] = {
    **{f"confluent-producer-{codec}": (lambda b, c=codec: confluent_producer(b, c))  # type: ignore[misc]
       for codec in CODECS},
    "confluent-idempotent": confluent_idempotent,
    "confluent-group": confluent_group,
    "confluent-admin": confluent_admin,
    "kafka-python": kafka_python,
    "kcat": kcat,
}


# --- thinning and writing --------------------------------------------------------------------


def thin(frames: list[bytes], per_api: int, max_frame: int) -> list[bytes]:
    """Drop repeats (equal but for the correlation id), frames above `max_frame` bytes,
    and keep at most `per_api` frames of each (API, version)."""
    kept: list[bytes] = []
    seen: set[bytes] = set()
    per: dict[tuple[int, int], int] = {}
    for frame in frames:
        if len(frame) > max_frame or len(frame) < 12:
            continue
        key = frame_key(frame)
        api = struct.unpack_from(">hh", frame, 4)
        if key in seen or per.get(api, 0) >= per_api:
            continue
        seen.add(key)
        per[api] = per.get(api, 0) + 1
        kept.append(frame)
    return kept


def _client_versions() -> dict[str, str]:
    import confluent_kafka
    import kafka

    versions = {"confluent-kafka": confluent_kafka.__version__,
                "librdkafka": confluent_kafka.libversion()[0], "kafka-python": kafka.__version__}
    if shutil.which("kcat"):
        out = subprocess.run(["kcat", "-V"], capture_output=True, text=True, check=False).stdout
        versions["kcat"] = next((ln.split()[1] for ln in out.splitlines()
                                 if ln.startswith("Version")), "unknown")
    return versions


def record(out: Path, per_api: int, max_frame: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="strom-corpus-"))
    proxy_port = free_port()
    broker = BrokerProcess(work / "data", overrides={
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}"})
    broker.start()
    proxy = RecordingProxy(broker.port, proxy_port).start()
    bootstrap = f"127.0.0.1:{proxy_port}"
    try:
        with RawClient(broker.bootstrap) as raw:
            for topic, partitions in TOPICS.items():
                assert create_topic(raw, topic, partitions).error_code == 0, topic
        for name, scenario in SCENARIOS.items():
            print(f"recording {name}")
            proxy.scenario = name
            scenario(bootstrap)
        time.sleep(0.5)
    finally:
        proxy.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return write_corpus(out, proxy.streams, per_api, max_frame)


def write_corpus(out: Path, streams: list[tuple[str, bytearray]], per_api: int,
                 max_frame: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.bin"):
        old.unlink()
    manifest: dict[str, Any] = {"topics": TOPICS, "clients": _client_versions(),
                                "recorded": time.strftime("%Y-%m-%d"), "scenarios": {}}
    for name in SCENARIOS:
        frames = [f for scenario, data in streams if scenario == name
                  for f in split_frames(bytes(data))]
        kept = thin(frames, per_api, max_frame)
        if not kept:
            continue
        (out / f"{name}.bin").write_bytes(b"".join(kept))
        apis = sorted({"{}v{}".format(*struct.unpack_from(">hh", f, 4)) for f in kept})
        manifest["scenarios"][name] = {"frames": len(kept), "recorded": len(frames),
                                       "bytes": sum(map(len, kept)), "apis": apis}
        print(f"  {name}: {len(kept)} of {len(frames)} frames, {sum(map(len, kept))} bytes")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=CORPUS_DIR)
    parser.add_argument("--per-api", type=int, default=6)
    parser.add_argument("--max-frame", type=int, default=32 * 1024)
    args = parser.parse_args()
    manifest = record(args.out, args.per_api, args.max_frame)
    total = sum(s["bytes"] for s in manifest["scenarios"].values())
    print(f"wrote {len(manifest['scenarios'])} scenarios, {total} bytes to {args.out}")


if __name__ == "__main__":
    main()

"""The four real clients behind one small interface, for integration tests.

`produce(client, ...)` and `consume(client, ...)` drive confluent-kafka, kafka-python,
aiokafka or kcat over TCP against a running broker and return plain values (`Ack`, `Rec`)
so a test can compare what each client saw. Every client gets short timeouts: a broken
broker must fail a test quickly rather than hang it.

Consumers use manual assignment (no consumer group) and read each partition from a
start offset until a given end offset, so a test can assert exactly what was read.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from strom.protocol.records import BatchHeader, Codec, scan_batches

CLIENTS = ("confluent", "kafka-python", "aiokafka", "kcat")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CODEC_IDS = {"none": Codec.NONE, "gzip": Codec.GZIP, "snappy": Codec.SNAPPY, "lz4": Codec.LZ4,
             "zstd": Codec.ZSTD}
BEGINNING = -2
KCAT = "kcat"
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Msg:
    """A record to produce; `timestamp` None lets the client stamp it (CreateTime)."""

    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None


@dataclass(frozen=True)
class Ack:
    """The broker's answer for one produced record, when the client reports it."""

    partition: int
    offset: int
    timestamp: int | None = None
    log_append_time: bool | None = None


@dataclass(frozen=True)
class Rec:
    """One consumed record, normalised across clients."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int
    log_append_time: bool


class ProduceFailed(Exception):
    """Some records were not acknowledged; `errors` are Kafka error names in upper case."""

    def __init__(self, errors: Sequence[str], detail: str = "") -> None:
        super().__init__(f"produce failed: {sorted(set(errors))} {detail}".strip())
        self.errors = list(errors)


def unique_topic(prefix: str = "t") -> str:
    clean = re.sub(r"[^a-zA-Z0-9._-]", "-", prefix)[:150]
    return f"{clean}-{uuid.uuid4().hex[:8]}"


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"ERROR_{code}"


# --- admin -------------------------------------------------------------------------------


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(
    bootstrap: str, name: str, partitions: int = 1, config: Mapping[str, str] | None = None
) -> str:
    """Create a topic through the Kafka protocol and wait until metadata shows it."""
    client = admin(bootstrap)  # must outlive the futures
    futures = client.create_topics(
        [NewTopic(name, partitions, 1, config=dict(config or {}))],
        operation_timeout=10, request_timeout=15,
    )
    futures[name].result(timeout=TIMEOUT_S)
    deadline = time.monotonic() + TIMEOUT_S
    with confluent_consumer(bootstrap) as consumer:
        while time.monotonic() < deadline:
            topics = consumer.list_topics(name, timeout=5).topics
            if name in topics and topics[name].error is None and len(
                topics[name].partitions
            ) == partitions:
                return name
            time.sleep(0.1)
    raise TimeoutError(f"topic {name} did not appear in metadata")


class _ClosingConsumer:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.consumer = Consumer(conf)

    def __enter__(self) -> Consumer:
        return self.consumer

    def __exit__(self, *exc: object) -> None:
        self.consumer.close()


def confluent_consumer(bootstrap: str, **extra: Any) -> _ClosingConsumer:
    conf = {
        "bootstrap.servers": bootstrap,
        # librdkafka insists on a group id; we only ever assign, never subscribe or commit.
        "group.id": f"strom-test-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 10000,
        "session.timeout.ms": 10000,
        "fetch.wait.max.ms": 100,
        **extra,
    }
    return _ClosingConsumer(conf)


def watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    """(log start offset, high watermark) as ListOffsets reports them."""
    with confluent_consumer(bootstrap) as consumer:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10, cached=False
        )
    return int(low), int(high)


def end_offsets(bootstrap: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    return {p: watermarks(bootstrap, topic, p)[1] for p in partitions}


def offset_for_time(bootstrap: str, topic: str, partition: int, timestamp: int) -> int:
    """ListOffsets by timestamp; -1 when no record is stamped at or after it."""
    with confluent_consumer(bootstrap) as consumer:
        [tp] = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp)],
                                          timeout=10)
    if tp.error is not None:
        raise RuntimeError(f"offsets_for_times failed: {tp.error}")
    return int(tp.offset)


def partition_dir(data_dir: Path, topic: str, partition: int = 0) -> Path:
    return data_dir / f"{topic}-{partition}"


def segment_files(data_dir: Path, topic: str, partition: int = 0) -> list[str]:
    """Names of the `.log` segment files of one partition, oldest first."""
    d = partition_dir(data_dir, topic, partition)
    return sorted(p.name for p in d.glob("*.log")) if d.exists() else []


def batches_on_disk(data_dir: Path, topic: str, partition: int = 0) -> list[BatchHeader]:
    """The record batch headers in a partition's segment files, oldest first."""
    d = partition_dir(data_dir, topic, partition)
    headers: list[BatchHeader] = []
    for name in segment_files(data_dir, topic, partition):
        headers += [h for _, h in scan_batches((d / name).read_bytes())]
    return headers


# --- producing ---------------------------------------------------------------------------


def produce(
    client: str,
    bootstrap: str,
    topic: str,
    msgs: Sequence[Msg],
    codec: str = "none",
    *,
    idempotent: bool = False,
    linger_ms: int = 5,
    timeout: float = TIMEOUT_S,
    librdkafka: Mapping[str, Any] | None = None,
) -> list[Ack | None]:
    """Produce `msgs` in order with one client; acks in input order (None: not reported).

    `librdkafka` adds properties for confluent and kcat. Raises ProduceFailed if any
    record was not acknowledged.
    """
    fn = {
        "confluent": _produce_confluent,
        "kafka-python": _produce_kafka_python,
        "aiokafka": _produce_aiokafka,
        "kcat": _produce_kcat,
    }[client]
    if librdkafka and client not in ("confluent", "kcat"):
        raise ValueError(f"{client} takes no librdkafka properties")
    extra = dict(librdkafka or {})
    return fn(bootstrap, topic, msgs, codec, idempotent, linger_ms, timeout, extra)  # type: ignore[no-any-return]


def confluent_producer_conf(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": 10000,
        "message.timeout.ms": 20000,
        "request.timeout.ms": 10000,
        **extra,
    }


def produce_round_robin(bootstrap: str, topic: str, count: int, partitions: int, *,
                        value_prefix: bytes = b"r-", linger_ms: int | None = None) -> None:
    """`count` records without keys over partitions 0..partitions-1 in turn (values
    `value_prefix` + index), flushed: the seed data of group and offset tests."""
    extra = {} if linger_ms is None else {"linger.ms": linger_ms}
    producer = Producer(confluent_producer_conf(bootstrap, **extra))
    for i in range(count):
        producer.produce(topic, value_prefix + b"%d" % i, partition=i % partitions)
    assert producer.flush(30) == 0


def _produce_confluent(
    bootstrap: str, topic: str, msgs: Sequence[Msg], codec: str, idempotent: bool,
    linger_ms: int, timeout: float, extra: dict[str, Any],
) -> list[Ack | None]:
    producer = Producer(confluent_producer_conf(
        bootstrap,
        **{"compression.type": codec, "enable.idempotence": idempotent,
           "linger.ms": linger_ms, "acks": "all", **extra},
    ))
    acks: list[Ack | None] = [None] * len(msgs)
    errors: list[str] = []

    def report(i: int) -> Any:
        def on_delivery(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                errors.append(error_name(err.code()) if err.code() >= 0 else err.name())
                return
            ts_type, ts = msg.timestamp()
            acks[i] = Ack(msg.partition(), msg.offset(), ts, ts_type == 2)
        return on_delivery

    for i, m in enumerate(msgs):
        while True:
            try:
                producer.produce(
                    topic, value=m.value, key=m.key, partition=m.partition,
                    headers=list(m.headers) or None, timestamp=m.timestamp or 0,
                    on_delivery=report(i),
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining or errors:
        raise ProduceFailed(errors or ["TIMEOUT"], f"{remaining} undelivered")
    return acks


def _kafka_python_codec(codec: str) -> str | None:
    return None if codec == "none" else codec


def _produce_kafka_python(
    bootstrap: str, topic: str, msgs: Sequence[Msg], codec: str, idempotent: bool,
    linger_ms: int, timeout: float, extra: dict[str, Any],
) -> list[Ack | None]:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as PyKafkaError

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type=_kafka_python_codec(codec),
        linger_ms=linger_ms, enable_idempotence=idempotent, request_timeout_ms=10000,
        max_block_ms=10000, retries=5 if not idempotent else 2**31 - 1,
        delivery_timeout_ms=int(timeout * 1000),
    )
    try:
        futures = [
            producer.send(topic, value=m.value, key=m.key, partition=m.partition,
                          headers=list(m.headers), timestamp_ms=m.timestamp)
            for m in msgs
        ]
        producer.flush(timeout)
        acks: list[Ack | None] = []
        errors: list[str] = []
        for f in futures:
            try:
                md = f.get(timeout=timeout)
            except PyKafkaError as exc:
                errno = getattr(exc, "errno", None)
                errors.append(error_name(errno) if errno is not None else type(exc).__name__)
                acks.append(None)
                continue
            acks.append(Ack(md.partition, md.offset, md.timestamp, None))
        if errors:
            raise ProduceFailed(errors)
        return acks
    finally:
        producer.close(timeout=5)


def _produce_aiokafka(
    bootstrap: str, topic: str, msgs: Sequence[Msg], codec: str, idempotent: bool,
    linger_ms: int, timeout: float, extra: dict[str, Any],
) -> list[Ack | None]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError as AioKafkaError

    async def run() -> list[Ack | None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all",
            compression_type=_kafka_python_codec(codec), linger_ms=linger_ms,
            enable_idempotence=idempotent, request_timeout_ms=10000,
        )
        await producer.start()
        try:
            futures = []
            for m in msgs:
                futures.append(await producer.send(
                    topic, value=m.value, key=m.key, partition=m.partition,
                    headers=list(m.headers), timestamp_ms=m.timestamp,
                ))
            acks: list[Ack | None] = []
            errors: list[str] = []
            done = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), timeout
            )
            for md in done:
                if isinstance(md, AioKafkaError):
                    errno = getattr(md, "errno", None)
                    errors.append(error_name(errno) if errno is not None else type(md).__name__)
                    acks.append(None)
                elif isinstance(md, BaseException):
                    raise md
                else:
                    acks.append(Ack(md.partition, md.offset, md.timestamp,
                                    md.timestamp_type == 1))
            if errors:
                raise ProduceFailed(errors)
            return acks
        finally:
            await producer.stop()

    return asyncio.run(run())


_KCAT_ERROR = re.compile(r"Broker: ([A-Za-z ]+)")


def _produce_kcat(
    bootstrap: str, topic: str, msgs: Sequence[Msg], codec: str, idempotent: bool,
    linger_ms: int, timeout: float, extra: dict[str, Any],
) -> list[Ack | None]:
    """kcat sends newline-delimited records from stdin; headers apply to a whole run, so
    consecutive records with the same partition and headers go in one invocation.
    Keys and values must be text without newlines or tabs; empty means null (-Z)."""
    for partition, headers, group in _kcat_runs(msgs):
        cmd = [KCAT, "-b", bootstrap, "-P", "-t", topic, "-p", str(partition), "-K", "\t",
               "-Z", "-z", codec, "-X", f"linger.ms={linger_ms}",
               "-X", f"enable.idempotence={str(idempotent).lower()}", "-X", "acks=all",
               "-X", "message.timeout.ms=20000", "-X", "socket.timeout.ms=10000"]
        for prop, setting in extra.items():
            cmd += ["-X", f"{prop}={setting}"]
        for name, value in headers:
            if value is None:
                raise ValueError("kcat cannot send null header values")
            cmd += ["-H", f"{name}={value.decode()}"]
        data = b"".join((m.key or b"") + b"\t" + (m.value or b"") + b"\n" for m in group)
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout + 10)
        stderr = proc.stderr.decode(errors="replace")
        failures = _KCAT_ERROR.findall(stderr) if "Delivery failed" in stderr else []
        if proc.returncode != 0 or failures:
            names = [_kcat_error_name(f) for f in failures] or [f"EXIT_{proc.returncode}"]
            raise ProduceFailed(names, stderr[-2000:])
    return [None] * len(msgs)


def _kcat_runs(msgs: Sequence[Msg]) -> list[tuple[int, tuple[tuple[str, bytes | None], ...], list[Msg]]]:
    """Consecutive records with the same partition and headers, one kcat run each;
    ValueError for a record kcat cannot send."""
    runs: list[tuple[int, tuple[tuple[str, bytes | None], ...], list[Msg]]] = []
    for m in msgs:
        for part in (m.key, m.value):
            if part is not None and (part == b"" or b"\n" in part or b"\t" in part):
                raise ValueError(f"kcat cannot send {part!r}")
        if m.timestamp is not None:
            raise ValueError("kcat cannot set per-record timestamps")
        if runs and runs[-1][0] == m.partition and runs[-1][1] == m.headers:
            runs[-1][2].append(m)
        else:
            runs.append((m.partition, m.headers, [m]))
    return runs


def _kcat_error_name(text: str) -> str:
    """librdkafka's broker error strings ("Message size too large") to Kafka names."""
    known = {"Message size too large": "MESSAGE_TOO_LARGE"}
    return known.get(text.strip(), text.strip().upper().replace(" ", "_"))


# --- consuming ---------------------------------------------------------------------------


def consume(
    client: str,
    bootstrap: str,
    topic: str,
    start: Mapping[int, int],
    end: Mapping[int, int],
    *,
    timeout: float = TIMEOUT_S,
) -> list[Rec]:
    """Read each partition from `start[p]` (an offset or BEGINNING) until offset `end[p]`.

    An offset out of range resets to the earliest (auto.offset.reset=earliest).
    Returns records in the order the client delivered them. Raises TimeoutError, naming
    what was read, if the end is not reached by the deadline.
    """
    fn = CONSUMERS[client]
    todo = {}
    for p, e in end.items():
        first = watermark_low(bootstrap, topic, p) if start[p] == BEGINNING else start[p]
        if e > first:
            todo[p] = e
    records: list[Rec] = fn(bootstrap, topic, start, todo, timeout)
    return records


class _Progress:
    """Tracks the next offset per partition against the requested ends."""

    def __init__(self, end: Mapping[int, int]) -> None:
        self.end = dict(end)
        self.next: dict[int, int] = {}
        self.records: list[Rec] = []

    def add(self, rec: Rec) -> None:
        if rec.offset >= self.end.get(rec.partition, -1):
            return  # past the requested end (or a partition not asked for)
        self.records.append(rec)
        self.next[rec.partition] = rec.offset + 1

    def done(self) -> bool:
        return all(self.next.get(p, -1) >= e for p, e in self.end.items())

    def timeout(self, client: str) -> TimeoutError:
        counts: dict[int, int] = defaultdict(int)
        for r in self.records:
            counts[r.partition] += 1
        return TimeoutError(
            f"{client}: end {self.end} not reached; next offsets {self.next}, "
            f"records per partition {dict(counts)}"
        )


def _headers(raw: Any) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((str(k), None if v is None else bytes(v)) for k, v in (raw or ()))


def _consume_confluent(
    bootstrap: str, topic: str, start: Mapping[int, int], end: Mapping[int, int],
    timeout: float,
) -> list[Rec]:
    progress = _Progress(end)
    if not end:
        return []
    with confluent_consumer(bootstrap) as consumer:
        consumer.assign([TopicPartition(topic, p, start[p]) for p in end])
        deadline = time.monotonic() + timeout
        while not progress.done():
            if time.monotonic() > deadline:
                raise progress.timeout("confluent")
            for m in consumer.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    raise RuntimeError(f"confluent consumer error: {m.error()}")
                ts_type, ts = m.timestamp()
                progress.add(Rec(m.partition(), m.offset(), m.key(), m.value(),
                                 _headers(m.headers()), ts, ts_type == 2))
    return progress.records


def _consume_kafka_python(
    bootstrap: str, topic: str, start: Mapping[int, int], end: Mapping[int, int],
    timeout: float,
) -> list[Rec]:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    progress = _Progress(end)
    if not end:
        return []
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", request_timeout_ms=15000, fetch_max_wait_ms=100,
    )
    try:
        tps = [KTP(topic, p) for p in end]
        consumer.assign(tps)
        for tp in tps:
            if start[tp.partition] == BEGINNING:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start[tp.partition])
        deadline = time.monotonic() + timeout
        while not progress.done():
            if time.monotonic() > deadline:
                raise progress.timeout("kafka-python")
            batches = consumer.poll(timeout_ms=500, max_records=10000)
            for tp in sorted(batches, key=lambda t: t.partition):
                for m in batches[tp]:
                    progress.add(Rec(m.partition, m.offset, m.key, m.value,
                                     _headers(m.headers), m.timestamp, m.timestamp_type == 1))
        return progress.records
    finally:
        consumer.close(autocommit=False)


def _consume_aiokafka(
    bootstrap: str, topic: str, start: Mapping[int, int], end: Mapping[int, int],
    timeout: float,
) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as ATP

    progress = _Progress(end)
    if not end:
        return []

    async def run() -> list[Rec]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", request_timeout_ms=15000, fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            tps = [ATP(topic, p) for p in end]
            consumer.assign(tps)
            for tp in tps:
                if start[tp.partition] == BEGINNING:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, start[tp.partition])
            deadline = time.monotonic() + timeout
            while not progress.done():
                if time.monotonic() > deadline:
                    raise progress.timeout("aiokafka")
                batches = await consumer.getmany(timeout_ms=500, max_records=10000)
                for tp in sorted(batches, key=lambda t: t.partition):
                    for m in batches[tp]:
                        progress.add(Rec(m.partition, m.offset, m.key, m.value,
                                         _headers(m.headers), m.timestamp,
                                         m.timestamp_type == 1))
            return progress.records
        finally:
            await consumer.stop()

    return asyncio.run(run())


def kcat_offset(offset: int) -> str:
    return "beginning" if offset == BEGINNING else str(offset)


def kcat_consume(bootstrap: str, topic: str, partition: int, offset: str, count: int,
                 timeout: float = TIMEOUT_S) -> list[Rec]:
    """Run `kcat -C` on one partition from `offset` (a kcat -o spec) for `count` records."""
    cmd = [KCAT, "-b", bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", offset,
           "-c", str(count), "-J", "-X", "socket.timeout.ms=10000",
           "-X", "auto.offset.reset=earliest",
           "-X", "fetch.wait.max.ms=100"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        got = (exc.stdout or b"").count(b"\n")
        raise TimeoutError(f"kcat read {got} of {count} records from {topic}-{partition} "
                           f"at {offset}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"kcat failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return [_kcat_record(line) for line in proc.stdout.splitlines() if line.strip()]


def _kcat_record(line: bytes) -> Rec:
    d = json.loads(line)
    raw_headers = d.get("headers") or []
    headers = tuple(
        (raw_headers[i], None if raw_headers[i + 1] is None else raw_headers[i + 1].encode())
        for i in range(0, len(raw_headers), 2)
    )

    def enc(v: str | None) -> bytes | None:
        return None if v is None else v.encode()

    return Rec(d["partition"], d["offset"], enc(d.get("key")), enc(d.get("payload")),
               headers, d["ts"], d["tstype"] == "logappend")


def _consume_kcat(
    bootstrap: str, topic: str, start: Mapping[int, int], end: Mapping[int, int],
    timeout: float,
) -> list[Rec]:
    records: list[Rec] = []
    for p, e in sorted(end.items()):
        low = watermark_low(bootstrap, topic, p)
        first = low if start[p] == BEGINNING else start[p]
        # below the log start, the consumer resets to it (auto.offset.reset=earliest)
        records += kcat_consume(bootstrap, topic, p, str(first), e - max(first, low), timeout)
    return records


CONSUMERS = {  # the raw readers behind `consume`: no skipping of empty ranges
    "confluent": _consume_confluent,
    "kafka-python": _consume_kafka_python,
    "aiokafka": _consume_aiokafka,
    "kcat": _consume_kcat,
}


def watermark_low(bootstrap: str, topic: str, partition: int) -> int:
    return watermarks(bootstrap, topic, partition)[0]


# --- checks ------------------------------------------------------------------------------


def by_partition(records: Iterable[Rec]) -> dict[int, list[Rec]]:
    out: dict[int, list[Rec]] = defaultdict(list)
    for r in records:
        out[r.partition].append(r)
    return dict(out)


def sequenced_msgs(total: int, partitions: int, pad: int = 40) -> list[Msg]:
    """`total` records spread round-robin over partitions; each value carries its
    partition and its sequence number within that partition (`p:seq:`)."""
    seqs = [0] * partitions
    out = []
    filler = b"x" * pad
    for i in range(total):
        p = i % partitions
        out.append(Msg(p, b"k%d" % i, b"%d:%d:" % (p, seqs[p]) + filler))
        seqs[p] += 1
    return out


def assert_sequenced(records: Sequence[Rec], total: int, partitions: int) -> None:
    """Per partition: values carry sequence 0..n-1 in order, and offsets are 0..n-1."""
    parts = by_partition(records)
    assert sorted(parts) == list(range(partitions)), f"partitions seen: {sorted(parts)}"
    seen = 0
    for p, recs in sorted(parts.items()):
        expected = total // partitions + (1 if p < total % partitions else 0)
        offsets = [r.offset for r in recs]
        assert offsets == list(range(expected)), (
            f"partition {p}: {len(offsets)} records, offsets not 0..{expected - 1}: "
            f"{_first_break(offsets)}"
        )
        seqs = []
        for r in recs:
            assert r.value is not None
            vp, vs, _ = r.value.split(b":", 2)
            assert int(vp) == p, f"record for partition {int(vp)} found in {p}"
            seqs.append(int(vs))
        assert seqs == list(range(expected)), (
            f"partition {p}: sequence not 0..{expected - 1}: {_first_break(seqs)}"
        )
        seen += len(recs)
    assert seen == total


def _first_break(values: Sequence[int]) -> str:
    for i, v in enumerate(values):
        if v != i:
            return f"first difference at index {i}: {values[max(i - 2, 0):i + 3]}"
    return f"length {len(values)}"

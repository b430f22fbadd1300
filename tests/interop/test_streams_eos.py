"""Apache Kafka Streams 4.4, unchanged, with processing.guarantee=exactly_once_v2 on Strom.

`java/StromStreamsEos.java` (word count through a repartition topic and a changelog
topic, a windowed count, a stream-table join; record caches off, so every input word is
exactly one update of each output) runs as two instances of one application. Lines are
produced while they run; one instance is SIGKILLed mid-run, frozen first until a
transaction of it holds output records (support.open_transactions; its open transaction is
left for the broker to abort, its tasks move to the other instance) and later restarted
on the same state directory (exactly-once wipes it and restores from the changelog).
Read with read_committed at the end, each word's count updates are exactly 1, 2, ..., n,
each window's likewise, and the join output holds each word occurrence once: a lost or
duplicated record under the kill would show as a gap, a repeat or a wrong final count.
"""

from __future__ import annotations

import random
import struct
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from support.broker_process import BrokerProcess, stop_process, wait_until
from support.clients import create_topic
from support.interop import kafka_dist
from support.open_transactions import kill_mid_transaction

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(900)]

APP = "strom-eos-wordcount"
PARTITIONS = 3
LINES = 1500
WORDS_PER_LINE = 5
VOCABULARY = [f"w{i:02d}" for i in range(20)]
BASE_TS = 1_700_000_000_000
LINE_GAP_MS = 37  # record time advances ~55 s over the run: six 10 s windows
SEED = 4242
OUTPUTS = ("word-counts", "windowed-counts", "word-joined")


class StreamsInstance:
    """One JVM running the application; remembers the states it printed."""

    def __init__(self, name: str, bootstrap: str, state_dir: Path, classes: Path,
                 lib: Path, log: Path) -> None:
        self.name = name
        self.states: list[str] = []
        cmd = ["java", *kafka_dist.TOOL_JVM_OPTS,
               f"-Dlog4j2.configurationFile={lib.parent / 'tools-log4j2.properties'}",
               "-cp", f"{classes}:{lib / '*'}", "StromStreamsEos", bootstrap, APP,
               str(state_dir)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "ab"),  # noqa: SIM115
                                     text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("STATE "):
                self.states.append(line.split()[1])

    def running(self) -> bool:
        return bool(self.states) and self.states[-1] == "RUNNING"

    def stop(self) -> int:
        return stop_process(self.proc, grace_s=90)


def kind_of(word: str) -> str:
    return "even" if int(word[1:]) % 2 == 0 else "odd"


def input_lines() -> list[tuple[str, str, int]]:
    """(key, line, timestamp) of every input line, fixed by SEED."""
    rng = random.Random(SEED)
    return [(f"L{i}", " ".join(rng.choice(VOCABULARY) for _ in range(WORDS_PER_LINE)),
             BASE_TS + i * LINE_GAP_MS) for i in range(LINES)]


def expected_outputs(lines: list[tuple[str, str, int]]) -> dict[str, Counter[str]]:
    """Final counts per word and per word@window, and the join's multiset."""
    counts: Counter[str] = Counter()
    windows: Counter[str] = Counter()
    joined: Counter[str] = Counter()
    for _, line, ts in lines:
        for word in line.split():
            counts[word] += 1
            windows[f"{word}@{ts // 10_000 * 10_000}"] += 1
            joined[f"{word}:{kind_of(word)}"] += 1
    return {"word-counts": counts, "windowed-counts": windows, "word-joined": joined}


def produce_lines(bootstrap: str, lines: list[tuple[str, str, int]],
                  progress: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    for start in range(0, len(lines), 10):
        for key, line, ts in lines[start:start + 10]:
            producer.produce("words-in", line.encode(), key.encode(), timestamp=ts)
        assert producer.flush(60) == 0
        progress[0] = start + 10
        time.sleep(0.08)  # a steady stream: the instances' transactions are open most of the time


def read_outputs(bootstrap: str, isolation: str = "read_committed"
                 ) -> dict[str, list[tuple[str, str]]]:
    """Every (key, value) of each output topic a consumer at `isolation` reads, in
    partition order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-check",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "enable.partition.eof": True})
    tps = [TopicPartition(t, p, 0) for t in OUTPUTS for p in range(PARTITIONS)]
    consumer.assign(tps)
    out: dict[str, list[tuple[str, str]]] = {t: [] for t in OUTPUTS}
    at_end: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 120
    try:
        while len(at_end) < len(tps) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            where = (str(message.topic()), int(message.partition() or 0))
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(where)
                continue
            at_end.discard(where)
            key = (message.key() or b"").decode()
            raw = message.value() or b""
            value = str(struct.unpack(">q", raw)[0]) if where[0] != "word-joined" else raw.decode()
            out[where[0]].append((key, value))
    finally:
        consumer.close()
    return out


def verdict(out: dict[str, list[tuple[str, str]]], expected: dict[str, Counter[str]]
            ) -> dict[str, tuple[int, int]]:
    """(duplicates, losses) per output: for the counts, updates beyond 1..n are
    duplicates and missing ones losses; for the join, the multiset difference."""
    result: dict[str, tuple[int, int]] = {}
    for topic in ("word-counts", "windowed-counts"):
        updates: dict[str, list[int]] = defaultdict(list)
        for key, value in out[topic]:
            updates[key].append(int(value))
        dups = losses = 0
        for key in set(updates) | set(expected[topic]):
            seen, want = updates.get(key, []), list(range(1, expected[topic][key] + 1))
            dups += len(seen) - len(set(seen)) + sum(1 for v in set(seen) if v > len(want))
            losses += sum(1 for v in want if v not in set(seen))
        result[topic] = (dups, losses)
    got = Counter(value for _, value in out["word-joined"])
    joined = expected["word-joined"]
    result["word-joined"] = (sum((got - joined).values()), sum((joined - got).values()))
    return result


def test_streams_exactly_once_v2_survives_a_killed_instance(
        eos_broker: BrokerProcess, interop_classes: Path, kafka_lib: Path,
        tmp_path: Path) -> None:
    bootstrap = eos_broker.bootstrap
    for topic in ("words-in", "word-kinds", *OUTPUTS):
        create_topic(bootstrap, topic, PARTITIONS)
    # murmur2 as Java's partitioner: the table co-partitioned with the repartitioned words
    kinds = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for word in VOCABULARY:
        kinds.produce("word-kinds", kind_of(word).encode(), word.encode(),
                      timestamp=BASE_TS - 3_600_000)
    assert kinds.flush(30) == 0
    lines = input_lines()
    expected = expected_outputs(lines)

    def start(name: str) -> StreamsInstance:
        return StreamsInstance(name, bootstrap, tmp_path / f"state-{name}", interop_classes,
                               kafka_lib, tmp_path / f"{name}.log")

    a, b = start("a"), start("b")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wait_until(lambda: a.running() and b.running(), 180, "both instances RUNNING",
               detail=lambda: f"a {a.states}, b {b.states}")
    started = time.monotonic()
    progress = [0]
    producer = threading.Thread(target=produce_lines, args=(bootstrap, lines, progress),
                                daemon=True)
    producer.start()
    wait_until(lambda: progress[0] >= LINES // 3, 120, "a third of the input produced")
    # mid-run, while a transaction holds output records, tasks assigned
    kill_mid_transaction(a.proc, admin, [TopicPartition(t, p) for t in OUTPUTS
                                          for p in range(PARTITIONS)])
    wait_until(lambda: progress[0] >= 2 * LINES // 3, 120, "two thirds of the input produced")
    a = start("a2")
    producer.join(300)
    seen: list[dict[str, tuple[int, int]]] = []

    def exact() -> bool:
        seen.append(verdict(read_outputs(bootstrap), expected))
        return all(v == (0, 0) for v in seen[-1].values())

    try:
        wait_until(exact, 300, "the outputs are exact", interval=3.0,
                   detail=lambda: f"(duplicates, losses) {seen[-1] if seen else None}")
    finally:
        codes = {"a2": a.stop(), "b": b.stop()}
    logged = sum(len(v) for v in read_outputs(bootstrap, "read_uncommitted").values())
    print(f"\nStreams EOS: {LINES} lines ({LINES * WORDS_PER_LINE} words) in; outputs "
          f"{ {t: sum(expected[t].values()) for t in OUTPUTS} } exact (duplicates, losses "
          f"{seen[-1]}); {logged - 3 * LINES * WORDS_PER_LINE} aborted output records in the "
          f"logs; 1 SIGKILL + restart; {time.monotonic() - started:.1f} s; "
          f"exit codes {codes}")
    assert logged > 3 * LINES * WORDS_PER_LINE  # the kill left an open transaction, aborted

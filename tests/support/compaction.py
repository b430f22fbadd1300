"""Compaction as clients see it: a seeded workload, a dict model, and the compacted view.

A `Workload` is a seeded sequence of writes to a few keys (values and tombstones),
produced with confluent-kafka; `CompactedLog` remembers the offset and content of every
acknowledged write and says what a fully compacted log must hold: for each key, only its
latest write, at the offset it was given, in offset order; tombstones too while
`delete.retention.ms` keeps them, none once it has passed.

The cleaner never touches the active segment, and the tests cannot see segment
boundaries. So `settle` writes *fillers* while it waits: records with keys never used
again, which roll the segments (with a small `segment.ms`) and make the log dirty again
(the cleaner takes a log when its dirty ratio reaches `min.cleanable.dirty.ratio`). They
are part of the model; unique keys make them survive cleaning unchanged. The wait is
a poll on what a consumer reads, never a timing assertion.

The same helpers serve Apache Kafka (the oracle) and Strom: only Kafka's config names.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from support.clients import confluent_consumer, create_topic

#: Broker settings that make the cleaner look often (Kafka's names and meaning).
CLEANER_BROKER = {"log.cleaner.backoff.ms": "200"}


def compact_topic_config(*, policy: str = "compact", delete_retention_ms: int = 86_400_000,
                         segment_ms: int = 100, **extra: str) -> dict[str, str]:
    """A topic that rolls segments every `segment_ms` (on the next append) and is cleaned
    as soon as anything is dirty."""
    return {"cleanup.policy": policy, "segment.ms": str(segment_ms),
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": str(delete_retention_ms), **extra}


Write = tuple[bytes, bytes | None]  # (key, value); value None is a tombstone
Read = tuple[int, bytes, bytes | None]  # (offset, key, value)


def workload(seed: int, count: int, keys: int = 40, tombstones: float = 0.2) -> list[Write]:
    """`count` writes to `keys` keys: random values of 50-400 bytes, some tombstones."""
    rng = random.Random(seed)
    out: list[Write] = []
    for i in range(count):
        key = f"k{rng.randrange(keys):03d}".encode()
        if rng.random() < tombstones:
            out.append((key, None))
        else:
            body = rng.randbytes(rng.randrange(25, 200)).hex()
            out.append((key, f"{seed}:{i}:{body}".encode()))
    return out


@dataclass
class CompactedLog:
    """Every acknowledged write of one partition, and what compaction must leave of them."""

    bootstrap: str
    topic: str
    writes: dict[int, Write] = field(default_factory=dict)  # offset -> write
    fillers: int = 0

    def create(self, config: Mapping[str, str]) -> CompactedLog:
        create_topic(self.bootstrap, self.topic, 1, dict(config))
        return self

    def produce(self, writes: Iterable[Write], **conf: Any) -> list[int]:
        """Produce in order (idempotent, acks=all) and remember each write's offset;
        raises if any write is not acknowledged."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                             "linger.ms": 5, **conf})
        offsets: list[int] = []
        errors: list[Any] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(err)
            else:
                self.writes[msg.offset()] = (msg.key(), msg.value())
                offsets.append(msg.offset())

        for key, value in writes:
            producer.produce(self.topic, value, key, partition=0, on_delivery=delivered)
            producer.poll(0)
        remaining = producer.flush(60)
        assert remaining == 0 and not errors, f"unacknowledged writes: {remaining}, {errors[:3]}"
        return offsets

    def add_fillers(self, count: int = 3) -> None:
        base = self.fillers
        self.fillers += count
        self.produce((f"filler-{base + i:05d}".encode(), b"f" * 300) for i in range(count))

    # -- what the model says ---------------------------------------------------------------

    def latest(self) -> dict[bytes, tuple[int, bytes | None]]:
        """key -> (offset, value) of its latest write."""
        out: dict[bytes, tuple[int, bytes | None]] = {}
        for offset in sorted(self.writes):
            key, value = self.writes[offset]
            out[key] = (offset, value)
        return out

    def expected(self, *, tombstones: bool) -> list[Read]:
        """The fully compacted log: each key's latest write in offset order; tombstones
        only while delete.retention.ms keeps them."""
        rows = [(offset, key, value) for key, (offset, value) in self.latest().items()
                if tombstones or value is not None]
        return sorted(rows)

    # -- what a consumer reads --------------------------------------------------------------

    def read_all(self, start: int = OFFSET_BEGINNING) -> list[Read]:
        """Every record from `start` to the high watermark, as a consumer gets them."""
        out: list[Read] = []
        with confluent_consumer(self.bootstrap) as consumer:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10,
                                                     cached=False)
            consumer.assign([TopicPartition(self.topic, 0, start)])
            deadline = time.monotonic() + 60
            while (not out or out[-1][0] < high - 1) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                out.append((msg.offset(), msg.key(), msg.value()))
        assert not out or out[-1][0] >= high - 1, f"read stopped at {out[-1][0]}, end {high}"
        return out

    def settle(self, *, tombstones: bool, timeout: float = 180.0) -> list[Read]:
        """Poll (writing fillers between reads) until a read from the start is exactly
        the compacted model; returns that read. TimeoutError shows the difference."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.read_all()
            want = self.expected(tombstones=tombstones)
            if got == want:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"not compacted within {timeout}s: {describe(got, want)}")
            self.add_fillers()
            time.sleep(0.3)


def describe(got: list[Read], want: list[Read]) -> str:
    """A short account of how a read differs from the model (for failure messages)."""
    extra = sorted(set(got) - set(want))
    missing = sorted(set(want) - set(got))
    return (f"{len(got)} read, {len(want)} expected; {len(extra)} unexpected, first "
            f"{_short(extra[:3])}; {len(missing)} missing, first {_short(missing[:3])}")


def _short(rows: list[Read]) -> list[tuple[int, bytes, bytes | None]]:
    return [(o, k, v[:20] if v is not None else None) for o, k, v in rows]


def check_offsets_and_gaps(log: CompactedLog, read: list[Read]) -> None:
    """Offsets strictly increase, and a consumer starting inside a gap left by cleaning
    gets the next surviving record."""
    offsets = [o for o, _, _ in read]
    surviving = set(offsets)
    assert offsets == sorted(surviving)
    gaps = [o for o in range(offsets[0], offsets[-1]) if o not in surviving]
    assert gaps, "cleaning left no gap to seek into"
    for gap in gaps[:: max(1, len(gaps) // 5)]:
        first = log.read_all(start=gap)[0][0]
        assert first == min(o for o in offsets if o > gap), (gap, first)

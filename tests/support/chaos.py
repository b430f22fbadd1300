"""A produce/consume workload run against a `Cluster` while brokers are killed and paused.

Shared by tests/cluster and bench/reliability.py, so the report documents exactly what
the tests check.

* `AckingProducer` — an idempotent `acks=all` confluent-kafka producer in a thread,
  writing unique values `v00000042` round robin over the partitions and recording each
  acknowledgement (partition, offset, value, when) and each failure.
* `TailingConsumer` — a consumer (manual assignment, from the beginning) running in a
  thread through the whole run, recording every (partition, offset, value) it saw.
* `FaultSchedule` — the faults of the issue, one after another: SIGKILL the leader of
  each partition (restarting it after), SIGSTOP another broker for longer than the
  ZooKeeper session timeout, SIGKILL the controller. Each fault is recorded with its
  timestamps and the time from the broker's death to the next acknowledged write on
  each partition it led.
* `read_all` and `verify` — read every partition back with a fresh consumer and
  compare: lost and duplicated acknowledged records, order, and records the tailing
  consumer saw that are not in the final log.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from support.cluster import CLIENT_LOG, Cluster, wait_until

# --- producing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Acked:
    partition: int
    offset: int
    value: str
    at: float  # time.monotonic() when the client reported the acknowledgement
    sent_at: float  # time.monotonic() when the record was handed to the client


class AckingProducer(threading.Thread):
    """Writes unique values continuously with acks=all and idempotence; records acks."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, *,
                 rate: float = 300.0, **conf: Any) -> None:
        super().__init__(name="acking-producer", daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.interval = 1.0 / rate
        self.acked: list[Acked] = []
        self.failed: list[tuple[str, str]] = []  # (value, error)
        self.fatal: list[str] = []
        self.sent = 0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 120_000,
            # librdkafka's default socket.timeout.ms (60 s) also bounds Metadata requests:
            # one sent to a paused (SIGSTOPped) broker would stall failover for a minute.
            "request.timeout.ms": 10_000,
            "socket.timeout.ms": 10_000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            "socket.connection.setup.timeout.ms": 3000,
            "error_cb": self._on_error,
            "logger": CLIENT_LOG,
            **conf,
        })

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal.append(str(err))

    def _on_delivery(self, sent_at: float, err: KafkaError | None, msg: Any) -> None:
        value = msg.value().decode()
        with self._lock:
            if err is not None:
                self.failed.append((value, err.name()))
            else:
                self.acked.append(Acked(msg.partition(), msg.offset(), value, time.monotonic(),
                                        sent_at))

    def run(self) -> None:
        seq = 0
        next_at = time.monotonic()
        while not self._stop_event.is_set() and not self.fatal:
            value = f"v{seq:08d}".encode()
            try:
                self._producer.produce(self.topic, value, partition=seq % self.partitions,
                                       on_delivery=functools.partial(self._on_delivery,
                                                                     time.monotonic()))
            except BufferError:
                self._producer.poll(0.1)
                continue
            seq += 1
            self.sent = seq
            next_at += self.interval
            delay = next_at - time.monotonic()
            self._producer.poll(max(delay, 0))
        self._producer.flush(150)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(180)

    def acks_after(self, partition: int, since: float) -> Acked | None:
        """The first acknowledgement of a record handed to the client after `since` (an
        ack that merely arrived late for a record sent earlier does not count)."""
        with self._lock:
            return next((a for a in self.acked if a.partition == partition and a.sent_at > since),
                        None)

    def ack_count(self) -> int:
        with self._lock:
            return len(self.acked)


def produce_values(bootstrap: str, topic: str, values: Sequence[bytes], *, acks: str,
                   partition: int = 0, batches: int = 1, pause_s: float = 0.0
                   ) -> list[tuple[int, bytes]]:
    """Produce `values` to one partition in `batches` flushes (`pause_s` apart); every
    one must be acknowledged. Returns the (offset, value) pairs, by offset."""
    acked: list[tuple[int, bytes]] = []
    errors: list[str] = []

    def done(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            acked.append((msg.offset(), msg.value()))
        else:
            errors.append(err.name())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0,
                         "enable.idempotence": acks == "all", "message.timeout.ms": 60_000,
                         "topic.metadata.refresh.interval.ms": 1000, "logger": CLIENT_LOG})
    size = max(1, -(-len(values) // batches))
    for start in range(0, len(values), size):
        for value in values[start:start + size]:
            producer.produce(topic, value, partition=partition, on_delivery=done)
        producer.flush(60)
        time.sleep(pause_s)
    assert producer.flush(60) == 0, "records still unacknowledged after 60s"
    assert not errors, errors[:5]
    return sorted(acked)


# --- consuming ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    partition: int
    offset: int
    value: str


def consumer_conf(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"strom-chaos-{uuid.uuid4().hex[:8]}",  # never joined: manual assignment
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10_000,
        "topic.metadata.refresh.interval.ms": 1000,
        "reconnect.backoff.max.ms": 500,
        "logger": CLIENT_LOG,
        **extra,
    }


class TailingConsumer(threading.Thread):
    """Reads every partition from the beginning for the whole run; records what it saw."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(name="tailing-consumer", daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.seen: list[Seen] = []
        self.errors: list[str] = []
        self.until: dict[int, int] | None = None
        self._position: dict[int, int] = {}
        self._stop_event = threading.Event()
        self._consumer = Consumer(consumer_conf(bootstrap))
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for p in range(partitions)])

    def run(self) -> None:
        try:
            while not self._stop_event.is_set() and not self._done():
                for msg in self._consumer.consume(num_messages=500, timeout=0.2):
                    if msg.error() is not None:
                        self.errors.append(str(msg.error()))
                        continue
                    self.seen.append(Seen(msg.partition(), msg.offset(), msg.value().decode()))
                    self._position[msg.partition()] = msg.offset() + 1
        finally:
            self._consumer.close()

    def _done(self) -> bool:
        until = self.until
        return until is not None and all(self._position.get(p, 0) >= end for p, end in until.items())

    def finish(self, ends: Mapping[int, int], timeout: float = 120.0) -> None:
        """Keep reading until every partition reaches `ends`, then stop."""
        self.until = dict(ends)
        self.join(timeout)
        if self.is_alive():
            self._stop_event.set()
            self.join(30)


def end_offsets(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> dict[int, int]:
    """Each partition's high watermark, asked of its leader."""
    consumer = Consumer(consumer_conf(bootstrap))
    try:
        out: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        for p in range(partitions):
            while p not in out:
                try:
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
                    out[p] = int(high)
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        return out
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 120.0
             ) -> dict[int, list[Seen]]:
    """Every record below each partition's high watermark, read with a fresh consumer,
    by offset (an offset read twice, after a consumer reset, counts once)."""
    ends = end_offsets(bootstrap, topic, partitions)
    reader = TailingConsumer(bootstrap, topic, partitions)
    reader.start()
    reader.finish(ends, timeout)
    out: dict[int, dict[int, Seen]] = {p: {} for p in range(partitions)}
    for s in reader.seen:
        if s.offset < ends[s.partition]:
            out[s.partition][s.offset] = s
    # No transactions, no compaction: every offset below the high watermark is a record.
    short = {p: (len(by_offset), ends[p]) for p, by_offset in out.items() if len(by_offset) < ends[p]}
    assert not short, f"read back only (records, high watermark) {short}; errors {reader.errors[:5]}"
    return {p: [by_offset[o] for o in sorted(by_offset)] for p, by_offset in out.items()}


# --- verification ------------------------------------------------------------------------


@dataclass
class Verdict:
    acknowledged: int
    read: int
    lost: list[Acked] = field(default_factory=list)
    duplicated: list[tuple[int, str, int]] = field(default_factory=list)  # (partition, value, n)
    misplaced: list[tuple[Acked, int]] = field(default_factory=list)  # acked offset != log
    out_of_order: list[tuple[int, str, str]] = field(default_factory=list)
    phantom: list[Seen] = field(default_factory=list)  # seen during the run, not in the log
    failed_sends: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.misplaced or self.out_of_order
                    or self.phantom)

    def summary(self) -> str:
        return (f"acknowledged {self.acknowledged}, read {self.read}, lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)}, misplaced {len(self.misplaced)}, "
                f"out of order {len(self.out_of_order)}, phantom reads {len(self.phantom)}; "
                f"examples: lost {self.lost[:3]} dup {self.duplicated[:3]} "
                f"misplaced {self.misplaced[:3]} order {self.out_of_order[:3]} "
                f"phantom {self.phantom[:3]}")


def verify(acked: Sequence[Acked], final: Mapping[int, list[Seen]], seen: Sequence[Seen] = (),
           failed_sends: int = 0) -> Verdict:
    """Compare what was acknowledged and seen during the run with the final logs."""
    total = sum(len(v) for v in final.values())
    verdict = Verdict(len(acked), total, failed_sends=failed_sends)
    at = {(s.partition, s.offset): s.value for records in final.values() for s in records}
    counts: dict[int, Counter[str]] = {p: Counter(s.value for s in records)
                                       for p, records in final.items()}
    for p, counter in counts.items():
        verdict.duplicated += [(p, v, n) for v, n in counter.items() if n > 1]
    for a in acked:
        if counts.get(a.partition, Counter())[a.value] == 0:
            verdict.lost.append(a)
        elif at.get((a.partition, a.offset)) != a.value:
            verdict.misplaced.append((a, a.offset))
    by_partition: dict[int, list[Acked]] = defaultdict(list)
    for a in acked:
        by_partition[a.partition].append(a)
    for p, acks in by_partition.items():
        ordered = sorted(acks, key=lambda a: a.offset)
        for before, after in itertools.pairwise(ordered):
            if before.value > after.value:  # values are zero-padded sequence numbers
                verdict.out_of_order.append((p, before.value, after.value))
    verdict.phantom = [s for s in seen if at.get((s.partition, s.offset)) != s.value]
    return verdict


# --- faults ------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str  # "kill-leader", "pause", "kill-controller"
    broker: int
    started: float  # wall clock (time.time()) when the signal was sent
    detail: str = ""
    led: tuple[int, ...] = ()  # partitions the broker led when the fault began
    # partition -> seconds from the fault to the next acknowledged write there
    recovery_s: dict[int, float] = field(default_factory=dict)
    new_leaders: dict[int, int] = field(default_factory=dict)
    ended: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.events.append((time.time(), what))


class FaultSchedule:
    """The issue's fault schedule, one fault at a time, waiting for full health between."""

    def __init__(self, cluster: Cluster, topic: str, partitions: int,
                 producer: AckingProducer | None = None,
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.cluster = cluster
        self.topic = topic
        self.partitions = partitions
        self.producer = producer
        self.log = log
        self.faults: list[Fault] = []
        self.all_brokers = set(cluster.brokers)

    def run(self, pause_s: float | None = None) -> list[Fault]:
        for partition in range(self.partitions):
            self.kill_leader(partition)
        self.pause_other(pause_s)
        self.kill_controller()
        return self.faults

    def _led_by(self, broker: int) -> tuple[int, ...]:
        states = self.cluster.partitions(self.topic)
        return tuple(p for p, s in sorted(states.items()) if s.leader == broker)

    def _begin(self, kind: str, broker: int, detail: str) -> tuple[Fault, float]:
        fault = Fault(kind, broker, time.time(), detail, self._led_by(broker))
        self.faults.append(fault)
        self.log(f"{kind}: broker {broker} ({detail}); it leads partitions {list(fault.led)}")
        return fault, time.monotonic()

    def _await_failover(self, fault: Fault) -> None:
        for p in fault.led:
            fault.new_leaders[p] = self.cluster.wait_for_leader(self.topic, p,
                                                                exclude={fault.broker})
        fault.note(f"new leaders {fault.new_leaders}")

    def _await_acks(self, fault: Fault, since: float) -> None:
        if self.producer is None:
            return
        for p in fault.led:
            ack = wait_until(lambda p=p: self.producer.acks_after(p, since), 120,
                             f"an acknowledged write to partition {p} after the fault")
            fault.recovery_s[p] = ack.at - since
        fault.note("next acknowledged write " + ", ".join(
            f"p{p} {s:.2f} s" for p, s in sorted(fault.recovery_s.items())))

    def _heal(self, fault: Fault) -> None:
        self.cluster.wait_for_brokers(self.all_brokers)
        self.cluster.wait_for_isr(self.topic, range(self.partitions), self.all_brokers)
        fault.ended = time.time()
        fault.note("all brokers live and every ISR full")
        self.log(f"{fault.kind}: healed")

    def kill_leader(self, partition: int) -> Fault:
        leader = self.cluster.wait_for_leader(self.topic, partition)
        fault, since = self._begin("kill-leader", leader, f"SIGKILL, leader of partition {partition}")
        self.cluster.kill(leader)
        self._await_failover(fault)
        self._await_acks(fault, since)
        self.cluster.start_broker(leader)
        fault.note(f"broker {leader} restarted")
        self._heal(fault)
        return fault

    def pause_other(self, pause_s: float | None = None) -> Fault:
        """SIGSTOP a broker that leads something, for longer than the session timeout,
        then SIGCONT it. Not the controller if another broker leads anything (the
        controller has a fault of its own next)."""
        pause_s = pause_s or self.cluster.session_timeout_ms / 1000 + 4
        controller = self.cluster.wait_for_controller()
        states = self.cluster.partitions(self.topic)
        leaders = sorted({s.leader for s in states.values() if s.leader >= 0},
                         key=lambda b: (b == controller, b))
        victim = leaders[0]
        fault, since = self._begin("pause", victim, f"SIGSTOP for {pause_s:.0f}s, then SIGCONT")
        self.cluster.pause(victim)
        self._await_failover(fault)
        remaining = pause_s - (time.monotonic() - since)
        if remaining > 0:
            time.sleep(remaining)
        self.cluster.resume(victim)
        fault.note(f"broker {victim} resumed")
        self._await_acks(fault, since)
        self._heal(fault)
        return fault

    def kill_controller(self) -> Fault:
        controller = self.cluster.wait_for_controller()
        fault, since = self._begin("kill-controller", controller, "SIGKILL, the controller")
        self.cluster.kill(controller)
        new = self.cluster.wait_for_controller(exclude={controller})
        fault.note(f"broker {new} is the new controller")
        self._await_failover(fault)
        self._await_acks(fault, since)
        self.cluster.start_broker(controller)
        fault.note(f"broker {controller} restarted")
        self._heal(fault)
        return fault

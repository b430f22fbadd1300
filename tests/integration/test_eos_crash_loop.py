"""Exactly-once through a consume-transform-produce loop that is SIGKILLed again and again.

The loop is a real confluent-kafka program (this file run as a script, `worker` mode):
a read_committed consumer in a group reads the input topic, a transactional producer
writes each record transformed to the output topic, hands the consumer's positions to
the transaction with `send_offsets_to_transaction` and commits, one transaction per
batch. The test starts it, lets it commit at least one transaction, SIGKILLs it at a
random moment (often mid-transaction: records produced, commit not sent), and restarts
it with the same transactional.id and group.instance.id, ten times over; a last run
finishes the input. Exactly-once means:

* the output read with read_committed is the input transformed, each record once (an
  aborted transaction's records hidden, none lost);
* the group's committed offsets are the input's end offsets.

Without transactions on the broker (markers, LSO, pending offsets visible only on
commit, fencing by epoch) a kill between produce and commit duplicates records.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402

from support.broker_process import BrokerProcess, wait_until  # noqa: E402
from support.clients import create_topic  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

RECORDS = 3000
PARTITIONS = 3
KILLS = 10
SEED = int(os.environ.get("STROM_EOS_SEED", "1212"))
TXN_BROKER = {"transaction.state.log.replication.factor": "1",
              "transaction.state.log.min.isr": "1",
              "group.initial.rebalance.delay.ms": "0"}


# --- the worker (run as a child process) --------------------------------------------------


def transform(value: bytes) -> bytes:
    """The loop's transformation: a pure function of the input record."""
    return value.upper() + b"|done"


def run_worker(bootstrap: str, source: str, sink: str, group: str, txn_id: str,
               pause_s: float) -> None:
    """Consume, transform, produce and commit offsets in one transaction per batch,
    forever; prints one JSON line per committed transaction."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "group.instance.id": f"{group}-worker", "session.timeout.ms": 10_000,
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 30_000, "linger.ms": 5})
    producer.init_transactions(60)
    consumer.subscribe([source])
    while True:
        batch = [m for m in consumer.consume(num_messages=10, timeout=0.5) if m.error() is None]
        if not batch:
            continue
        producer.begin_transaction()
        for message in batch:
            producer.produce(sink, transform(message.value()), message.key(),
                             partition=message.partition())
        producer.flush(60)
        time.sleep(pause_s)  # widen the window in which a kill lands mid-transaction
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
        producer.commit_transaction(60)
        print(json.dumps({"committed": len(batch)}), flush=True)


# --- the test ------------------------------------------------------------------------------


class Worker:
    """One run of the loop as a child process; counts the transactions it committed."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.commits = 0
        self.log = log
        self.proc = subprocess.Popen([sys.executable, __file__, "worker", *args],
                                     stdout=subprocess.PIPE, stderr=open(log, "ab"),  # noqa: SIM115
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.commits += 1

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def txn_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data", overrides=TXN_BROKER).start()
    yield proc
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()[-4000:]}"


def fill(bootstrap: str, topic: str) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    values = [f"rec-{i:05d}".encode() for i in range(RECORDS)]
    for i, value in enumerate(values):
        producer.produce(topic, value, f"k{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(60) == 0
    return values


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-probe"})
    try:
        return {p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in range(PARTITIONS)}
    finally:
        consumer.close()


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """The group's committed offsets, asked as a read_committed consumer (pending
    transactional offsets count only once committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                 timeout=15)
        return {tp.partition: int(tp.offset) for tp in tps}
    except Exception:  # noqa: BLE001 - UNSTABLE_OFFSET_COMMIT while a transaction settles
        return {}
    finally:
        consumer.close()


def read_output(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    """Every record of `topic` a consumer at `isolation` sees, read up to the end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-reader",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got: list[bytes] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        while len(at_end) < PARTITIONS and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                continue
            at_end.discard(message.partition())
            got.append(message.value())
    finally:
        consumer.close()
    assert len(at_end) == PARTITIONS, f"{topic} not read to its end ({isolation})"
    return got


def test_killed_loop_outputs_each_record_exactly_once(txn_broker: BrokerProcess,
                                                        tmp_path: Path) -> None:
    bootstrap = txn_broker.bootstrap
    source, sink = create_topic(bootstrap, "eos-in", PARTITIONS), create_topic(
        bootstrap, "eos-out", PARTITIONS)
    values = fill(bootstrap, source)
    ends = end_offsets(bootstrap, source)
    group, txn_id = "eos-loop", "eos-loop-txn"
    args = [bootstrap, source, sink, group, txn_id, "0.1"]
    rng = random.Random(SEED)
    started = time.monotonic()
    kills_before_end = 0
    for run in range(KILLS):
        worker = Worker(args, tmp_path / "worker.log")
        wait_until(lambda w=worker: w.commits > 0 or not w.alive(), 120,
                   f"run {run} commits a transaction",
                   detail=lambda: (tmp_path / "worker.log").read_text()[-3000:])
        assert worker.alive(), (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(rng.uniform(0.0, 1.5))
        worker.kill()
        kills_before_end += committed(bootstrap, source, group) != ends
    final = Worker(args, tmp_path / "worker.log")
    try:
        wait_until(lambda: committed(bootstrap, source, group) == ends, 300,
                   "the last run commits the input's end offsets", interval=1.0)
    finally:
        final.kill()
    duration = time.monotonic() - started

    out = read_output(bootstrap, sink, "read_committed")
    everything = read_output(bootstrap, sink, "read_uncommitted")
    expected = Counter(transform(v) for v in values)
    got = Counter(out)
    duplicates = sum((got - expected).values())
    losses = sum((expected - got).values())
    print(f"\nEOS crash loop: seed {SEED}, {RECORDS} records in, {len(out)} out "
          f"(read_committed), {len(everything) - len(out)} aborted records in the log, "
          f"{KILLS} SIGKILLs ({kills_before_end} before the input was done), "
          f"duplicates {duplicates}, losses {losses}, {duration:.1f} s")
    assert duplicates == 0 and losses == 0
    assert committed(bootstrap, source, group) == ends
    assert kills_before_end == KILLS  # every kill hit a loop with work left


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("bootstrap")
    parser.add_argument("source")
    parser.add_argument("sink")
    parser.add_argument("group")
    parser.add_argument("txn_id")
    parser.add_argument("pause_s", type=float)
    args = parser.parse_args()
    run_worker(args.bootstrap, args.source, args.sink, args.group, args.txn_id, args.pause_s)


if __name__ == "__main__":
    main()

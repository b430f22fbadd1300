"""Transactions survive the loss of their coordinator (three brokers on ZooKeeper).

Three transactional producers whose ids all hash to `__transaction_state` partitions led
by one broker run transactions back to back (five records into each of three partitions
per transaction); a fourth producer with a small transaction.timeout.ms opens a
transaction on the same coordinator, writes, and then hangs (never commits). That broker
is SIGKILLed right after, while transactions are open or committing (and before the hanging
one's timeout runs out, so only a successor can abort it). Its `__transaction_state`
partitions (replicated, min ISR 2) move to the survivors, which load the open and
prepared transactions and finish them. Afterwards, read with read_committed:

* every transaction is all or nothing: for each (producer, transaction) either all 15
  records are visible or none; the ones a producer saw committed are all there, the
  ones it saw aborted are absent;
* the hanging transaction is aborted by the new coordinator once its timeout passes, so
  the last stable offset reaches the high watermark and its records stay invisible.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from support.cluster import CLIENT_LOG, Cluster, wait_until
from support.raw_client import RawClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]
TOPIC = "txn-failover"
PARTITIONS = 3
PER_PARTITION = 5
PRODUCERS = 3
HANG_TIMEOUT_MS = 5000
OVERRIDES = {"transaction.state.log.num.partitions": "6",
             "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"}


def txn_coordinator(cluster: Cluster, txn_id: str) -> int:
    """The broker FindCoordinator names for a transactional id, or -1."""
    for broker_id in cluster.running():
        try:
            with RawClient(cluster.brokers[broker_id].bootstrap, timeout=5.0) as client:
                entry = client.request(10, 4, key_type=1,
                                       coordinator_keys=[txn_id]).body.coordinators[0]
        except Exception:  # noqa: BLE001 - a broker dying under us: ask another
            continue
        return int(entry.node_id) if int(entry.error_code) == 0 else -1
    return -1


def ids_on_one_broker(cluster: Cluster, count: int) -> tuple[int, list[str]]:
    """`count` transactional ids coordinated by the same broker, and that broker."""
    wait_until(lambda: txn_coordinator(cluster, "probe") >= 0, 90, "__transaction_state")
    by_broker: dict[int, list[str]] = defaultdict(list)
    for _ in range(200):
        txn_id = f"fo-{uuid.uuid4().hex[:8]}"
        node = txn_coordinator(cluster, txn_id)
        if node >= 0:
            by_broker[node].append(txn_id)
            if len(by_broker[node]) == count:
                return node, by_broker[node]
    raise AssertionError(f"no broker coordinates {count} ids: {dict(by_broker)}")


@dataclass
class Outcomes:
    """What one producer thread knows about its transactions."""

    committed: set[int] = field(default_factory=set)
    aborted: set[int] = field(default_factory=set)
    unknown: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def new_producer(bootstrap: str, txn_id: str, timeout_ms: int = 60_000) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": timeout_ms, "linger.ms": 2,
                         "logger": CLIENT_LOG})
    producer.init_transactions(120)
    return producer


def run_transactions(bootstrap: str, txn_id: str, stop: threading.Event,
                     out: Outcomes) -> None:
    """Transactions back to back until `stop`; each outcome as the client learned it."""
    producer = new_producer(bootstrap, txn_id)
    number = 0
    while not stop.is_set():
        number += 1
        try:
            producer.begin_transaction()
            for p in range(PARTITIONS):
                for i in range(PER_PARTITION):
                    producer.produce(TOPIC, f"{txn_id}|{number}|{p}|{i}".encode(), partition=p)
            producer.commit_transaction(120)
            out.committed.add(number)
        except KafkaException as exc:
            out.errors.append(f"{number}: {exc}")
            producer = recover(bootstrap, txn_id, producer, exc, number, out)


def recover(bootstrap: str, txn_id: str, producer: Producer, exc: KafkaException, number: int,
            out: Outcomes) -> Producer:
    """After a failed transaction: abort it if the client can, else a new producer
    (InitProducerId aborts what the old one left open)."""
    error = exc.args[0]
    if error.txn_requires_abort():
        try:
            producer.abort_transaction(120)
            out.aborted.add(number)
            return producer
        except KafkaException as again:
            out.errors.append(f"{number} abort: {again}")
    out.unknown.add(number)
    return new_producer(bootstrap, txn_id)


def read_all(bootstrap: str, isolation: str) -> list[str]:
    """Every record of TOPIC a consumer at `isolation` sees, up to each partition's end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "enable.partition.eof": True, "logger": CLIENT_LOG})
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got: list[str] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        while len(at_end) < PARTITIONS and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(int(message.partition() or 0))
                continue
            at_end.discard(int(message.partition() or 0))
            got.append((message.value() or b"").decode())
    finally:
        consumer.close()
    assert len(at_end) == PARTITIONS, f"{TOPIC} not read to its end ({isolation})"
    return got


def stable_offsets(bootstrap: str) -> tuple[dict[int, int], dict[int, int]]:
    """(last stable offsets, high watermarks) per partition, from ListOffsets."""
    out: list[dict[int, int]] = []
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets",
                             "isolation.level": isolation, "logger": CLIENT_LOG})
        try:
            out.append({p: int(consumer.get_watermark_offsets(
                TopicPartition(TOPIC, p), timeout=15)[1]) for p in range(PARTITIONS)})
        finally:
            consumer.close()
    return out[0], out[1]


def lso_caught_up(bootstrap: str) -> bool:
    try:
        lso, hwm = stable_offsets(bootstrap)
    except KafkaException:
        return False
    return lso == hwm


def test_coordinator_killed_mid_transactions_all_or_nothing(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(overrides=OVERRIDES)
    cluster.create_topic(TOPIC, partitions=PARTITIONS, replication_factor=3)
    victim, ids = ids_on_one_broker(cluster, PRODUCERS + 1)
    hang_id, loop_ids = ids[0], ids[1:]
    bootstrap = ",".join(cluster.brokers[b].bootstrap for b in cluster.running())

    hanging = new_producer(bootstrap, hang_id, timeout_ms=HANG_TIMEOUT_MS)
    stop = threading.Event()
    outcomes = {txn_id: Outcomes() for txn_id in loop_ids}
    threads = [threading.Thread(target=run_transactions, args=(bootstrap, t, stop, outcomes[t]),
                                daemon=True) for t in loop_ids]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(len(o.committed) >= 3 for o in outcomes.values()), 120,
               "every producer commits before the kill")
    # the hanging transaction: records written, never committed; its timeout runs out
    # after the kill, so a surviving broker's coordinator must abort it
    hanging.begin_transaction()
    for p in range(PARTITIONS):
        hanging.produce(TOPIC, f"{hang_id}|hang|{p}".encode(), partition=p)
    assert hanging.flush(60) == 0
    started = time.monotonic()
    cluster.kill(victim)
    before = {t: max(o.committed) for t, o in outcomes.items()}
    wait_until(lambda: txn_coordinator(cluster, hang_id) not in (-1, victim), 120,
               "a new transaction coordinator")
    wait_until(lambda: all(max(o.committed) >= before[t] + 3 for t, o in outcomes.items()),
               240, "every producer commits again after the kill")
    stop.set()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads)
    wait_until(lambda: lso_caught_up(bootstrap), 120,
               "the hanging transaction is aborted and the LSO reaches the high watermark")
    failover_s = time.monotonic() - started

    visible = read_all(bootstrap, "read_committed")
    everything = read_all(bootstrap, "read_uncommitted")
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for value in visible:
        txn_id, number, _, _ = value.split("|")
        seen[(txn_id, number)] += 1
    whole = PARTITIONS * PER_PARTITION
    partial = {k: n for k, n in seen.items() if n != whole}
    totals = {t: (len(o.committed), len(o.aborted), len(o.unknown)) for t, o in outcomes.items()}
    print(f"\nfailover: broker {victim} killed; per producer (committed, aborted, unknown) "
          f"{totals}; {len(visible)} records visible, {len(everything)} in the logs; "
          f"{failover_s:.1f} s from the kill to a caught-up LSO; errors "
          f"{ {t: o.errors[:3] for t, o in outcomes.items()} }")
    assert not partial, f"transactions partly visible: {partial}"
    assert not any(k[0] == hang_id for k in seen), "the hanging transaction became visible"
    assert any(v.startswith(f"{hang_id}|hang") for v in everything)  # it was in the log
    for txn_id, outcome in outcomes.items():
        visible_numbers = {int(n) for (t, n) in seen if t == txn_id}
        assert outcome.committed <= visible_numbers, f"{txn_id} lost a committed transaction"
        assert not outcome.aborted & visible_numbers, f"{txn_id} shows an aborted transaction"

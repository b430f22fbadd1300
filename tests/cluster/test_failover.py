"""Acknowledged writes survive broker failures (the issue's headline scenario).

Three brokers, a topic with replication factor 3 and min.insync.replicas=2. An idempotent
acks=all producer writes continuously while the leader of each partition is killed with
SIGKILL (and restarted), another broker is paused with SIGSTOP for longer than the
ZooKeeper session timeout, and the controller is killed. A consumer reads throughout.

Afterwards every acknowledged record is in the log exactly once, at the offset it was
acknowledged with, in the order it was produced; the consumer never saw a record that
is not in the final log; and once the cluster is stopped the three replicas' logs on
disk are identical.
"""

from __future__ import annotations

import time

import pytest

from support import chaos
from support.cluster import Cluster, read_log
from support.secure_broker import OVER_SASL_SSL

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "failover"
PARTITIONS = 3


@OVER_SASL_SSL
def test_acknowledged_writes_survive_kills_pause_and_controller_kill(cluster: Cluster) -> None:
    cluster.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
    producer = chaos.AckingProducer(cluster.bootstrap, TOPIC, PARTITIONS)
    consumer = chaos.TailingConsumer(cluster.bootstrap, TOPIC, PARTITIONS)
    producer.start()
    consumer.start()
    try:
        chaos.wait_until(lambda: producer.ack_count() > 200, 60, "the first acknowledgements")
        faults = chaos.FaultSchedule(cluster, TOPIC, PARTITIONS, producer).run()
        time.sleep(1)
    finally:
        producer.stop()
    assert not producer.fatal, producer.fatal
    ends = chaos.end_offsets(cluster.bootstrap, TOPIC, PARTITIONS)
    consumer.finish(ends)
    final = chaos.read_all(cluster.bootstrap, TOPIC, PARTITIONS)

    verdict = chaos.verify(producer.acked, final, consumer.seen, len(producer.failed))
    assert verdict.ok, verdict.summary()
    assert [f.kind for f in faults] == ["kill-leader"] * PARTITIONS + ["pause", "kill-controller"]
    # The kills and the pause each took a leader away; writes resumed on its partitions.
    for fault in faults:
        assert fault.led or fault.kind == "kill-controller", fault
        assert set(fault.recovery_s) == set(fault.led), fault
    # The producer never gave up on a record: nothing was merely "maybe written".
    assert not producer.failed, producer.failed[:5]
    assert verdict.acknowledged == producer.sent

    # Replicas agree record for record once the cluster is at rest.
    cluster.wait_for_isr(TOPIC, range(PARTITIONS), cluster.brokers)
    cluster.shutdown()
    for p in range(PARTITIONS):
        logs = {b: [(r.offset, r.value) for r in read_log(cluster.data_dir(b), TOPIC, p)]
                for b in cluster.brokers}
        expected = [(s.offset, s.value.encode()) for s in final[p]]
        for broker, records in logs.items():
            assert records == expected, (
                f"partition {p} on broker {broker}: {len(records)} records on disk, "
                f"{len(expected)} read from the leader; first difference at "
                f"{_first_difference(records, expected)}")


def _first_difference(a: list[tuple[int, bytes | None]], b: list[tuple[int, bytes]]) -> object:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return (i, x, y)
    return ("length", len(a), len(b))

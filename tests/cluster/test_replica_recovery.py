"""Replicas that fall behind or diverge come back in line with the leader.

* A follower killed while the leader keeps taking writes catches up from its log end
  after a restart (across several segments) and rejoins the ISR.
* A leader cut off (SIGSTOP) right after taking acks=1 writes its followers never
  fetched is replaced; the new leader takes other writes at the same offsets. When the
  old leader comes back — resumed, or killed and restarted — it must truncate its
  divergent tail (OffsetForLeaderEpoch) and then hold exactly the new leader's log.

Logs are compared record by record from the segment files of the stopped brokers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support import chaos
from support.cluster import Cluster, read_log, wait_until
from support.secure_broker import OVER_SASL_SSL

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "recovery"


def _disk_logs(cluster: Cluster, topic: str, partition: int = 0
               ) -> dict[int, list[tuple[int, bytes | None]]]:
    return {b: [(r.offset, r.value) for r in read_log(cluster.data_dir(b), topic, partition)]
            for b in cluster.brokers}


def _values(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i:05d}".encode() for i in range(n)]


def produce(bootstrap: str, values: list[bytes], acks: str = "all", **kwargs: Any
            ) -> list[tuple[int, bytes]]:
    return chaos.produce_values(bootstrap, TOPIC, values, acks=acks, **kwargs)


@OVER_SASL_SSL
def test_follower_catches_up_and_rejoins_the_isr(cluster: Cluster) -> None:
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "2", "segment.bytes": "16384"})
    leader = cluster.wait_for_leader(TOPIC, 0)
    follower = next(b for b in cluster.brokers if b != leader)
    produce(cluster.bootstrap, _values("before", 500))

    cluster.kill(follower)
    survivors = set(cluster.brokers) - {follower}
    cluster.wait_for_isr(TOPIC, [0], survivors)
    while_down = produce(cluster.bootstrap, _values("while-down", 3000), batches=10)
    assert len(while_down) == 3000

    cluster.start_broker(follower)
    cluster.wait_for_isr(TOPIC, [0], cluster.brokers)
    after = produce(cluster.bootstrap, _values("after", 200))
    final = chaos.read_all(cluster.bootstrap, TOPIC, 1)[0]
    assert [s.value.encode() for s in final] == (
        _values("before", 500) + _values("while-down", 3000) + _values("after", 200))
    assert after[-1][0] == final[-1].offset

    cluster.wait_for_isr(TOPIC, [0], cluster.brokers)
    cluster.shutdown()
    logs = _disk_logs(cluster, TOPIC)
    expected = [(s.offset, s.value.encode()) for s in final]
    assert len(list((cluster.data_dir(follower) / f"{TOPIC}-0").glob("*.log"))) > 1
    for broker, records in logs.items():
        assert records == expected, (
            f"broker {broker} holds {len(records)} records, expected {len(expected)}; "
            f"first difference {_first_difference(records, expected)}")


@pytest.mark.parametrize("comeback", ["resume", "restart"])
@OVER_SASL_SSL
def test_deposed_leader_truncates_its_divergent_tail(cluster_factory: Callable[..., Cluster],
                                                     comeback: str) -> None:
    # ISR membership must not change while the followers are paused for a moment.
    cluster = cluster_factory(overrides={"replica.lag.time.max.ms": "60000"})
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "1"})
    old = cluster.wait_for_leader(TOPIC, 0)
    followers = sorted(set(cluster.brokers) - {old})
    committed = produce(cluster.bootstrap, _values("committed", 300))

    # Followers frozen: the leader alone takes acks=1 writes (a follower may still get
    # the batch answering the fetch it had in flight, but not the later ones).
    for b in followers:
        cluster.pause(b)
    try:
        lonely = produce(cluster.brokers[old].bootstrap, _values("lonely", 200), acks="1",
                         batches=10, pause_s=0.05)
    finally:
        cluster.pause(old)
        for b in followers:
            cluster.resume(b)
    new = cluster.wait_for_leader(TOPIC, 0, exclude={old})
    replacement = produce(cluster.brokers[new].bootstrap, _values("replacement", 300))

    if comeback == "resume":
        cluster.resume(old)
    else:
        cluster.kill(old)
        cluster.start_broker(old)
    cluster.wait_for_brokers(set(cluster.brokers))
    cluster.wait_for_isr(TOPIC, [0], cluster.brokers)
    final = chaos.read_all(cluster.bootstrap, TOPIC, 1)[0]
    values = [s.value.encode() for s in final]

    # Nothing acknowledged by the ISR was lost; the lonely tail really diverged.
    assert all(v in values for _, v in committed + replacement)
    at = {s.offset: s.value.encode() for s in final}
    overwritten = [(o, v) for o, v in lonely if at.get(o) != v]
    assert overwritten, "every acks=1 record reached the new leader: the logs never diverged"
    assert all(v not in values for _, v in overwritten)

    wait_until(lambda: cluster.leader_of(TOPIC, 0) >= 0, 30, "a leader")
    cluster.shutdown()
    expected = [(s.offset, s.value.encode()) for s in final]
    for broker, records in _disk_logs(cluster, TOPIC).items():
        assert records == expected, (
            f"broker {broker} ({'old leader' if broker == old else 'replica'}) holds "
            f"{len(records)} records, the leader served {len(expected)}; "
            f"first difference {_first_difference(records, expected)}")


def _first_difference(a: list[tuple[int, bytes | None]], b: list[tuple[int, bytes]]) -> object:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return (i, x, y)
    return ("length", len(a), len(b))

"""Leader election respects the ISR.

With `unclean.leader.election.enable=false`, a partition whose in-sync replicas are all
dead stays offline (leader -1 in Metadata) rather than electing a live replica that
missed acknowledged writes; when the last in-sync replica returns it leads again with
every acknowledged record.
"""

from __future__ import annotations

import time

import pytest

from support import chaos
from support.cluster import Cluster, wait_until
from support.secure_broker import OVER_SASL_SSL

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "clean-election"


def _values(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i:04d}".encode() for i in range(n)]


@OVER_SASL_SSL
def test_partition_stays_offline_until_an_in_sync_replica_returns(cluster: Cluster) -> None:
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "1",
                                       "unclean.leader.election.enable": "false"})
    leader = cluster.wait_for_leader(TOPIC, 0)
    followers = sorted(set(cluster.brokers) - {leader})
    early = _values("replicated", 100)
    chaos.produce_values(cluster.bootstrap, TOPIC, early, acks="all")

    # The followers die; the leader alone stays in sync and acknowledges more writes.
    for b in followers:
        cluster.kill(b)
    cluster.wait_for_isr(TOPIC, [0], {leader})
    late = _values("leader-only", 100)
    chaos.produce_values(cluster.brokers[leader].bootstrap, TOPIC, late, acks="all")

    # The last in-sync replica dies; the out-of-sync ones come back.
    cluster.kill(leader)
    for b in followers:
        cluster.start_broker(b)
    cluster.wait_for_brokers(set(followers))
    cluster.wait_for_controller()

    def offline_everywhere() -> bool:
        return all(cluster.leader_of(TOPIC, 0, via=b) == -1 for b in followers)

    wait_until(offline_everywhere, 60, "the partition reported offline by both live brokers",
               detail=lambda: cluster.describe(TOPIC))
    time.sleep(3)  # give a wrong election every chance to happen
    assert offline_everywhere(), cluster.describe(TOPIC)
    state = cluster.zk_partitions(TOPIC)[0]
    assert state.leader == -1, state
    assert set(state.isr) == {leader}, state

    cluster.start_broker(leader)
    assert cluster.wait_for_leader(TOPIC, 0) == leader
    cluster.wait_for_isr(TOPIC, [0], cluster.brokers)
    final = chaos.read_all(cluster.bootstrap, TOPIC, 1)[0]
    assert [s.value.encode() for s in final] == early + late

"""A controller paused (SIGSTOP) past its ZooKeeper session loses its term for good.

Another broker takes over with a higher controller epoch and decides the partitions; the
old controller, resumed, learns it lost (its session, or a write refused by the epoch
check), says so, and writes nothing as controller: every partition state in ZooKeeper
still carries the new controller's epoch afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient

from support.cluster import Cluster, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "paused-controller"


def _zk(cluster: Cluster) -> KazooClient:
    client = KazooClient(hosts=f"{cluster.zk.connect}{cluster.chroot}", timeout=10)
    client.start(timeout=15)
    return client


def _controller_epoch(client: KazooClient) -> int:
    return int(client.get("/controller_epoch")[0])


def _states(client: KazooClient) -> dict[tuple[str, int], dict[str, object]]:
    """Every partition state in ZooKeeper, by (topic, partition)."""
    out = {}
    for topic in client.get_children("/brokers/topics"):
        doc = json.loads(client.get(f"/brokers/topics/{topic}")[0])
        for p, state in doc["partitions"].items():
            out[(topic, int(p))] = state
    return out


def test_a_paused_controller_does_not_write_after_a_takeover(
        cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(size=3)
    cluster.create_topic(TOPIC, 3, 3)
    old = cluster.wait_for_controller()
    client = _zk(cluster)
    try:
        old_epoch = _controller_epoch(client)
        cluster.pause(old)
        new = cluster.wait_for_controller(exclude={old})
        new_epoch = _controller_epoch(client)
        assert new_epoch > old_epoch
        # The new controller drops the silent broker from every ISR (it is in all of them).
        cluster.wait_for_isr(TOPIC, range(3), set(cluster.brokers) - {old})

        cluster.resume(old)
        cluster.wait_for_brokers(set(cluster.brokers))
        cluster.wait_for_isr(TOPIC, range(3), cluster.brokers)
        log_text = cluster.brokers[old].log_text
        wait_until(lambda: f"no longer the controller (epoch {old_epoch})" in log_text(), 30,
                   f"broker {old} logs that it lost the controller epoch {old_epoch}")

        assert cluster.controller_id() == new
        assert _controller_epoch(client) == new_epoch
        states = _states(client)
        assert states
        stale = {k: s for k, s in states.items() if s.get("controller_epoch") != new_epoch}
        assert not stale, f"partition states not decided under epoch {new_epoch}: {stale}"
    finally:
        client.stop()
        client.close()

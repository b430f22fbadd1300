"""The cluster id in ZooKeeper is the truth, as in Kafka's ZooKeeper mode.

The first broker creates `/cluster/id`; every broker's fresh log dirs take that id into
meta.properties. A log dir stamped with another cluster's id stops the start with Kafka's
InconsistentClusterIdException message and a non-zero exit, before the broker registers:
pointing a broker at the wrong `zookeeper.connect` must not mix two clusters' data.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from support.broker_process import BrokerProcess
from support.cluster import Cluster, ZooKeeperServer

pytestmark = pytest.mark.cluster


def _zk_get(zk: ZooKeeperServer, chroot: str, path: str) -> tuple[bytes | None, list[str]]:
    """A znode's data and children under `chroot` (None, [] when absent)."""
    client = KazooClient(hosts=f"{zk.connect}{chroot}", timeout=10)
    client.start(timeout=15)
    try:
        if client.exists(path) is None:
            return None, []
        return client.get(path)[0], client.get_children(path)
    finally:
        client.stop()
        client.close()


def _stored_cluster_id(data_dir: Path) -> str:
    for line in (data_dir / "meta.properties").read_text().splitlines():
        if line.startswith("cluster.id="):
            return line.split("=", 1)[1]
    raise AssertionError(f"no cluster.id in {data_dir / 'meta.properties'}")


def test_log_dirs_take_zookeepers_id_and_a_wrong_cluster_is_refused(
        cluster_factory: Callable[..., Cluster], zookeeper: ZooKeeperServer) -> None:
    cluster = cluster_factory(size=2)
    data, _ = _zk_get(zookeeper, cluster.chroot, "/cluster/id")
    assert data is not None
    zk_id = json.loads(data)["id"]
    assert {_stored_cluster_id(cluster.data_dir(b)) for b in cluster.brokers} == {zk_id}

    # Broker 1, stopped, is pointed at another ZooKeeper chroot: another cluster.
    assert cluster.stop(1) == 0
    meta_before = (cluster.data_dir(1) / "meta.properties").read_bytes()
    other_chroot = f"/strom-other-{uuid.uuid4().hex[:10]}"
    wrong = BrokerProcess(cluster.data_dir(1), overrides={
        **cluster.brokers[1].overrides, "zookeeper.connect": f"{zookeeper.connect}{other_chroot}"})
    run = subprocess.run(wrong.command(), capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    other_data, _ = _zk_get(zookeeper, other_chroot, "/cluster/id")
    assert other_data is not None
    other_id = json.loads(other_data)["id"]
    assert other_id != zk_id
    assert (f"The Cluster ID {other_id} doesn't match stored clusterId Some({zk_id}) in "
            "meta.properties. The broker is trying to join the wrong cluster. Configured "
            "zookeeper.connect may be wrong.") in output
    assert "Traceback" not in output, output
    assert _zk_get(zookeeper, other_chroot, "/brokers/ids")[1] == []  # never registered
    assert (cluster.data_dir(1) / "meta.properties").read_bytes() == meta_before

    # Back at its own cluster it starts and rejoins.
    cluster.start_broker(1)
    cluster.wait_for_brokers({1, 2})

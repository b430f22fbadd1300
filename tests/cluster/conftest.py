"""Fixtures for the cluster suite: per test a fresh chroot of the session's ZooKeeper
(the `zookeeper` fixture of tests/conftest.py, shared with the metadata-store contract
suite) with its own Strom brokers, all stopped after the test.

When a test fails, the tail of every broker's log is printed with the failure report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from support.cluster import Cluster, ZooKeeperServer

ClusterFactory = Callable[..., Cluster]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def cluster_factory(zookeeper: ZooKeeperServer, tmp_path: Path,
                    request: pytest.FixtureRequest) -> Iterator[ClusterFactory]:
    """`cluster_factory(size=3, overrides={...})` starts brokers 1..size in a fresh chroot."""
    started: list[Cluster] = []

    def make(size: int = 3, overrides: Mapping[str, str] | None = None,
             session_timeout_ms: int | None = None) -> Cluster:
        extra = {} if session_timeout_ms is None else {"session_timeout_ms": session_timeout_ms}
        cluster = Cluster(zookeeper, tmp_path / f"cluster{len(started)}", size,
                          overrides=overrides, **extra)
        started.append(cluster)
        return cluster.start()

    yield make
    failed = request.node.stash.get(_FAILED, False)
    bad_exits = {}
    for cluster in started:
        if failed:
            print(f"\n=== cluster {cluster.chroot} ===\n{cluster.logs(6000)}")
        codes = cluster.shutdown()
        bad_exits.update({b: c for b, c in codes.items() if c != 0})
    assert not bad_exits, f"brokers exited uncleanly on SIGTERM: {bad_exits}"


@pytest.fixture
def cluster(cluster_factory: ClusterFactory) -> Cluster:
    """Three brokers, ids 1, 2, 3."""
    return cluster_factory()

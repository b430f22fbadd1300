"""Fixtures for the cluster suite: per test a fresh chroot of the session's ZooKeeper
(the `zookeeper` fixture of tests/conftest.py, shared with the metadata-store contract
suite) with its own Strom brokers, all stopped after the test.

When a test fails, the tail of every broker's log is printed with the failure report.

`listener_security` (indirectly parametrized by `support.secure_broker.OVER_SASL_SSL`)
runs a test's cluster with brokers replicating over an INTERNAL SASL_SSL listener
(SCRAM-SHA-512) and the authorizer on, without a second copy of the test body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from support import secure_broker
from support.cluster import Cluster, ZooKeeperServer
from support.tls_certs import make_pki

ClusterFactory = Callable[..., Cluster]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def listener_security(request: pytest.FixtureRequest) -> str:
    """How the brokers of `cluster_factory` reach each other: PLAINTEXT, or SASL_SSL
    with SCRAM and the authorizer on for the tests parametrized with
    `support.secure_broker.OVER_SASL_SSL`."""
    return str(getattr(request, "param", "PLAINTEXT"))


@pytest.fixture
def cluster_factory(zookeeper: ZooKeeperServer, tmp_path: Path, listener_security: str,
                    request: pytest.FixtureRequest) -> Iterator[ClusterFactory]:
    """`cluster_factory(size=3, overrides={...})` starts brokers 1..size in a fresh chroot."""
    started: list[Cluster] = []

    def make(size: int = 3, overrides: Mapping[str, str] | None = None,
             session_timeout_ms: int | None = None) -> Cluster:
        extra = {} if session_timeout_ms is None else {"session_timeout_ms": session_timeout_ms}
        base = tmp_path / f"cluster{len(started)}"
        secured = listener_security == "SASL_SSL"
        if secured:
            overrides = {**secure_broker.inter_broker_overrides(make_pki(base / "pki")),
                         **secure_broker.authorizer_overrides(), **(overrides or {})}
        cluster = Cluster(zookeeper, base, size, overrides=overrides, **extra)
        if secured:
            secure_broker.add_internal_listeners(cluster.brokers)
        started.append(cluster)
        cluster.start()
        if secured:
            secure_broker.create_broker_user(cluster.bootstrap)
        return cluster

    yield make
    if listener_security == "SASL_SSL":
        for cluster in started:
            _assert_replicated_over_sasl_ssl(cluster)
    failed = request.node.stash.get(_FAILED, False)
    bad_exits = {}
    for cluster in started:
        if failed:
            print(f"\n=== cluster {cluster.chroot} ===\n{cluster.logs(6000)}")
        codes = cluster.shutdown()
        bad_exits.update({b: c for b, c in codes.items() if c != 0})
    assert not bad_exits, f"brokers exited uncleanly on SIGTERM: {bad_exits}"


def _assert_replicated_over_sasl_ssl(cluster: Cluster) -> None:
    """The SASL_SSL variant is what it says: brokers logged in to each other on INTERNAL
    with SCRAM, never on the PLAINTEXT client listener."""
    logs = "".join(proc.log_text() for proc in cluster.brokers.values())
    reached = set(re.findall(r"connected to the broker at \S+ on listener (\w+) \(([^)]*)\)",
                             logs))
    assert reached == {("INTERNAL", "SASL_SSL, SCRAM-SHA-512 as broker")}, reached


@pytest.fixture
def cluster(cluster_factory: ClusterFactory) -> Cluster:
    """Three brokers, ids 1, 2, 3."""
    return cluster_factory()

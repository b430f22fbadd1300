from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.broker_process import BrokerProcess
from support.groups import NO_DELAY

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaAdminClient

    from strom.testing.postgres import PostgresServer
    from support.cluster import ZooKeeperServer
    from support.raw_client import RawClient


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker shared by a test module; tests use distinct topic names."""
    proc = BrokerProcess(tmp_path_factory.mktemp("broker") / "data").start()
    yield proc
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()}"


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker for consumer-group tests, shared by a module: no initial rebalance delay,
    so a group forms as soon as its members have joined."""
    proc = BrokerProcess(tmp_path_factory.mktemp("groups") / "data", overrides=NO_DELAY).start()
    yield proc
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()}"


@pytest.fixture(scope="module")
def admin(broker: BrokerProcess) -> AdminClient:
    """confluent-kafka's AdminClient on the module's broker."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap})


@pytest.fixture(scope="module")
def kp_admin(broker: BrokerProcess, request: pytest.FixtureRequest) -> Iterator[KafkaAdminClient]:
    """kafka-python's KafkaAdminClient on the module's broker; its client id names the
    module (test_admin_topics -> admin-topics), so broker logs tell the modules apart."""
    from kafka import KafkaAdminClient

    client_id = request.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id=client_id)
    yield client
    client.close()


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    """A raw-protocol connection to the module's broker, for one test."""
    from support.raw_client import RawClient

    with RawClient(broker.bootstrap) as client:
        yield client


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[type[BrokerProcess] | object]:
    """Start brokers with custom overrides; all are stopped after the test."""
    started: list[BrokerProcess] = []

    def start(overrides: dict[str, str] | None = None, name: str = "data") -> BrokerProcess:
        proc = BrokerProcess(tmp_path / name, overrides=overrides).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One real ZooKeeper (Debian's package) for the session: the cluster suite and the
    metadata-store contract suite each take fresh chroots of it."""
    from support.cluster import ZooKeeperServer, zookeeper_available

    reason = zookeeper_available()
    if reason is not None:
        pytest.skip(f"cluster tests need ZooKeeper: {reason}")
    zk = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper")).start()
    yield zk
    zk.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server (initdb in a temp dir, wal_level=logical) for the
    session; tests create their own databases on it (`postgres.create_database`)."""
    from strom.testing.postgres import PostgresServer

    with PostgresServer() as server:
        yield server

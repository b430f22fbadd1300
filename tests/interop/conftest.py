"""Fixtures for the Java interop suite: Kafka's jars, the compiled Java program, and the
brokers the same tests run against — Strom, and Apache Kafka itself as the oracle.

Every test here runs twice, `[strom]` and `[kafka]`. The Kafka run proves the test's
expectations are Kafka's own behaviour; a test that passes on `[kafka]` and fails on
`[strom]` is a broker bug. The jars come from Maven Central through `tools/kafka_dist.py`
(`scripts/test.sh` fetches them first); the suite skips only when no JDK is installed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.broker_process import BrokerProcess
from support.interop import Target, kafka_dist

JAVA_SOURCES = sorted((Path(__file__).parent / "java").glob("*.java"))
BROKERS = ("strom", "kafka")


@pytest.fixture(scope="session")
def kafka_lib() -> Path:
    if not kafka_dist.java_available():
        pytest.skip("no JDK: the interop suite needs java and javac "
                    "(apt-get install -y default-jdk-headless maven)")
    return kafka_dist.ensure_jars()


@pytest.fixture(scope="session")
def interop_classes(kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not kafka_dist.javac_available():
        pytest.skip("java is installed but javac is not (apt-get install -y default-jdk-headless)")
    out = tmp_path_factory.mktemp("java-classes")
    result = subprocess.run(
        ["javac", "-d", str(out), "-cp", str(kafka_lib / "*"),
         *map(str, JAVA_SOURCES)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"javac failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="session")
def strom_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    proc = BrokerProcess(tmp_path_factory.mktemp("interop-strom") / "data",
                         overrides={"group.initial.rebalance.delay.ms": "0"}).start()
    yield Target("strom", proc.bootstrap, 0)
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()}"


@pytest.fixture(scope="session")
def kafka_target(kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    broker = kafka_dist.KafkaBroker(tmp_path_factory.mktemp("interop-kafka"))
    broker.start()
    yield Target("kafka", broker.bootstrap, 1)
    broker.stop()


@pytest.fixture(params=BROKERS)
def target(request: pytest.FixtureRequest, kafka_lib: Path) -> Target:
    """The broker under test: each test runs against Strom and against Apache Kafka."""
    fixture = "strom_target" if request.param == "strom" else "kafka_target"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def strom_share(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A Strom broker of the module's own with share groups among its protocols."""
    proc = BrokerProcess(tmp_path_factory.mktemp("interop-share") / "data", overrides={
        "group.coordinator.rebalance.protocols": "classic,consumer,share"}).start()
    yield proc
    proc.stop()


@pytest.fixture(params=BROKERS)
def share_target(request: pytest.FixtureRequest, kafka_lib: Path) -> Target:
    """`target` for share group tests: Strom with share groups on, and Apache Kafka."""
    if request.param == "strom":
        proc: BrokerProcess = request.getfixturevalue("strom_share")
        return Target("strom", proc.bootstrap, 0)
    return request.getfixturevalue("kafka_target")  # type: ignore[no-any-return]


@pytest.fixture
def eos_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data",
                         overrides={"group.initial.rebalance.delay.ms": "0"}).start()
    yield proc
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()[-4000:]}"

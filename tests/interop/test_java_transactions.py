"""Java kafka-clients transactions, against Strom and against Apache Kafka 4.4 as the
oracle: offsets sent to committed and aborted transactions, a zombie producer fenced by a
second instance of its transactional.id (its open transaction aborted, its next send
fenced), the Admin's listTransactions and describeTransactions, records produced in
committed and aborted transactions read with isolation.level=read_committed. The checks
live in `java/StromTransactions.java`. Strom runs them at transaction version 2 (its default,
as a new Kafka 4.4 cluster) and at version 1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.broker_process import BrokerProcess
from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


def run_check(target: Target, classes: Path, lib: Path, check: str) -> None:
    cmd = ["java", "-Xmx512m",
           f"-Dlog4j2.configurationFile={lib.parent / 'tools-log4j2.properties'}",
           "-cp", f"{classes}:{lib / '*'}", "StromTransactions", target.bootstrap, check]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and f"PASS {check}" in result.stdout, (
        f"Java check {check!r} failed against {target.name} (exit {result.returncode}):\n"
        f"{result.stdout[-6000:]}\nstderr:\n{result.stderr[-4000:]}")


CHECKS = ["txn-offsets", "txn-fence", "txn-admin", "txn-produce", "txn-zombie", "txn-timeout"]


@pytest.mark.parametrize("check", CHECKS)
def test_java_transactions(check: str, target: Target, interop_classes: Path,
                           kafka_lib: Path) -> None:
    run_check(target, interop_classes, kafka_lib, check)


@pytest.fixture(scope="module")
def strom_tv1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Strom finalizing transaction.version 1 (`strom.transaction.version=1`): the Java
    client then adds partitions with AddPartitionsToTxn/AddOffsetsToTxn and ends
    transactions with EndTxn v4, the protocol of brokers before KIP-890 part 2."""
    proc = BrokerProcess(tmp_path_factory.mktemp("interop-strom-tv1") / "data",
                         overrides={"strom.transaction.version": "1"}).start()
    yield Target("strom-tv1", proc.bootstrap, 0)
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()}"


@pytest.mark.parametrize("check", CHECKS)
def test_java_transactions_version_1(check: str, strom_tv1: Target, interop_classes: Path,
                                     kafka_lib: Path) -> None:
    run_check(strom_tv1, interop_classes, kafka_lib, check)

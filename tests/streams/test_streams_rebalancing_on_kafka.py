"""The rebalancing scenarios of `test_streams_rebalancing` (and the fenced-producer
recovery of `test_streams_eos_recovery`) against Apache Kafka 4.4 (a
KRaft broker from the jars `tools/kafka_dist.py` caches): the raw group protocol, the
task assignor's bytes, generation-checked commits and transactions work the same there.
Marked `interop` (a JVM broker); skipped only when no JDK is installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streams_runtime_support import App
from test_streams_eos_recovery import fenced_producer_recovers
from test_streams_rebalancing import (
    adding_an_instance_moves_tasks_cooperatively,
    three_instances_survive_a_kill,
    warm_up_then_probing_moves_state,
)

from support.interop import kafka_dist

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_leftover_apps() -> Iterator[None]:
    yield
    App.kill_leftovers()


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka_dist.KafkaBroker]:
    if not kafka_dist.java_available():
        pytest.skip("no JDK: an Apache Kafka broker needs java")
    kafka_dist.ensure_jars()
    broker = kafka_dist.KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.cleanup()


def test_streams_three_instances_survive_a_kill_on_apache_kafka(
        kafka: kafka_dist.KafkaBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    three_instances_survive_a_kill(kafka, tmp_path, caplog)


def test_streams_cooperative_hand_over_on_apache_kafka(kafka: kafka_dist.KafkaBroker,
                                                       tmp_path: Path) -> None:
    adding_an_instance_moves_tasks_cooperatively(kafka, tmp_path)


def test_streams_warm_up_then_probing_on_apache_kafka(
        kafka: kafka_dist.KafkaBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    warm_up_then_probing_moves_state(kafka, tmp_path, caplog)


def test_streams_fenced_producer_recovers_on_apache_kafka(kafka: kafka_dist.KafkaBroker,
                                                          tmp_path: Path) -> None:
    fenced_producer_recovers(kafka, tmp_path)

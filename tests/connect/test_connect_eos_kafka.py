"""Strom Connect's exactly-once source on Apache Kafka 4.4 (the broker from
`tools/kafka_dist.py`): the same run as `test_connect_eos_source` — two Strom Connect
workers, the source task's worker SIGKILLed mid-stream, every line once and in order for a
read_committed consumer — with Kafka's transaction coordinator doing the fencing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_connect_eos_source import kill_mid_stream, workers

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import kafka_dist  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[kafka_dist.KafkaBroker]:
    if not (kafka_dist.java_available() and kafka_dist.jars_present()):
        pytest.skip("Apache Kafka's jars or Java are not available")
    broker = kafka_dist.KafkaBroker(tmp_path / "kafka", overrides={"group.initial.rebalance.delay.ms": "0"})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_a_killed_source_worker_leaves_every_line_exactly_once_on_kafka(
        tmp_path: Path, kafka: kafka_dist.KafkaBroker) -> None:
    with workers(tmp_path, kafka.bootstrap) as cluster:
        kill_mid_stream(tmp_path, kafka.bootstrap, cluster)

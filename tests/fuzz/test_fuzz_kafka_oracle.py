"""The corrupt-batch corpus against Apache Kafka 4.4 itself: its answers are the
expectations (`CorruptCase.kafka`, `CorruptCase.appends`) the fuzz suite holds Strom to.

Marked `interop` (a JVM broker takes a while to start), not `fuzz`, so the minute-long
fuzz run stays short; CI runs both. Kafka's transaction coordinator is made to exist
first (a transactional producer initialises), because without one Kafka answers a
transactional produce NOT_ENOUGH_REPLICAS (retriable) instead of checking it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fuzz_batches import CorruptCase, Target, corrupt_cases, error_name, prepare_target, run_case
from support.interop import kafka_dist

pytestmark = pytest.mark.interop

# Kafka's default JVM options want a 1 GiB heap up front; this broker only parses batches
JVM_OPTS = ["-Xmx768m", "-Xms256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true"]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Target]]:
    if not kafka_dist.java_available():
        pytest.skip("no JDK: this oracle needs java (apt-get install -y default-jdk-headless)")
    kafka_dist.ensure_jars()
    broker = kafka_dist.KafkaBroker(tmp_path_factory.mktemp("kafka-oracle"), jvm_opts=JVM_OPTS)
    broker.start()
    try:
        from confluent_kafka import Producer

        Producer({"bootstrap.servers": broker.bootstrap,
                  "transactional.id": "fuzz-oracle-txn"}).init_transactions(60)
        yield broker.bootstrap, prepare_target(broker.bootstrap, "fuzz-corrupt")
    finally:
        broker.cleanup()


@pytest.mark.parametrize("case", corrupt_cases(), ids=lambda c: c.name)
def test_kafka_answers_as_recorded(kafka: tuple[str, Target], case: CorruptCase) -> None:
    bootstrap, target = kafka
    result = run_case(bootstrap, case, target)
    got = "a close" if result.error_code is None else error_name(result.error_code)
    assert result.error_code == case.kafka, (
        f"Kafka answered {got} ({result.error_message}); the corpus says {error_name(case.kafka)}")
    assert result.hw_after - result.hw_before == case.appends, result.describe()

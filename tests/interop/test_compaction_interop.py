"""Log compaction on Strom and on Apache Kafka 4.4.0: the same writes, the same survivors.

Each seed's workload (`support.compaction.workload`: values and tombstones over 40 keys,
produced with confluent-kafka) goes to a compacted topic on both brokers, each with
`log.cleaner.backoff.ms=200`. Once each log reads as its compacted model (fillers roll the
segments meanwhile; they differ in number between the brokers and are left out of the
comparison), the surviving workload records — offset, key and value — must be identical,
with tombstones kept (long `delete.retention.ms`) and with them gone (short).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.broker_process import BrokerProcess
from support.compaction import CLEANER_BROKER, CompactedLog, Read, compact_topic_config, workload
from support.interop import kafka_dist

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

SEEDS = (7, 8)
WRITES = 600


@pytest.fixture(scope="module")
def brokers(kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, str]]:
    """Bootstrap addresses of a Strom and an Apache Kafka broker with a busy cleaner."""
    strom = BrokerProcess(tmp_path_factory.mktemp("compaction-strom") / "data",
                          overrides=CLEANER_BROKER).start()
    kafka = kafka_dist.KafkaBroker(tmp_path_factory.mktemp("compaction-kafka"),
                                   overrides=dict(CLEANER_BROKER))
    try:
        kafka.start()
        yield {"strom": strom.bootstrap, "kafka": kafka.bootstrap}
    finally:
        kafka.stop()
        code = strom.stop()
    assert code == 0, f"broker exited with {code}; log:\n{strom.log_text()[-4000:]}"


def _survivors(bootstrap: str, topic: str, seed: int, delete_retention_ms: int) -> list[Read]:
    log = CompactedLog(bootstrap, topic)
    log.create(compact_topic_config(delete_retention_ms=delete_retention_ms))
    log.produce(workload(seed, WRITES))
    read = log.settle(tombstones=delete_retention_ms > 1000)
    return [row for row in read if not row[1].startswith(b"filler-")]


@pytest.mark.parametrize("delete_retention_ms", [86_400_000, 100], ids=["keep", "drop"])
@pytest.mark.parametrize("seed", SEEDS)
def test_same_writes_leave_the_same_records(brokers: dict[str, str], seed: int,
                                            delete_retention_ms: int) -> None:
    topic = f"compaction-interop-{seed}-{delete_retention_ms}"
    kafka = _survivors(brokers["kafka"], topic, seed, delete_retention_ms)
    strom = _survivors(brokers["strom"], topic, seed, delete_retention_ms)
    assert strom == kafka
    assert kafka and len(kafka) < WRITES // 4
    assert any(v is None for _, _, v in kafka) == (delete_retention_ms > 1000)

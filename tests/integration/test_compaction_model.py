"""Log compaction against a dict model, through confluent-kafka (issue 11).

Seeded random writes to 40 keys (values and tombstones) go to a compacted topic; the test
then polls, writing fillers that roll segments, until a read from the start is exactly
what the model says a compacted log holds (`support.compaction`): per key only its
latest write, at the offset it was given, in offset order; no older duplicate anywhere
outside the active segment (fillers push every workload write out of it). Tombstones
stay while `delete.retention.ms` lasts and are gone after it. Offsets only increase, and
a consumer that starts inside a gap the cleaner left gets the next surviving record.

The expectations are Apache Kafka 4.4.0's: the same helpers run against it in
`tests/interop/test_compaction_interop.py`. More seeds: STROM_COMPACTION_SEEDS=1,2,3.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.broker_process import BrokerProcess
from support.compaction import (
    CLEANER_BROKER,
    CompactedLog,
    check_offsets_and_gaps,
    compact_topic_config,
    workload,
)

pytestmark = [pytest.mark.timeout(600)]

SEEDS = [int(s) for s in os.environ.get("STROM_COMPACTION_SEEDS", "101,202,303").split(",")]
WRITES = 600
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def cleaning_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("compaction-model") / "data",
                         overrides=CLEANER_BROKER).start()
    yield proc
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()[-4000:]}"


@pytest.mark.parametrize("seed", SEEDS)
def test_latest_write_per_key_survives_with_its_tombstones(cleaning_broker: BrokerProcess,
                                                           seed: int) -> None:
    log = CompactedLog(cleaning_broker.bootstrap, f"model-keep-{seed}")
    log.create(compact_topic_config(delete_retention_ms=DAY_MS))
    log.produce(workload(seed, WRITES))
    read = log.settle(tombstones=True)
    assert len(read) < WRITES // 4, "the workload overwrote most keys: most writes must go"
    assert any(value is None for _, _, value in read) == any(
        value is None for _, value in log.latest().values())
    check_offsets_and_gaps(log, read)


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
@pytest.mark.parametrize("seed", SEEDS)
def test_tombstones_go_once_delete_retention_has_passed(cleaning_broker: BrokerProcess,
                                                        seed: int, policy: str) -> None:
    """With `compact,delete` and a week of retention, compaction acts as with `compact`
    (time retention has nothing to delete yet)."""
    name = f"model-drop-{policy.replace(',', '-')}-{seed}"
    log = CompactedLog(cleaning_broker.bootstrap, name)
    log.create(compact_topic_config(policy=policy, delete_retention_ms=100))
    log.produce(workload(seed, WRITES))
    read = log.settle(tombstones=False)
    assert all(value is not None for _, _, value in read)
    check_offsets_and_gaps(log, read)


def test_writes_after_a_clean_are_compacted_with_what_survived(
        cleaning_broker: BrokerProcess) -> None:
    """A second workload over the same keys, after the first was cleaned: the survivors
    of the first clean are overwritten or kept exactly as the model says."""
    log = CompactedLog(cleaning_broker.bootstrap, "model-two-rounds")
    log.create(compact_topic_config(delete_retention_ms=DAY_MS))
    log.produce(workload(SEEDS[0], WRITES))
    log.settle(tombstones=True)
    log.produce(workload(SEEDS[0] + 1, WRITES // 2, keys=60))
    read = log.settle(tombstones=True)
    check_offsets_and_gaps(log, read)


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd"])
def test_compressed_batches_compact_record_by_record(cleaning_broker: BrokerProcess,
                                                     codec: str) -> None:
    """Producers batch and compress; the cleaner keeps single records out of a
    compressed batch (Kafka rewrites it with what survives, in the same codec)."""
    log = CompactedLog(cleaning_broker.bootstrap, f"model-{codec}")
    log.create(compact_topic_config(delete_retention_ms=100))
    log.produce(workload(SEEDS[-1], WRITES), **{"compression.type": codec, "linger.ms": 50})
    read = log.settle(tombstones=False)
    check_offsets_and_gaps(log, read)

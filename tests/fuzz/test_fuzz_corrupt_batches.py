"""Every corrupt batch of the corpus (support/fuzz_batches.py) in a Produce request.

Each batch carries a valid CRC-32C, so only record-level validation can catch it. The
broker must answer the error Apache Kafka 4.4 answers (or an equally right one, see
`CorruptCase.also`), write nothing (the partition's high watermark does not move), and
stay healthy: alive, answering a fresh ApiVersions within seconds, peak RSS bounded even
after the 1 GiB decompression bombs.
"""

from __future__ import annotations

import pytest

from support.fuzz_batches import corrupt_cases, run_case
from support.fuzz_target import (
    ANSWER_WITHIN_S,
    RSS_LIMIT_MB,
    FuzzEnv,
    api_versions_latency,
    memory_mb,
)

pytestmark = pytest.mark.fuzz

CASES = {case.name: case for case in corrupt_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_batch_is_refused(fuzz_env: FuzzEnv, name: str) -> None:
    case = CASES[name]
    result = run_case(fuzz_env.broker.bootstrap, case, fuzz_env.target)
    topic = "__consumer_offsets" if case.target == "offsets" else fuzz_env.target.topic
    partition = (fuzz_env.target.offsets_partition if case.target == "offsets"
                 else fuzz_env.target.partition)
    fuzz_env.watermarks[(topic, partition)] = result.hw_after

    broker = fuzz_env.broker
    assert broker.is_alive(), f"{name} killed the broker; log:\n{broker.log_text()[-3000:]}"
    assert api_versions_latency(broker.port) is not None, (
        f"after {name} the broker did not answer ApiVersions within {ANSWER_WITHIN_S}s")
    assert broker.proc is not None
    _, peak = memory_mb(broker.proc.pid)
    assert peak < RSS_LIMIT_MB, f"after {name} peak RSS is {peak:.0f} MiB"
    assert result.ok, result.describe()

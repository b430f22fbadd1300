"""Mutated frames recorded from real clients, fired at one live broker.

The corpus (tests/fuzz/corpus) holds requests confluent-kafka, kafka-python and kcat
sent; support/fuzz_frames.py mutates them (bit flips, boundary values, length and size
lies, truncation, splices, and record-batch mutations re-signed with a valid CRC). The
run is bounded by case count, not by clock, and seeded: case i of a chunk is the same on
every run, so a failure names a case index that reproduces it.

After every chunk: the broker is alive, answers a fresh ApiVersions within seconds,
its peak RSS is bounded, every answer decodes as the API and version its request named,
and every produce the broker acknowledged reads back as a well-formed batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fuzz_target import FuzzEnv, FuzzRun, isolate_culprit, isolation_note

pytestmark = pytest.mark.fuzz

SEED = 20260901
CHUNKS = 30
CHUNK_SIZE = 500


@pytest.fixture(scope="module")
def frame_run(fuzz_env: FuzzEnv) -> Iterator[FuzzRun]:
    run = FuzzRun(fuzz_env.broker, fuzz_env.corpus, SEED, watchdog=fuzz_env.watchdog)
    yield run
    f = run.findings
    print(f"\nframe fuzzing: {f.cases} cases {dict(f.outcomes)}; engines {dict(f.engines)}; "
          f"{f.acknowledged_checked} acknowledged produces read back; "
          f"peak RSS {f.peak_rss_mb:.0f} MiB; slowest ApiVersions {f.slowest_answer_s:.2f}s")


def test_corpus_covers_every_client(fuzz_env: FuzzEnv) -> None:
    scenarios = {seed.scenario for seed in fuzz_env.corpus}
    assert {"confluent-producer-zstd", "confluent-idempotent", "confluent-group",
            "confluent-admin", "kafka-python", "kcat"} <= scenarios, scenarios
    assert {0, 1, 3, 8, 11, 14, 19, 20, 22} <= {seed.api[0] for seed in fuzz_env.corpus}


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_mutated_frames(frame_run: FuzzRun, chunk: int, tmp_path: Path) -> None:
    problems = frame_run.run_chunk(chunk * CHUNK_SIZE, CHUNK_SIZE)
    if any("exited" in p or "ApiVersions" in p or "RSS" in p for p in problems):
        culprit = isolate_culprit(frame_run.corpus, SEED, chunk * CHUNK_SIZE, CHUNK_SIZE, tmp_path)
        problems.append(isolation_note(culprit))
    assert not problems, "\n".join(problems[:20])

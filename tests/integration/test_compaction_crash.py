"""kill -9 while the log cleaner works: nothing acknowledged that should survive is lost,
and the log recovers (issue 11).

One broker process, one compacted topic, 20 rounds. Each round writes a seeded
workload over the same 100 keys (values and tombstones, every write acknowledged,
acks=all), writes fillers that roll the active segment, and SIGKILLs the broker (the
test watches the partition directory): every fourth round a random moment (0-3 ms) after
a `.cleaned` file appears, while the cleaned segments are written; every fourth round
(offset by two) as soon as a `.swap` file appears, inside Kafka's swap protocol; odd
rounds at a random moment (0-1 s) after the writes, wherever the cleaner then is. Then:

* the broker restarts with `log.cleaner.enable=false`, so recovery alone must finish or
  roll back an interrupted clean: no `.cleaned` or `.swap` file is left in the partition;
* a read from the start succeeds, offsets increase, every record read is a write made
  at that offset with that content, and each key's last record is its latest
  acknowledged write (a key whose latest write is a tombstone may also be absent);
* the broker restarts with the cleaner on for the next round.

The seed and the round are in every failure message (STROM_CRASH_SEED picks the seed).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from support.broker_process import BrokerProcess
from support.compaction import (
    CLEANER_BROKER,
    CompactedLog,
    Read,
    compact_topic_config,
    workload,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SEED = int(os.environ.get("STROM_CRASH_SEED", "4242"))
ROUNDS = 20
TOPIC = "crash-compact"
WATCH_S = 10.0
LEFTOVER = (".cleaned", ".swap")


def _leftovers(data: Path) -> list[str]:
    return sorted(f.name for d in data.glob(f"{TOPIC}-*") for f in d.iterdir()
                  if f.name.endswith(LEFTOVER))


def _wait_for(data: Path, suffixes: tuple[str, ...]) -> None:
    """Until the cleaner has a file with one of `suffixes` in the partition (or WATCH_S
    passed: the kill then lands wherever the cleaner is)."""
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        if any(name.endswith(suffixes) for name in _leftovers(data)):
            return
        time.sleep(0.0005)


def _check(log: CompactedLog, read: list[Read], where: str) -> None:
    offsets = [o for o, _, _ in read]
    assert offsets == sorted(set(offsets)), f"{where}: offsets out of order"
    for offset, key, value in read:
        assert log.writes.get(offset) == (key, value), (
            f"{where}: offset {offset} holds {key!r}={value!r:.40}, "
            f"written {log.writes.get(offset)!r:.60}")
    last_read = {key: (offset, value) for offset, key, value in read}
    for key, (offset, value) in log.latest().items():
        if value is None and key not in last_read:
            continue  # a tombstone past delete.retention.ms may be gone with its key
        assert last_read.get(key) == (offset, value), (
            f"{where}: key {key!r} reads as {last_read.get(key)!r:.60}, "
            f"its latest acknowledged write is offset {offset}")


def test_kill_9_during_cleaning_loses_no_acknowledged_survivor(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = tmp_path / "data"
    proc = BrokerProcess(data, overrides={**CLEANER_BROKER, "log.cleaner.backoff.ms": "50"})
    proc.start()
    log = CompactedLog(proc.bootstrap, TOPIC)
    log.create(compact_topic_config(delete_retention_ms=2_000))
    mid_clean = 0
    try:
        for round_ in range(ROUNDS):
            where = f"seed {SEED} round {round_}"
            log.produce(workload(SEED * 1000 + round_, 1_000, keys=100))
            log.add_fillers()
            if round_ % 4 == 0:
                _wait_for(data, LEFTOVER)
                time.sleep(rng.uniform(0.0, 0.003))
            elif round_ % 4 == 2:
                _wait_for(data, (".swap",))
            else:
                time.sleep(rng.uniform(0.0, 1.0))
            proc.kill()  # SIGKILL
            mid_clean += bool(_leftovers(data))
            proc.overrides["log.cleaner.enable"] = "false"
            proc.start()
            assert _leftovers(data) == [], f"{where}: recovery left {_leftovers(data)}"
            _check(log, log.read_all(), where)
            assert proc.stop() == 0, f"{where}: {proc.log_text()[-3000:]}"
            proc.overrides = {**CLEANER_BROKER, "log.cleaner.backoff.ms": "50"}
            proc.start()
    finally:
        proc.kill()
    assert mid_clean > 0, "no kill landed while a clean was under way: the test tested nothing"

"""Group coordinator load time: 10,000 groups, 1,000,000 offset commits, then a restart.

Standalone (never part of the test suite). The question it answers: how long a broker
that leads `__consumer_offsets` takes to become coordinator again after a restart, and
how many bytes it replays. Without compaction both grow with every commit ever made;
with the log cleaner they are bounded by the live state (one record per group, topic and
partition).

1. A `strom server` process on a fresh data dir; one topic of `--partitions` partitions.
2. `--groups` groups each commit offsets for every partition `--rounds` times (simple
   commits: generation -1, no member, as `kafka-consumer-groups --reset-offsets` or a
   consumer with manual assignment commits), round after round, so each key is written
   `--rounds` times and the last round is the live state. Commits are real OffsetCommit
   requests (v8) pipelined on a few raw connections: the broker's whole write path, with
   clients that cost little. Defaults: 10,000 x 10 rounds x 10 partitions = 1,000,000
   committed offsets (records in `__consumer_offsets`).
3. `--wait-clean`: the broker runs with `log.cleaner.backoff.ms=200`; the bench waits
   until the bytes of `__consumer_offsets` on disk stop falling (the cleaner finished).
   `--cleaner-off` runs with `log.cleaner.enable=false`, as before the cleaner existed.
4. The broker stops cleanly; the bytes of `__consumer_offsets` are counted (.log files, and
   everything in its directories).
5. The broker is started `--restarts` times in a fresh Python process each
   (`strom.testing.StromBroker` on the same data dir, the same `Broker`, its cleaner off so
   every restart loads the same log): the time of each
   partition load (`GroupCoordinator.load`, the replay into the group shard) is summed;
   the start-to-ready time is reported too. Then every group's offsets are fetched and
   checked against the last round.

`offsets.topic.segment.bytes` is lowered (`--segment-bytes`, default 1 MiB) so segments
roll: the cleaner never touches the active segment, and at 100 MiB (Kafka's default) this
workload (~100 MB over 50 partitions) would stay in one active segment per partition.
Both runs use the same setting, so only cleaning differs.

    python bench/group_load.py [--wait-clean | --cleaner-off] [--segment-bytes N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.broker_process import BrokerProcess, wait_until  # noqa: E402
from support.raw_client import RawClient, create_topic, make_request  # noqa: E402

TOPIC = "group-load"
OFFSETS = "__consumer_offsets"
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
COMMIT_VERSION = 8
WINDOW = 32  # requests in flight per connection (the broker queues up to 64)
CONNECTIONS = 4
LOAD_IN_PROGRESS, NOT_COORDINATOR, NOT_AVAILABLE = 14, 16, 15


def group_name(g: int) -> str:
    return f"bench-group-{g:05d}"


def commit_body(group: str, partitions: int, offset: int) -> Any:
    return make_request(OFFSET_COMMIT, COMMIT_VERSION, group_id=group,
                        generation_id_or_member_epoch=-1, member_id="",
                        group_instance_id=None, topics=[{"name": TOPIC, "partitions": [
                            {"partition_index": p, "committed_offset": offset + p,
                             "committed_leader_epoch": -1, "committed_metadata": None}
                            for p in range(partitions)]}])


def commit_errors(body: Any) -> list[int]:
    return [p.error_code for t in body.topics for p in t.partitions if p.error_code]


class Committer(threading.Thread):
    """Commits for its share of the groups, `WINDOW` requests in flight; records errors."""

    def __init__(self, bootstrap: str, groups: range, partitions: int, round_: int) -> None:
        super().__init__(daemon=True)
        self.client = RawClient(bootstrap, timeout=120)
        self.groups, self.partitions, self.round = groups, partitions, round_
        self.errors: list[tuple[str, list[int]]] = []

    def run(self) -> None:
        pending: list[str] = []
        for g in self.groups:
            group = group_name(g)
            self.client.send(OFFSET_COMMIT, COMMIT_VERSION,
                             commit_body(group, self.partitions, self.round * 1000))
            pending.append(group)
            if len(pending) >= WINDOW:
                self._read(pending.pop(0))
        for group in pending:
            self._read(group)
        self.client.close()

    def _read(self, group: str) -> None:
        errors = commit_errors(self.client.read_response(OFFSET_COMMIT, COMMIT_VERSION).body)
        if errors:
            self.errors.append((group, errors))


def commit_round(bootstrap: str, groups: int, partitions: int, round_: int) -> None:
    share = -(-groups // CONNECTIONS)
    threads = [Committer(bootstrap, range(i, min(i + share, groups)), partitions, round_)
               for i in range(0, groups, share)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [e for t in threads for e in t.errors]
    if failed:
        raise RuntimeError(f"round {round_}: {len(failed)} commit(s) failed, first {failed[0]}")


def coordinator_ready(bootstrap: str, partitions: int) -> bool:
    """One commit answered without a retriable coordinator error (the topic exists and
    every partition of it is loaded: a single broker loads them all at once)."""
    with RawClient(bootstrap) as raw:
        raw.request(FIND_COORDINATOR, 3, key="bench-probe", key_type=0)
        body = raw.request(OFFSET_COMMIT, COMMIT_VERSION,
                           commit_body("bench-probe", partitions, 0)).body
    return not commit_errors(body)


def offsets_bytes(data: Path) -> tuple[int, int]:
    """(bytes of .log files, bytes of every file) under the __consumer_offsets dirs."""
    logs = total = 0
    for d in data.glob(f"{OFFSETS}-*"):
        for f in d.iterdir():
            try:
                size = f.stat().st_size
            except FileNotFoundError:  # the cleaner swapped it meanwhile
                continue
            total += size
            logs += size if f.suffix == ".log" else 0
    return logs, total


def wait_cleaned(data: Path, settle_s: float, timeout_s: float) -> float:
    """Until the .log bytes have not fallen for `settle_s`; returns seconds waited."""
    t0 = time.monotonic()
    best, best_at = offsets_bytes(data)[0], time.monotonic()
    while time.monotonic() - best_at < settle_s and time.monotonic() - t0 < timeout_s:
        time.sleep(1.0)
        now = offsets_bytes(data)[0]
        if now < best:
            best, best_at = now, time.monotonic()
            print(f"  cleaning: {best / 1e6:.1f} MB of .log", flush=True)
    return time.monotonic() - t0


def measure_once(data: Path) -> dict[str, Any]:
    """Start the broker in a fresh interpreter (`--measure`) and read its timings."""
    out = subprocess.run([sys.executable, __file__, "--measure", str(data)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_in_process(data: Path) -> None:
    """The child: time each partition load inside the real broker, print one JSON line."""
    import re

    from strom.coordinator.group.coordinator import GroupCoordinator
    from strom.testing import StromBroker

    loads: list[float] = []
    build = GroupCoordinator._build

    def timed_build(self: GroupCoordinator, partition: int, timer: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return build(self, partition, timer)
        finally:
            loads.append(time.perf_counter() - t0)

    GroupCoordinator._build = timed_build  # type: ignore[method-assign]
    import logging

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    coordinator_log = logging.getLogger("strom.coordinator.group.coordinator")
    coordinator_log.setLevel(logging.INFO)
    coordinator_log.addHandler(Keep())
    t0 = time.perf_counter()
    # the cleaner stays off here: every restart then loads the same log, the one the
    # write phase left (a cleaner that ran between restarts would shrink it)
    broker = StromBroker(data_dir=data, keep_data=True,
                         properties={"log.cleaner.enable": "false"}).start()
    started = time.perf_counter() - t0
    try:
        groups = verify_offsets(broker.bootstrap_servers)
    finally:
        broker.stop()
    found = [re.search(r"(\d+) record\(s\), (\d+) group\(s\)", line) for line in lines]
    print(json.dumps({
        "start_s": started, "load_sum_s": sum(loads), "load_max_s": max(loads, default=0.0),
        "partitions": len(loads), "records": sum(int(m[1]) for m in found if m),
        "groups_loaded": sum(int(m[2]) for m in found if m), "groups_checked": groups,
    }))


def verify_offsets(bootstrap: str) -> int:
    """Every bench group's committed offsets are the last round's; returns groups seen."""
    expected = int(os.environ.get("GROUP_LOAD_EXPECT", "-1"))
    if expected < 0:
        return 0
    groups, partitions = (int(v) for v in os.environ["GROUP_LOAD_SHAPE"].split(","))
    with RawClient(bootstrap, timeout=120) as raw:
        for g in range(groups):
            body = raw.request(OFFSET_FETCH, 7, group_id=group_name(g), require_stable=False,
                               topics=[{"name": TOPIC,
                                        "partition_indexes": list(range(partitions))}]).body
            got = sorted((p.partition_index, p.committed_offset)
                         for t in body.topics for p in t.partitions)
            want = [(p, expected + p) for p in range(partitions)]
            if got != want:
                raise RuntimeError(f"{group_name(g)}: offsets {got[:3]}..., want {want[:3]}...")
    return groups


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="strom-group-load-")) / "data"
    overrides = {"offsets.topic.segment.bytes": str(args.segment_bytes),
                 "offsets.topic.replication.factor": "1", "strom.metrics.port": "-1"}
    if args.wait_clean:
        overrides["log.cleaner.backoff.ms"] = "200"
    if args.cleaner_off:
        overrides["log.cleaner.enable"] = "false"
    broker = BrokerProcess(data, overrides=overrides).start()
    result: dict[str, Any] = {"groups": args.groups, "rounds": args.rounds,
                              "cleaner": "off" if args.cleaner_off else "on",
                              "partitions_per_commit": args.partitions,
                              "segment_bytes": args.segment_bytes}
    try:
        with RawClient(broker.bootstrap) as raw:
            assert create_topic(raw, TOPIC, args.partitions).error_code == 0
        wait_until(lambda: coordinator_ready(broker.bootstrap, args.partitions), 120,
                   "the group coordinator is ready")
        t0 = time.perf_counter()
        for r in range(args.rounds):
            commit_round(broker.bootstrap, args.groups, args.partitions, r)
            print(f"  round {r + 1}/{args.rounds} committed "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        result["commit_s"] = time.perf_counter() - t0
        result["commits"] = args.groups * args.rounds * args.partitions
        result["bytes_before_clean"] = offsets_bytes(data)[0]
        if args.wait_clean:
            result["clean_wait_s"] = wait_cleaned(data, args.settle, args.clean_timeout)
    finally:
        code = broker.stop()
    if code != 0:
        raise RuntimeError(f"broker exited with {code}; log:\n{broker.log_text()[-3000:]}")
    result["log_bytes"], result["dir_bytes"] = offsets_bytes(data)
    os.environ["GROUP_LOAD_EXPECT"] = str((args.rounds - 1) * 1000)
    os.environ["GROUP_LOAD_SHAPE"] = f"{args.groups},{args.partitions}"
    runs = [measure_once(data) for _ in range(args.restarts)]
    result["restarts"] = runs
    for key in ("start_s", "load_sum_s", "load_max_s"):
        result[key] = statistics.median(r[key] for r in runs)
    result["records_replayed"] = runs[-1]["records"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--segment-bytes", type=int, default=1 << 20)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--wait-clean", action="store_true")
    parser.add_argument("--cleaner-off", action="store_true",
                        help="log.cleaner.enable=false: the run as before the cleaner")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds without the log shrinking that mean cleaning is done")
    parser.add_argument("--clean-timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure_in_process(args.measure)
        return
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['commits']:,} commits by {result['groups']:,} groups in "
          f"{result['commit_s']:.0f} s; __consumer_offsets .log bytes "
          f"{result['bytes_before_clean'] / 1e6:.1f} MB after writing, "
          f"{result['log_bytes'] / 1e6:.1f} MB at restart ({result['dir_bytes'] / 1e6:.1f} MB "
          f"with indexes and snapshots)")
    print(f"restart: {result['records_replayed']:,} records replayed; coordinator load "
          f"{result['load_sum_s']:.2f} s (slowest partition {result['load_max_s']:.3f} s); "
          f"start to ready {result['start_s']:.2f} s (medians of {args.restarts})")


if __name__ == "__main__":
    main()

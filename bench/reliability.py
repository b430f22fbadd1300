"""Reliability report: run the cluster fault schedule and write docs/reliability.md.

Starts a fresh ZooKeeper (Debian's package) and three Strom brokers on loopback ports,
creates a topic with replication factor 3 and min.insync.replicas=2, and runs an
idempotent acks=all producer and a tailing consumer while, one fault at a time:

1. the leader of each partition is killed with SIGKILL, then restarted;
2. another broker (not the controller) is paused with SIGSTOP for longer than the
   ZooKeeper session timeout, then resumed with SIGCONT;
3. the controller is killed with SIGKILL, then restarted.

Between faults it waits until every broker is back and every ISR is full. Afterwards it
reads every partition back and counts acknowledged, read, lost and duplicated records,
records the consumer saw that are not in the final log, and compares the three replicas'
logs on disk. For each fault it reports the time from the broker's death (the signal)
to the next acknowledged write on each partition it led.

The workload and the checks are the ones tests/cluster/test_failover.py runs
(tests/support/chaos.py); this script only adds the report.

    python bench/reliability.py [--rate 300] [--partitions 3] [--out docs/reliability.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import confluent_kafka  # noqa: E402

from bench.provenance import git_describe  # noqa: E402
from support import chaos  # noqa: E402
from support.cluster import Cluster, ZooKeeperServer, read_log, zookeeper_available  # noqa: E402

TOPIC = "reliability"


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t0 = time.time()
        self.load = os.getloadavg()[0]
        self.lines: list[tuple[float, str]] = []

    def log(self, what: str) -> None:
        now = time.time()
        self.lines.append((now, what))
        print(f"{now - self.t0:7.1f}s  {what}", flush=True)

    def execute(self, base: Path) -> dict[str, object]:
        args = self.args
        zk = ZooKeeperServer(base / "zk").start()
        cluster = Cluster(zk, base / "cluster", 3, session_timeout_ms=args.session_timeout_ms)
        try:
            cluster.start()
            self.log(f"ZooKeeper on {zk.connect}; brokers 1, 2, 3 on {cluster.bootstrap}")
            cluster.create_topic(TOPIC, args.partitions, 3, {"min.insync.replicas": "2"})
            self.log(f"topic {TOPIC}: {args.partitions} partitions, replication factor 3, "
                     "min.insync.replicas=2")
            return self._workload(cluster)
        finally:
            cluster.shutdown()
            zk.stop()

    def _workload(self, cluster: Cluster) -> dict[str, object]:
        args = self.args
        producer = chaos.AckingProducer(cluster.bootstrap, TOPIC, args.partitions, rate=args.rate)
        consumer = chaos.TailingConsumer(cluster.bootstrap, TOPIC, args.partitions)
        producer.start()
        consumer.start()
        self.log(f"producer (idempotent, acks=all, {args.rate:.0f} records/s) and tailing "
                 "consumer started")
        try:
            chaos.wait_until(lambda: producer.ack_count() > 200, 60, "first acknowledgements")
            schedule = chaos.FaultSchedule(cluster, TOPIC, args.partitions, producer, self.log)
            faults = schedule.run()
            time.sleep(2)
        finally:
            producer.stop()
        self.log(f"producer stopped: {producer.sent} sent, {len(producer.acked)} acknowledged, "
                 f"{len(producer.failed)} failed")
        ends = chaos.end_offsets(cluster.bootstrap, TOPIC, args.partitions)
        consumer.finish(ends)
        final = chaos.read_all(cluster.bootstrap, TOPIC, args.partitions)
        verdict = chaos.verify(producer.acked, final, consumer.seen, len(producer.failed))
        self.log(verdict.summary())
        cluster.wait_for_isr(TOPIC, range(args.partitions), cluster.brokers)
        cluster.shutdown()
        replicas_equal = all(
            [(r.offset, r.value) for r in read_log(cluster.data_dir(b), TOPIC, p)]
            == [(s.offset, s.value.encode()) for s in final[p]]
            for p in range(args.partitions) for b in cluster.brokers)
        self.log(f"replica logs on disk identical to the leader's: {replicas_equal}")
        return {"producer": producer, "consumer": consumer, "faults": faults,
                "verdict": verdict, "replicas_equal": replicas_equal, "ends": ends}


def render(run: Run, result: dict[str, object], elapsed: float) -> str:
    args = run.args
    producer: chaos.AckingProducer = result["producer"]  # type: ignore[assignment]
    consumer: chaos.TailingConsumer = result["consumer"]  # type: ignore[assignment]
    faults: list[chaos.Fault] = result["faults"]  # type: ignore[assignment]
    verdict: chaos.Verdict = result["verdict"]  # type: ignore[assignment]
    ok = verdict.ok and result["replicas_equal"] and not producer.failed and not producer.fatal
    started = dt.datetime.fromtimestamp(run.t0, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [
        "# Reliability under broker failures",
        "",
        "Generated by `python bench/reliability.py` — do not edit by hand. The same workload "
        "and checks run in `tests/cluster/test_failover.py`.",
        "",
        f"**Result: {'PASS' if ok else 'FAIL'}** — {verdict.acknowledged} records acknowledged, "
        f"{verdict.read} read back, {len(verdict.lost)} lost, {len(verdict.duplicated)} "
        f"duplicated.",
        "",
        "## Setup",
        "",
        f"- Run {started}, {elapsed:.0f} s, Strom `{git_describe()}`, Python "
        f"{platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs "
        f"({platform.machine()}), load average {run.load:.1f} at the start (other work "
        "on the machine slows failover; the timings are not benchmarks).",
        "- ZooKeeper 3.8 (Debian package), standalone, tickTime 500 ms; three Strom brokers "
        f"(ids 1, 2, 3) on loopback, `zookeeper.session.timeout.ms={args.session_timeout_ms}`.",
        f"- Topic `{TOPIC}`: {args.partitions} partitions, replication factor 3, "
        "`min.insync.replicas=2`, `unclean.leader.election.enable=false` (default).",
        f"- Producer: confluent-kafka {confluent_kafka.version()} (librdkafka "
        f"{confluent_kafka.libversion()[0]}), `enable.idempotence=true`, `acks=all`, "
        f"{args.rate:.0f} records/s round robin over the partitions, unique values, "
        "`message.timeout.ms=120000`, `request.timeout.ms=10000`, `socket.timeout.ms=10000` "
        "(librdkafka's 60 s default would let a Metadata request to a paused broker stall "
        "failover for a minute).",
        "- Consumer: confluent-kafka, all partitions assigned from the beginning, reading "
        "throughout the run.",
        "",
        "## Fault schedule",
        "",
        "Times are UTC. *Next ack* is, for each partition the broker led when the fault "
        "began, the time from the signal to the acknowledgement of the first record the "
        "producer sent after it. It includes the ZooKeeper session timeout "
        "that detects a dead or paused broker, the election, and the client finding the new "
        "leader. *Healed* is when every broker was live again and every ISR full.",
        "",
        "| # | fault | broker | signal at | led partitions | new leaders | next ack | healed at |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, f in enumerate(faults, 1):
        leaders = ", ".join(f"p{p}→{b}" for p, b in sorted(f.new_leaders.items())) or "—"
        recovery = ", ".join(f"p{p} {s:.2f} s" for p, s in sorted(f.recovery_s.items())) or "—"
        out.append(f"| {i} | {f.kind} ({f.detail}) | {f.broker} | {_utc(f.started)} | "
                   f"{', '.join(f'p{p}' for p in f.led) or '—'} | {leaders} | {recovery} | "
                   f"{_utc(f.ended)} |")
    all_recovery = [s for f in faults for s in f.recovery_s.values()]
    if all_recovery:
        out += ["", f"Time from a leader's death to the next acknowledged write: min "
                f"{min(all_recovery):.2f} s, max {max(all_recovery):.2f} s over "
                f"{len(all_recovery)} partition failovers."]
    out += [
        "",
        "## Results",
        "",
        "| measure | count |",
        "|---|---|",
        f"| records sent | {producer.sent} |",
        f"| records acknowledged | {verdict.acknowledged} |",
        f"| sends failed (reported to the producer) | {len(producer.failed)} |",
        f"| records read back (all partitions, below the high watermark) | {verdict.read} |",
        f"| acknowledged records lost | {len(verdict.lost)} |",
        f"| records duplicated in the log | {len(verdict.duplicated)} |",
        f"| acknowledged at an offset holding another record | {len(verdict.misplaced)} |",
        f"| acknowledged records out of produce order | {len(verdict.out_of_order)} |",
        f"| records seen by the tailing consumer | {len(consumer.seen)} |",
        f"| of those, not in the final log (phantom reads) | {len(verdict.phantom)} |",
        f"| errors reported to the tailing consumer | {len(consumer.errors)} |",
        f"| replica logs on disk identical to the leader's | "
        f"{'yes' if result['replicas_equal'] else 'NO'} |",
        "",
        "Per partition (records read): " + ", ".join(
            f"p{p} {n}" for p, n in sorted(result["ends"].items())) + ".",  # type: ignore[attr-defined]
        "",
        "## Timeline",
        "",
        "```",
    ]
    timeline = list(run.lines)
    for i, f in enumerate(faults, 1):
        timeline += [(t, f"fault {i}: {what}") for t, what in f.events]
    out += [f"{_utc(t)}  {what}" for t, what in sorted(timeline, key=lambda e: e[0])]
    out.append("```")
    if consumer.errors:
        out += ["", "Errors the tailing consumer reported (first ten):", ""]
        out += [f"- `{e}`" for e in consumer.errors[:10]]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=300.0, help="records per second")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    ap.add_argument("--keep", action="store_true", help="keep the ZooKeeper and broker logs")
    args = ap.parse_args()
    client_log = logging.getLogger("librdkafka")  # connection refused etc.: expected here
    client_log.addHandler(logging.NullHandler())
    client_log.propagate = False
    reason = zookeeper_available()
    if reason is not None:
        print(f"cannot run ZooKeeper: {reason}", file=sys.stderr)
        return 2
    run = Run(args)
    work = Path(tempfile.mkdtemp(prefix="strom-reliability-"))
    try:
        result = run.execute(work)
    except BaseException:
        print(f"run failed; ZooKeeper and broker logs kept in {work}", file=sys.stderr)
        raise
    if args.keep:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    text = render(run, result, time.time() - run.t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    old = args.out.read_text() if args.out.exists() else ""
    if "<!-- fuzz:begin" in old:  # bench/fuzz.py's section survives a regeneration
        text = text.rstrip("\n") + "\n\n" + old[old.index("<!-- fuzz:begin"):]
    args.out.write_text(text)
    print(f"wrote {args.out}")
    verdict: chaos.Verdict = result["verdict"]  # type: ignore[assignment]
    return 0 if verdict.ok and result["replicas_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())

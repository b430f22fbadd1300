"""The broker under fuzzing and the oracles checked between cases.

A fuzz case "passes" when nothing bad is observable afterwards, so the oracles are what
matter:

- the broker process is alive;
- it answers a fresh ApiVersions within a few seconds (no hang, no wedged event loop);
- its peak resident memory (VmHWM in /proc/<pid>/status, which catches a spike between
  two samples) stays under a bound;
- every record a real client had acknowledged, before and during the fuzzing, is still
  readable at its offset with its value (`AckedLedger`);
- it stops cleanly on SIGTERM, starts again after SIGTERM and after SIGKILL, and the
  acknowledged records are still there.

`FuzzRun` runs frame cases from `support.fuzz_frames` on a few worker threads (each case
on its own connection) and checks the oracles after every chunk of cases.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.broker_process import BrokerProcess
from support.fuzz_batches import Target, prepare_target
from support.fuzz_decode import acknowledged, check_stored, decode_answer
from support.fuzz_frames import Case, Outcome, Seed, corpus_topics, fire, load_corpus, make_case
from support.raw_client import RawClient, create_topic

RSS_LIMIT_MB = 400
ANSWER_WITHIN_S = 5.0
ACKED_TOPIC = "fuzz-acked"
ACKED_PARTITIONS = 2


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def api_versions_latency(port: int, timeout: float = ANSWER_WITHIN_S) -> float | None:
    """Seconds a fresh connection takes to get an ApiVersions v0 answer; None if it does
    not come within `timeout` (refused, closed or silent)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">ihhih", 10, 18, 0, 777, -1))
            head = b""
            while len(head) < 10:
                chunk = sock.recv(10 - len(head))
                if not chunk:
                    return None
                head += chunk
            _size, cid, error = struct.unpack(">iih", head)
            if cid != 777 or error != 0:
                return None
    except OSError:
        return None
    return time.monotonic() - started


class RssWatchdog:
    """SIGKILLs the broker if its RSS passes `kill_above_mb`.

    The oracle bound (RSS_LIMIT_MB) is checked between chunks; this guards the machine in
    between: a request that makes the broker allocate without bound (a 33-million
    partition CreateTopics did, at 5 GB and rising) must not take the host down with it.
    `kills` lists what it did."""

    def __init__(self, broker: BrokerProcess, kill_above_mb: float = 1024,
                 interval: float = 0.1) -> None:
        self.broker = broker
        self.kill_above_mb = kill_above_mb
        self.interval = interval
        self.kills: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-watchdog", daemon=True)

    def start(self) -> RssWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            proc = self.broker.proc
            if proc is None or proc.poll() is not None:
                continue
            try:
                rss, _ = memory_mb(proc.pid)
            except OSError:
                continue
            if rss > self.kill_above_mb:
                proc.kill()
                self.kills.append(f"broker pid {proc.pid} killed at RSS {rss:.0f} MiB "
                                  f"(watchdog limit {self.kill_above_mb:.0f} MiB)")


# --- acknowledged data -----------------------------------------------------------------------


@dataclass
class AckedLedger:
    """Records a real client (confluent-kafka, idempotent, acks=all) had acknowledged,
    by (partition, offset), and the check that they are all still there."""

    bootstrap: str
    topic: str = ACKED_TOPIC
    acked: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sent: int = 0

    def _producer(self) -> Any:
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5, "compression.type": "lz4",
                         "message.timeout.ms": 60_000})

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked[(msg.partition(), msg.offset())] = msg.value()
        else:
            self.failed.append(str(err))

    def _produce(self, producer: Any, n: int) -> None:
        for _ in range(n):
            self._sent += 1
            value = f"acked-{self._sent}-{random.getrandbits(48):012x}".encode()
            producer.produce(self.topic, value, partition=self._sent % ACKED_PARTITIONS,
                             on_delivery=self._on_delivery)

    def write(self, n: int) -> None:
        """Write `n` records now and wait for every acknowledgement."""
        producer = self._producer()
        self._produce(producer, n)
        assert producer.flush(60) == 0, "acknowledged writes did not complete"

    def start_background(self, per_second: int = 20) -> None:
        """Keep writing while the fuzzing runs (a few records every 1/10 s)."""
        def run() -> None:
            producer = self._producer()
            while not self._stop.wait(0.1):
                self._produce(producer, max(1, per_second // 10))
                producer.poll(0)
            producer.flush(60)

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="acked-writer", daemon=True)
        self._thread.start()

    def stop_background(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(90)
            self._thread = None

    def verify(self, timeout: float = 60.0) -> list[str]:
        """Read the topic back; one line per acknowledged record missing or different."""
        from confluent_kafka import Consumer, TopicPartition

        want = dict(self.acked)
        last = {p: max((o for (q, o) in want if q == p), default=-1)
                for p in range(ACKED_PARTITIONS)}
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fuzz-verify",
                             "enable.auto.commit": False, "fetch.error.backoff.ms": 100})
        found: dict[tuple[int, int], bytes] = {}
        try:
            consumer.assign([TopicPartition(self.topic, p, 0) for p in range(ACKED_PARTITIONS)])
            deadline = time.monotonic() + timeout
            done = {p for p, o in last.items() if o < 0}
            while len(done) < ACKED_PARTITIONS and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error() is not None:
                    continue
                partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
                found[(partition, offset)] = bytes(msg.value() or b"")
                if offset >= last[partition]:
                    done.add(partition)
        finally:
            consumer.close()
        return [f"p{p}@{o}: acknowledged {v!r}, read {found.get((p, o))!r}"
                for (p, o), v in sorted(want.items()) if found.get((p, o)) != v]


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Findings:
    """What a fuzz run observed; `problems` holds every oracle violation, in order."""

    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    engines: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    hangs: int = 0
    wrong_correlation: int = 0
    acknowledged_checked: int = 0  # fuzzed produces acknowledged, read back and parsed
    peak_rss_mb: float = 0.0
    slowest_answer_s: float = 0.0
    recovery_restarts: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, case: Case, outcome: Outcome) -> None:
        self.cases += 1
        self.outcomes[outcome.kind] += 1
        self.engines[case.engine.split("+")[0]] += 1
        if outcome.wrong_correlation:
            self.wrong_correlation += 1
            self.problems.append(f"case {case.index} ({case.engine} of {case.scenario} "
                                 f"api {case.api}): answered with another correlation id")


@dataclass
class FuzzRun:
    """Frame cases against one live broker, oracles after each chunk."""

    broker: BrokerProcess
    corpus: list[Seed]
    seed: int
    workers: int = 4
    read_timeout: float = 1.0
    rss_limit_mb: float = RSS_LIMIT_MB
    findings: Findings = field(default_factory=Findings)
    on_problem: Callable[[str], None] | None = None
    watchdog: RssWatchdog | None = None
    _reported_peak: dict[int, float] = field(default_factory=dict)

    def _problem(self, text: str) -> None:
        self.findings.problems.append(text)
        if self.on_problem is not None:
            self.on_problem(text)

    def cases(self, start: int, n: int) -> list[Case]:
        """Cases start..start+n-1 of this run; case i depends only on (seed, i), so any
        one is reproduced by its index alone."""
        return [make_case(i, self.corpus, random.Random(f"{self.seed}:{i}"))
                for i in range(start, start + n)]

    def run_chunk(self, start: int, n: int) -> list[str]:
        """Fire `n` cases from `start`, then check the oracles; returns this chunk's problems."""
        before = len(self.findings.problems)
        if self.ensure_running() is not None:
            return self.findings.problems[before:]
        chunk = self.cases(start, n)
        with ThreadPoolExecutor(self.workers) as pool:
            outcomes = list(pool.map(lambda c: fire(self.broker.port, c.payload,
                                                    self.read_timeout), chunk))
        for case, outcome in zip(chunk, outcomes, strict=True):
            self.findings.add(case, outcome)
        if self.check_health(f"after cases {chunk[0].index}..{chunk[-1].index}"):
            for case, outcome in zip(chunk, outcomes, strict=True):
                if outcome.kind == "answered":
                    self._check_answer(case, outcome)
        return self.findings.problems[before:]

    def _check_answer(self, case: Case, outcome: Outcome) -> None:
        """The answer fits its request's schema; what a Produce acknowledged reads back."""
        where = f"case {case.index} ({case.engine} of {case.scenario} api {case.api})"
        try:
            body = decode_answer(case.payload, outcome.response)
        except Exception as exc:  # noqa: BLE001 - any decode failure is the finding
            self._problem(f"{where}: answer does not decode: {exc!r}"[:500])
            return
        if struct.unpack_from(">h", case.payload, 4)[0] != 0:
            return
        for topic, partition, offset in acknowledged(body):
            self.findings.acknowledged_checked += 1
            problem = check_stored(self.broker.bootstrap, topic, partition, offset)
            if problem is not None:
                self._problem(f"{where}: {problem}")

    def ensure_running(self) -> str | None:
        """Before a chunk: a dead or hung broker (already reported) is SIGKILLed and
        started again on the same data, so later cases still test something. Returns a
        problem if it cannot be started (the log tail says why)."""
        if self.broker.is_alive() and api_versions_latency(self.broker.port) is not None:
            return None
        self.broker.kill()
        self.findings.recovery_restarts += 1
        try:
            self.broker.start()
        except RuntimeError as exc:
            text = f"broker does not start again: {str(exc)[-1500:]}"
            self._problem(text)
            return text
        return None

    def check_health(self, when: str) -> bool:
        """Alive, answering, memory bounded; records a crash or hang as a problem."""
        if not self.broker.is_alive():
            self.findings.crashes += 1
            code = self.broker.proc.returncode if self.broker.proc else None
            killed = f" ({self.watchdog.kills[-1]})" if self.watchdog and self.watchdog.kills else ""
            self._problem(f"{when}: broker exited with {code}{killed}")
            return False
        latency = api_versions_latency(self.broker.port)
        if latency is None:
            self.findings.hangs += 1
            self._problem(f"{when}: no ApiVersions answer within {ANSWER_WITHIN_S}s")
            return False
        self.findings.slowest_answer_s = max(self.findings.slowest_answer_s, latency)
        assert self.broker.proc is not None
        _, peak = memory_mb(self.broker.proc.pid)
        self.findings.peak_rss_mb = max(self.findings.peak_rss_mb, peak)
        # VmHWM never falls: report a process's excess once, and again only if it grows
        reported = self._reported_peak.get(self.broker.proc.pid, self.rss_limit_mb)
        if peak > reported:
            self._reported_peak[self.broker.proc.pid] = peak
            self._problem(f"{when}: peak RSS {peak:.0f} MiB above {self.rss_limit_mb} MiB")
            return False
        return True


@dataclass
class FuzzEnv:
    """A broker under fuzzing, the real client writing to it, and what must not change."""

    broker: BrokerProcess
    ledger: AckedLedger
    target: Target
    corpus: list[Seed] = field(repr=False)
    watchdog: RssWatchdog
    # high watermark each corrupt-batch target partition must keep, across restarts too
    watermarks: dict[tuple[str, int], int] = field(default_factory=dict)


CORRUPT_TOPIC = "fuzz-corrupt"


def setup_env(broker: BrokerProcess, acked_before: int = 200) -> FuzzEnv:
    """On a started broker: the corpus topics, the corrupt-batch target (and
    `__consumer_offsets`), `acked_before` acknowledged records, a real client writing in
    the background, and the RSS watchdog."""
    create_topics(broker.bootstrap, {**corpus_topics(), ACKED_TOPIC: ACKED_PARTITIONS})
    target = prepare_target(broker.bootstrap, CORRUPT_TOPIC)
    ledger = AckedLedger(broker.bootstrap)
    ledger.write(acked_before)
    ledger.start_background()
    return FuzzEnv(broker, ledger, target, load_corpus(), RssWatchdog(broker).start())


def teardown_env(env: FuzzEnv) -> int | None:
    env.ledger.stop_background()
    env.watchdog.stop()
    return env.broker.stop()


def create_topics(bootstrap: str, topics: dict[str, int],
                  configs: dict[str, dict[str, str]] | None = None) -> None:
    """Create topics (partitions by name) directly; ones that exist are fine."""
    with RawClient(bootstrap) as raw:
        for name, partitions in topics.items():
            result = create_topic(raw, name, partitions, (configs or {}).get(name))
            assert result.error_code in (0, 36), f"create {name}: error {result.error_code}"


def _state(broker: BrokerProcess, rss_limit_mb: float) -> str | None:
    """What is wrong with the broker right now: dead, above the memory bound, or not
    answering a fresh ApiVersions; None if nothing is."""
    if not broker.is_alive() or broker.proc is None:
        return "dead"
    peak = memory_mb(broker.proc.pid)[1]
    if peak > rss_limit_mb:
        return f"at peak RSS {peak:.0f} MiB"
    return None if api_versions_latency(broker.port) is not None else "not answering"


def _watch(broker: BrokerProcess, rss_limit_mb: float, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = _state(broker, rss_limit_mb)
        if state is not None:
            return state
        time.sleep(0.25)
    return None


def _alone(corpus: list[Seed], case: Case, work_dir: Path, rss_limit_mb: float,
           watch_s: float = 5.0) -> str | None:
    """Fire one case at a fresh broker and watch it for `watch_s`: what goes wrong, if
    anything (work a request starts may go on after its answer, or its silence)."""
    broker = BrokerProcess(work_dir / f"alone-{case.index}").start()
    watchdog = RssWatchdog(broker).start()
    try:
        create_topics(broker.bootstrap, corpus_topics())
        fire(broker.port, case.payload)
        return _watch(broker, rss_limit_mb, watch_s)
    finally:
        watchdog.stop()
        broker.kill()


NO_CULPRIT = ("no case of the chunk, replayed in order on a fresh broker, reproduces it "
              "(work begun by an earlier chunk, or concurrency)")


def isolation_note(culprit: str | None) -> str:
    return f"replayed one at a time: {culprit or NO_CULPRIT}"


def isolate_culprit(corpus: list[Seed], seed: int, start: int, n: int, work_dir: Path,
                    rss_limit_mb: float = RSS_LIMIT_MB) -> str | None:
    """Pin a chunk that failed under concurrency to one reproducible case.

    Replays cases start..start+n-1 one at a time on a fresh broker until it is dead,
    above the memory bound or not answering, then fires that case alone at another
    fresh broker to see whether it does so by itself (None if no case of the chunk
    reproduces the failure)."""
    broker = BrokerProcess(work_dir / f"isolate-{seed}-{start}").start()
    watchdog = RssWatchdog(broker).start()
    try:
        create_topics(broker.bootstrap, corpus_topics())
        run = FuzzRun(broker, corpus, seed)
        for case in run.cases(start, n):
            outcome = fire(broker.port, case.payload, run.read_timeout)
            state = _state(broker, rss_limit_mb)
            if state is None and outcome.kind == "silent":  # may still be at work: watch it
                state = _watch(broker, rss_limit_mb, 2.0)
            if state is not None:
                break
        else:
            return None
    finally:
        watchdog.stop()
        broker.kill()
    alone = _alone(corpus, case, work_dir, rss_limit_mb)
    verdict = (f"alone it leaves a fresh broker {alone}" if alone else
               "alone it does not: earlier cases of the chunk take part")
    return (f"case {case.index} of seed {seed} ({case.engine} of a {case.scenario} frame, "
            f"api {case.api}, {outcome.kind}) leaves the broker {state}; {verdict}; "
            f"bytes: {case.payload[:96].hex()}")

"""Fuzz one live Strom broker for N minutes and write the result into docs/reliability.md.

The engines and oracles are the CI fuzz suite's (tests/fuzz, tests/support/fuzz_*.py),
run for longer and with a random seed:

- frame cases: frames recorded from real clients (tests/fuzz/corpus), mutated — bit
  flips, boundary values, length and size lies, truncation, splices, record batches
  changed and re-signed with a valid CRC — fired 500 at a time on 4 connections;
- every fifth chunk, the whole corrupt-batch corpus (valid-CRC batches with lying
  counts and lengths, garbage and truncated compressed payloads, 1 GiB decompression
  bombs, producer and transaction lies, writes to `__consumer_offsets`), each built
  from fresh random bytes;
- at a third and two thirds of the run, and at the end: the acknowledged data check,
  then a SIGTERM restart and a SIGKILL restart, each followed by the check again.

Throughout, a confluent-kafka idempotent producer writes to `fuzz-acked`. After every
chunk: the broker is alive, answers ApiVersions within 5 s, its peak RSS stays under
400 MiB, every answer decodes as its request's API and version, and what a fuzzed
produce got acknowledged reads back as a well-formed batch. A crash or hang is counted,
and the broker is SIGKILLed and started again on the same data so the run goes on; a
watchdog SIGKILLs it above 1 GiB RSS.

Every frame case is reproducible from the seed and its index:

    python bench/fuzz.py [--minutes 5] [--seed S] [--out docs/reliability.md]
    python bench/fuzz.py --show SEED:INDEX     # print one case (engine, seed frame, bytes)

Only the section between the fuzz markers in the output file is replaced.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench.provenance import git_describe  # noqa: E402
from support.broker_process import BrokerProcess  # noqa: E402
from support.fuzz_batches import corrupt_cases, run_case  # noqa: E402
from support.fuzz_frames import load_corpus, make_case  # noqa: E402
from support.fuzz_target import (  # noqa: E402
    RSS_LIMIT_MB,
    FuzzEnv,
    FuzzRun,
    api_versions_latency,
    isolate_culprit,
    isolation_note,
    setup_env,
    teardown_env,
)
from support.raw_client import RawClient, high_watermark  # noqa: E402

BEGIN = "<!-- fuzz:begin (written by bench/fuzz.py; the rest of this file is not) -->"
END = "<!-- fuzz:end -->"
CHUNK = 500
CORRUPT_EVERY = 5  # chunks
SEVERE = ("exited", "ApiVersions", "RSS")  # problems worth pinning to one case
MAX_ISOLATIONS = 5  # each replays a chunk on fresh brokers: seconds of CPU


@dataclass
class Tally:
    """What the run did besides frame cases."""

    corrupt_sent: int = 0
    corrupt_wrong: dict[str, str] = field(default_factory=dict)  # case name -> last finding
    checks: list[tuple[str, int, int]] = field(default_factory=list)  # (when, acked, lost)
    restarts: dict[str, int] = field(default_factory=lambda: {"SIGTERM": 0, "SIGKILL": 0})
    restart_problems: list[str] = field(default_factory=list)
    watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    watchdog_kills: int = 0


def _corrupt_round(env: FuzzEnv, tally: Tally, rng: random.Random, log: list[str]) -> None:
    for case in corrupt_cases():
        try:
            result = run_case(env.broker.bootstrap, case, env.target, seed=rng.getrandbits(32))
        except Exception as exc:  # noqa: BLE001 - the broker went away mid-case; the health check says more
            tally.corrupt_wrong[case.name] = f"{case.name}: {exc!r}"[:300]
            return
        tally.corrupt_sent += 1
        topic = "__consumer_offsets" if case.target == "offsets" else env.target.topic
        part = env.target.offsets_partition if case.target == "offsets" else env.target.partition
        tally.watermarks[(topic, part)] = result.hw_after
        if not result.ok:
            if case.name not in tally.corrupt_wrong:
                log.append(f"corrupt batch: {result.describe()}")
            tally.corrupt_wrong[case.name] = result.describe()


def _verify(env: FuzzEnv, tally: Tally, when: str, log: list[str]) -> None:
    env.ledger.stop_background()
    lost = env.ledger.verify()
    tally.checks.append((when, len(env.ledger.acked), len(lost)))
    for line in lost[:5]:
        log.append(f"{when}: acknowledged record lost or changed: {line}")
    with RawClient(env.broker.bootstrap) as client:
        for (topic, part), hw in tally.watermarks.items():
            now = high_watermark(client, topic, part)
            if now != hw:
                log.append(f"{when}: {topic}-{part} high watermark {hw} -> {now} "
                           f"(a corrupt batch reappeared?)")
    env.ledger.start_background()


def _restarts(env: FuzzEnv, tally: Tally, log: list[str]) -> bool:
    """Verify, SIGTERM + start, verify, SIGKILL + start, verify; False if a start failed."""
    _verify(env, tally, "before restarts", log)
    for how in ("SIGTERM", "SIGKILL"):
        env.ledger.stop_background()
        if how == "SIGTERM":
            code = env.broker.stop()
            if code != 0:
                tally.restart_problems.append(f"SIGTERM: broker exited {code}")
        else:
            env.broker.kill()
        try:
            env.broker.start()
        except RuntimeError as exc:
            tally.restart_problems.append(f"start after {how} failed: {str(exc)[-800:]}")
            return False
        tally.restarts[how] += 1
        if api_versions_latency(env.broker.port) is None:
            tally.restart_problems.append(f"after {how}: no ApiVersions answer")
        _verify(env, tally, f"after {how} restart", log)
    return True


def run(minutes: float, seed: int, workers: int) -> tuple[FuzzRun, Tally, list[str], float]:
    work = Path(tempfile.mkdtemp(prefix="strom-fuzz-"))
    broker = BrokerProcess(work / "data").start()
    env = setup_env(broker)
    log: list[str] = []
    fuzz = FuzzRun(broker, env.corpus, seed, workers=workers, watchdog=env.watchdog,
                   on_problem=lambda text: log.append(text))
    tally = Tally()
    rng = random.Random(seed)
    started = time.monotonic()
    deadline = started + minutes * 60
    restart_at = [started + minutes * 20, started + minutes * 40]
    chunk = isolations = 0
    try:
        while time.monotonic() < deadline:
            problems = fuzz.run_chunk(chunk * CHUNK, CHUNK)
            if any(word in p for p in problems for word in SEVERE) and isolations < MAX_ISOLATIONS:
                isolations += 1
                culprit = isolate_culprit(env.corpus, seed, chunk * CHUNK, CHUNK, work)
                log.append(isolation_note(culprit))
            chunk += 1
            if chunk % CORRUPT_EVERY == 0:
                _corrupt_round(env, tally, rng, log)
            if restart_at and time.monotonic() >= restart_at[0]:
                restart_at.pop(0)
                fuzz.ensure_running()
                if not _restarts(env, tally, log):
                    break
            print(f"{(time.monotonic() - started) / 60:5.1f} min: {fuzz.findings.cases} cases, "
                  f"{len(fuzz.findings.problems)} problems", flush=True)
        else:
            fuzz.ensure_running()
            _restarts(env, tally, log)
    finally:
        tally.watchdog_kills = len(env.watchdog.kills)
        teardown_env(env)
        shutil.rmtree(work, ignore_errors=True)
    return fuzz, tally, log, time.monotonic() - started


def _verdict(fuzz: FuzzRun, tally: Tally, log: list[str]) -> str:
    f = fuzz.findings
    lost = sum(lost for _, _, lost in tally.checks)
    bad = (f.crashes or f.hangs or f.wrong_correlation or tally.corrupt_wrong or lost
           or tally.restart_problems or f.peak_rss_mb > RSS_LIMIT_MB or log)
    return "FAIL" if bad else "PASS"


def _peak(fuzz: FuzzRun, tally: Tally) -> str:
    text = f"{fuzz.findings.peak_rss_mb:.0f} MiB"
    kills = tally.watchdog_kills
    return text + (f" (and {kills} broker(s) killed by the watchdog above 1 GiB)" if kills else "")


def _checks(tally: Tally) -> str:
    lost = sum(n for _, _, n in tally.checks)
    last = tally.checks[-1] if tally.checks else ("none", 0, 0)
    return (f"{len(tally.checks)} checks, {lost} records lost or changed in any; at the last "
            f"({last[0]}) {last[1] - last[2]} of {last[1]} read back identical")


def render(fuzz: FuzzRun, tally: Tally, log: list[str], elapsed: float, seed: int,
           minutes: float) -> str:
    f = fuzz.findings
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    last_check = tally.checks[-1] if tally.checks else ("none", 0, 0)
    lost = sum(lost for _, _, lost in tally.checks)
    corrupt_ok = len(corrupt_cases()) - len(tally.corrupt_wrong)
    out = [
        BEGIN,
        "## Fuzzing",
        "",
        f"Generated by `python bench/fuzz.py --minutes {minutes:g}`; the CI suite "
        "`pytest -m fuzz tests/fuzz` runs the same engines and oracles, bounded by case count.",
        "",
        f"**Result: {_verdict(fuzz, tally, log)}** — {f.cases + tally.corrupt_sent} cases, "
        f"{f.crashes} crashes, {f.hangs} hangs, peak RSS {_peak(fuzz, tally)}, "
        f"{last_check[1]} acknowledged records verified ({lost} lost).",
        "",
        f"- Run {now}, {elapsed / 60:.1f} min, seed {seed} (reproduce one case with "
        f"`python bench/fuzz.py --show {seed}:INDEX`), Strom `{git_describe()}`, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; one broker, "
        f"4 connections firing at once.",
        "- Corpus: frames recorded from confluent-kafka, kafka-python and kcat "
        "(`tests/fuzz/corpus`, `tests/fuzz/record_corpus.py`); corrupt batches from "
        "`tests/support/fuzz_batches.py`, whose expected answers are Apache Kafka 4.4's "
        "(`tests/fuzz/test_fuzz_kafka_oracle.py`).",
        "",
        "What runs: frame cases are requests recorded from real clients, mutated (bit flips, "
        "boundary values, length and size lies, truncation, splices, record batches changed "
        "and re-signed with a valid CRC-32C), fired 500 at a time on 4 connections; every "
        "fifth chunk the whole corrupt-batch corpus goes out with fresh random bytes; at a "
        "third, two thirds and the end, a SIGTERM and a SIGKILL restart. A real client "
        "(confluent-kafka, idempotent, acks=all) writes throughout. Oracles after every "
        "chunk: alive; a fresh ApiVersions answered within 5 s; peak RSS under "
        f"{RSS_LIMIT_MB} MiB; every answer decodes as its request's API and version; what a "
        "fuzzed produce got acknowledged reads back and parses strictly; corrupt batches are "
        "answered as Kafka answers them and move no high watermark; the acknowledged records "
        "read back identical after each restart. A crash or hang is pinned to one case by "
        "replaying its chunk one case at a time on a fresh broker.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| frame cases | {f.cases} |",
        f"| outcomes | {', '.join(f'{k} {v}' for k, v in sorted(f.outcomes.items()))} |",
        f"| engines | {', '.join(f'{k} {v}' for k, v in sorted(f.engines.items()))} |",
        f"| fuzzed produces acknowledged, read back and parsed strictly | {f.acknowledged_checked} |",
        f"| corrupt batches sent (rounds of {len(corrupt_cases())}) | {tally.corrupt_sent} |",
        f"| corrupt-batch cases answered as Kafka, nothing written | {corrupt_ok} of "
        f"{len(corrupt_cases())} |",
        f"| crashes (process exited) | {f.crashes} |",
        f"| hangs (no ApiVersions answer within 5 s) | {f.hangs} |",
        f"| answers with a wrong correlation id | {f.wrong_correlation} |",
        f"| peak RSS (VmHWM; limit {RSS_LIMIT_MB} MiB) | {_peak(fuzz, tally)} |",
        f"| slowest ApiVersions between chunks | {f.slowest_answer_s * 1000:.0f} ms |",
        f"| restarts: SIGTERM / SIGKILL / after a crash or hang | {tally.restarts['SIGTERM']} / "
        f"{tally.restarts['SIGKILL']} / {f.recovery_restarts} |",
        f"| acknowledged records (real client) read back | {_checks(tally)} |",
    ]
    if log or tally.restart_problems:
        out += ["", "Findings (first 25):", ""]
        out += [f"- {line}" for line in (tally.restart_problems + log)[:25]]
    out.append(END)
    return "\n".join(out) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the text between the markers, or append it; nothing else changes."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def show(spec: str) -> None:
    seed, index = (int(x) for x in spec.split(":"))
    case = make_case(index, load_corpus(), random.Random(f"{seed}:{index}"))
    print(f"case {index} of seed {seed}: {case.engine} of a {case.scenario} frame, api {case.api}, "
          f"{len(case.payload)} bytes\n{case.payload.hex()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--show", metavar="SEED:INDEX")
    args = parser.parse_args()
    if args.show:
        show(args.show)
        return
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)
    print(f"fuzzing for {args.minutes:g} min, seed {seed}", flush=True)
    fuzz, tally, log, elapsed = run(args.minutes, seed, args.workers)
    section = render(fuzz, tally, log, elapsed, seed, args.minutes)
    print(section)
    write_section(args.out, section)
    print(f"wrote the fuzz section of {args.out}")


if __name__ == "__main__":
    main()

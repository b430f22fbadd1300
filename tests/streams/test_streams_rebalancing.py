"""Rebalancing like Kafka Streams, against a real Strom broker: the task assignor with
standbys, warm-up replicas and probing rebalances, and cooperative rebalancing.

Instances run in this process (their threads, metrics and rebalance history can be
read) except the one a test SIGKILLs, which runs as a child process.
"""

from __future__ import annotations

import collections
import logging
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from streams_runtime_support import App, latest, produce, read_all, wait_caught_up

from support.broker_process import BrokerProcess, free_port, wait_until
from support.clients import create_topic, end_offsets, unique_topic

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "streams"))
import word_count

from strom.streams.runtime.app import StreamsApp

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
         "kappa", "lambda", "mu"]
SCRIPT = "../../tests/streams/streams_rebalance_app.py"  # App runs scripts of examples/streams
STORE = "counts-store"


class Broker(Protocol):
    """Strom's broker process or Apache Kafka's (`test_streams_rebalancing_on_kafka`)."""

    @property
    def bootstrap(self) -> str: ...


@pytest.fixture(autouse=True)
def _no_leftover_apps() -> Iterator[None]:
    yield
    App.kill_leftovers()


class _Alive:
    """What `wait_caught_up` wants of an app: alive() and log_text()."""

    def __init__(self, app: StreamsApp) -> None:
        self.app = app

    def alive(self) -> bool:
        return self.app.error is None

    def log_text(self) -> str:
        return repr(self.app.error)


def _lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(count)]


def _expected(lines: list[str]) -> dict[str, int]:
    return dict(collections.Counter(w for line in lines for w in line.split()))


def _app(broker: Broker, app_id: str, inp: str, out: str, state: Path,
         **settings: Any) -> StreamsApp:
    return StreamsApp(word_count.build(inp, out), app_id, broker.bootstrap, state_dir=state,
                      commit_interval_ms=200, consumer_properties={"session.timeout.ms": 6000},
                      **settings)


def _caught_up(broker: Broker, app_id: str, inp: str, app: StreamsApp,
               partitions: int, others: list[StreamsApp] | None = None) -> None:
    try:
        wait_caught_up(broker.bootstrap, app_id, inp, partitions, _Alive(app))
    except TimeoutError as exc:
        history = [a.stream_thread.assignments for a in others or [] if a.stream_thread]
        raise AssertionError(f"{exc}; assignments: {history}") from exc
    wait_caught_up(broker.bootstrap, app_id, f"{app_id}-{STORE}-repartition", partitions,
                   _Alive(app))


def _tasks(app: StreamsApp) -> set[str]:
    assert app.stream_thread is not None
    return set(app.stream_thread.tasks)


def _settled(apps: list[StreamsApp], total: int) -> bool:
    """Every task runs somewhere, restored, on every instance, and no member (stream
    thread) is about to rejoin."""
    threads = [t for a in apps for t in a.stream_threads]
    if not all(a.stream_threads for a in apps) or any(
            t.membership.rejoin_needed.is_set() or t._restoring for t in threads):
        return False
    if not all(any(t.tasks for t in a.stream_threads) for a in apps):
        return False
    return sum(len(t.tasks) for t in threads) == total


@pytest.mark.slow
def test_streams_three_instances_exactly_once_survive_a_kill_with_standbys(
        gbroker: BrokerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    three_instances_survive_a_kill(gbroker, tmp_path, caplog)


def three_instances_survive_a_kill(gbroker: Broker, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    """Three instances, one standby per task, exactly-once; one is SIGKILLed mid-run. The
    counts are exact, the killed instance's stateful tasks move to the instances with
    their standbys and restore only the changelog's tail, and queries keep answering."""
    app_id, inp, out = unique_topic("eos3"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 6)
    create_topic(gbroker.bootstrap, out, 1)
    batches = [_lines(1500, 21), _lines(1500, 22), _lines(1500, 23)]
    produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[0]])
    servers = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    victim = App(SCRIPT, tmp_path / "victim.log", "--bootstrap-servers", gbroker.bootstrap,
                 "--application-id", app_id, "--input", inp, "--output", out, "--state-dir",
                 str(tmp_path / "s0"), "--guarantee", "exactly_once_v2", "--standbys", "1",
                 "--application-server", servers[0], "--acceptable-recovery-lag", "50")
    apps = [_app(gbroker, app_id, inp, out, tmp_path / f"s{i}", application_server=servers[i],
                 processing_guarantee="exactly_once_v2", num_standby_replicas=1,
                 acceptable_recovery_lag=50) for i in (1, 2)]
    for app in apps:
        app.start()
    try:
        def three_share() -> bool:
            owners = apps[0].queries.instances()
            return len([s for s, parts in owners.items() if parts]) == 3 and all(
                a.stream_thread is not None and a.stream_thread.standbys.tasks for a in apps)

        wait_until(three_share, 90, "three instances with tasks and standbys",
                   detail=victim.log_text)
        produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[1]])
        _caught_up(gbroker, app_id, inp, apps[0], 6)
        caplog.clear()
        restored_before = sum(sum(a._instance.metrics.restored.values())  # type: ignore[union-attr]
                              for a in apps)
        with caplog.at_level(logging.INFO, logger="strom.streams.runtime.restore"):
            victim.stop(signal.SIGKILL)
            produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[2]])
            wait_until(lambda: _settled(apps, 12), 90, "the survivors run all 12 tasks")
            _caught_up(gbroker, app_id, inp, apps[0], 6)
        restores = [r.getMessage() for r in caplog.records if " offsets " in r.getMessage()]
        spans = [tuple(map(int, m.split(" offsets ")[1].split(".."))) for m in restores]
        # the takeover restored from the standbys' checkpoints: never from the start...
        assert all(start > 0 for start, _ in spans), restores
        # ...and the restore metrics count only those tails (how long a tail is depends on
        # how far the standbys had got, which a loaded machine decides)
        restored = sum(sum(a._instance.metrics.restored.values())  # type: ignore[union-attr]
                       for a in apps) - restored_before
        assert restored <= sum(end - start for start, end in spans), (restored, restores)
        changelog = sum(end_offsets(gbroker.bootstrap, f"{app_id}-{STORE}-changelog",
                                    range(6)).values())
        assert restored < changelog, (restored, changelog)
        expected = _expected([line for batch in batches for line in batch])
        base = f"http://{servers[1]}/v1"

        def answers() -> dict[str, int]:
            found = {}
            for word in expected:
                reply = httpx.get(f"{base}/stores/{STORE}/keys/{word}")
                if reply.status_code == 200 and reply.json()["value"] is not None:
                    found[word] = reply.json()["value"]
            return found

        wait_until(lambda: answers() == expected, 60, "every count answered after the kill",
                   detail=lambda: f"{answers()} vs {expected}")
    finally:
        for app in apps:
            assert app.close()
    assert all(app.error is None for app in apps)
    got = latest(read_all(gbroker.bootstrap, out, 1, committed_only=True))
    assert {w: int(c) for w, c in got.items()} == expected


@pytest.mark.slow
def test_streams_adding_an_instance_moves_tasks_cooperatively(gbroker: BrokerProcess,
                                                              tmp_path: Path) -> None:
    adding_an_instance_moves_tasks_cooperatively(gbroker, tmp_path)


def adding_an_instance_moves_tasks_cooperatively(gbroker: Broker, tmp_path: Path) -> None:
    """A third instance joins two: only the tasks that move to it are revoked from their
    old owners; every task an instance keeps is never revoked (it keeps processing)."""
    app_id, inp, out = unique_topic("coop"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 6)
    create_topic(gbroker.bootstrap, out, 1)
    first, second = _lines(1000, 31), _lines(1000, 32)
    produce(gbroker.bootstrap, inp, [(None, line, None) for line in first])
    apps = [_app(gbroker, app_id, inp, out, tmp_path / f"s{i}") for i in range(3)]
    for app in apps[:2]:
        app.start()
    try:
        wait_until(lambda: _settled(apps[:2], 12), 60, "two instances run all tasks")
        _caught_up(gbroker, app_id, inp, apps[0], 6)
        before = [_tasks(a) for a in apps[:2]]
        # what the first two revoked between themselves when they formed the group
        earlier = [len(a.stream_thread.revoked) for a in apps[:2]]  # type: ignore[union-attr]
        apps[2].start()
        wait_until(lambda: _settled(apps, 12) and len(_tasks(apps[2])) == 4, 90,
                   "three instances run four tasks each",
                   detail=lambda: str([_tasks(a) for a in apps]))
        produce(gbroker.bootstrap, inp, [(None, line, None) for line in second])
        _caught_up(gbroker, app_id, inp, apps[0], 6, apps)
        for app, had, skip in zip(apps[:2], before, earlier, strict=True):
            thread = app.stream_thread
            assert thread is not None
            kept, revoked = _tasks(app), thread.revoked[skip:]
            assert kept <= had  # nothing moved between the old instances
            assert len(revoked) == len(set(revoked))  # none given up twice (no ping-pong)
            assert set(revoked) == had - kept  # revoked: exactly what moved away...
            assert set(revoked) <= _tasks(apps[2])  # ...to the new instance
    finally:
        for app in apps:
            assert app.close()
    assert all(app.error is None for app in apps)
    got = latest(read_all(gbroker.bootstrap, out, 1))
    assert {w: int(c) for w, c in got.items()} == _expected(first + second)


@pytest.mark.slow
def test_streams_new_instance_warms_up_before_a_probing_rebalance_moves_state(
        gbroker: BrokerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    warm_up_then_probing_moves_state(gbroker, tmp_path, caplog)


def warm_up_then_probing_moves_state(gbroker: Broker, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A stateful task moves to a new instance only once it has caught up: first it gets
    warm-up replicas (standbys) while the old owner keeps the tasks active; a probing
    rebalance then moves them, and the new owner restores only what it lacked."""
    app_id, inp, out = unique_topic("warm"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 2)
    create_topic(gbroker.bootstrap, out, 1)
    lines = _lines(3000, 41)
    produce(gbroker.bootstrap, inp, [(None, line, None) for line in lines])
    settings = {"acceptable_recovery_lag": 20, "max_warmup_replicas": 2,
                "probing_rebalance_interval_ms": 2000}
    apps = [_app(gbroker, app_id, inp, out, tmp_path / f"s{i}", **settings) for i in range(2)]
    apps[0].start()
    try:
        wait_until(lambda: _settled(apps[:1], 4), 60, "the first instance runs every task")
        _caught_up(gbroker, app_id, inp, apps[0], 2)
        stateful = {t for t in _tasks(apps[0]) if t.startswith("1_")}
        with caplog.at_level(logging.INFO, logger="strom.streams.runtime.restore"):
            apps[1].start()
            second = apps[1]

            def moved() -> bool:
                thread = second.stream_thread
                return thread is not None and bool(stateful & set(thread.tasks)) and \
                    _settled(apps, 4)

            wait_until(moved, 90, "a stateful task moved to the new instance")
        history = second.stream_thread.assignments  # type: ignore[union-attr]
        first_active = set(history[0][1])
        warming = set(history[0][2])
        # the first assignment: warm-ups of the stateful tasks, none of them active
        assert warming & stateful and not first_active & stateful, history
        got = stateful & _tasks(second)
        assert got <= warming  # only warmed-up tasks moved
        partitions = {int(t.split("_")[1]) for t in got}
        restores = [r.getMessage() for r in caplog.records if " offsets " in r.getMessage()
                    and r.getMessage().startswith(tuple(f"task {t}:" for t in got))]
        starts = [int(m.split(" offsets ")[1].split("..")[0]) for m in restores]
        assert all(start > 0 for start in starts), restores  # the tail only, from the warm-up
        assert partitions
    finally:
        for app in apps:
            assert app.close()
    assert all(app.error is None for app in apps)
    got_counts = latest(read_all(gbroker.bootstrap, out, 1))
    assert {w: int(c) for w, c in got_counts.items()} == _expected(lines)

"""Several stream threads per instance (`num_stream_threads`, Kafka's num.stream.threads),
against a real Strom broker: tasks spread over the threads, each thread its own group
member, consumer and (exactly-once) transactional producer; thread-level metrics; and
threads added and removed while the application runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streams_runtime_support import App, latest, produce, read_all
from test_streams_rebalancing import _app, _caught_up, _expected, _lines, _settled

from support.broker_process import BrokerProcess, wait_until
from support.clients import create_topic, unique_topic


@pytest.fixture(autouse=True)
def _no_leftover_apps() -> Iterator[None]:
    yield
    App.kill_leftovers()


def _counts(broker: BrokerProcess, out: str, committed_only: bool = False) -> dict[str, int]:
    got = latest(read_all(broker.bootstrap, out, 1, committed_only=committed_only))
    return {w: int(c) for w, c in got.items()}


@pytest.mark.slow
def test_streams_three_threads_share_the_tasks_exactly_once(gbroker: BrokerProcess,
                                                            tmp_path: Path) -> None:
    app_id, inp, out = unique_topic("thr"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 6)
    create_topic(gbroker.bootstrap, out, 1)
    lines = _lines(1500, 51)
    produce(gbroker.bootstrap, inp, [(None, line, None) for line in lines])
    app = _app(gbroker, app_id, inp, out, tmp_path / "s", num_stream_threads=3,
               processing_guarantee="exactly_once_v2")
    app.start()
    try:
        # every thread gets a share, and no task runs twice
        wait_until(lambda: len(app.stream_threads) == 3 and _settled([app], 12)
                   and all(t.tasks for t in app.stream_threads), 90,
                   "three threads run the twelve tasks")
        _caught_up(gbroker, app_id, inp, app, 6)
        threads = app.stream_threads
        members = {t.membership.member_id for t in threads}
        assert len(members) == 3  # each thread is a group member of its own
        ids = {t.transactional_id for t in threads}
        assert len(ids) == 3  # a transactional producer per thread
        text = app.metrics_text()
        for thread in threads:
            assert f'thread_id="{thread.name}"' in text
        assert "strom_streams_thread_records_processed_total" in text
    finally:
        assert app.close()
    assert app.error is None
    assert _counts(gbroker, out, committed_only=True) == _expected(lines)


@pytest.mark.slow
def test_streams_threads_added_and_removed_at_runtime(gbroker: BrokerProcess,
                                                      tmp_path: Path) -> None:
    app_id, inp, out = unique_topic("thr2"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 4)
    create_topic(gbroker.bootstrap, out, 1)
    batches = [_lines(800, 61), _lines(800, 62), _lines(800, 63)]
    produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[0]])
    app = _app(gbroker, app_id, inp, out, tmp_path / "s")
    app.start()
    try:
        wait_until(lambda: _settled([app], 8), 60, "one thread runs every task")
        _caught_up(gbroker, app_id, inp, app, 4)
        first = app.stream_threads[0]
        had = set(first.tasks)
        earlier = len(first.revoked)
        name = app.add_stream_thread()
        assert name.endswith("-StreamThread-2")
        wait_until(lambda: len(app.stream_threads) == 2 and _settled([app], 8)
                   and all(t.tasks for t in app.stream_threads), 60,
                   "two threads share the tasks")
        moved = set(app.stream_threads[1].tasks)
        # cooperative inside one instance too: the first thread gave up only what moved
        assert set(first.revoked[earlier:]) == moved and moved < had
        produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[1]])
        _caught_up(gbroker, app_id, inp, app, 4)
        assert app.remove_stream_thread() == name
        assert [t.name for t in app.stream_threads] == [first.name]
        wait_until(lambda: _settled([app], 8), 60, "the first thread runs every task again")
        produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[2]])
        _caught_up(gbroker, app_id, inp, app, 4)
        assert app.remove_stream_thread() is None  # the last one stays
    finally:
        assert app.close()
    assert app.error is None
    assert _counts(gbroker, out) == _expected([line for b in batches for line in b])

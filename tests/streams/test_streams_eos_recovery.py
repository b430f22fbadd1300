"""Exactly-once recovery without a restart, against a real Strom broker: when the
thread's transaction cannot commit (its producer fenced by another with the same
transactional id), the thread closes its tasks dirty, wipes their uncommitted state,
replaces its producer, rejoins and goes on, as Kafka Streams handles a
TaskMigratedException; the committed counts stay exact and the application never
stops."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from streams_runtime_support import App, latest, produce, read_all
from test_streams_rebalancing import Broker, _app, _caught_up, _expected, _lines, _settled

from strom.streams.runtime.app import State
from support.broker_process import BrokerProcess, wait_until
from support.clients import create_topic, unique_topic
from support.groups import NO_DELAY


@pytest.fixture(autouse=True)
def _no_leftover_apps() -> Iterator[None]:
    yield
    App.kill_leftovers()


@pytest.mark.slow
def test_streams_fenced_producer_recovers_without_a_restart(gbroker: BrokerProcess,
                                                            tmp_path: Path) -> None:
    fenced_producer_recovers(gbroker, tmp_path)


def fenced_producer_recovers(gbroker: Broker, tmp_path: Path) -> None:
    """Fenced mid-run by a producer with the thread's transactional id: the thread
    recovers in place and the committed counts are exact."""
    app_id, inp, out = unique_topic("fence"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 2)
    create_topic(gbroker.bootstrap, out, 1)
    batches = [_lines(800, 71), _lines(800, 72), _lines(800, 73)]
    produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[0]])
    app = _app(gbroker, app_id, inp, out, tmp_path / "s",
               processing_guarantee="exactly_once_v2")
    app.start()
    try:
        wait_until(lambda: _settled([app], 4), 60, "the tasks run")
        _caught_up(gbroker, app_id, inp, app, 2)
        thread = app.stream_thread
        assert thread is not None and thread.recoveries == 0
        # a zombie's successor: same transactional id, newer epoch; our producer is fenced
        zombie = Producer({"bootstrap.servers": gbroker.bootstrap,
                           "transactional.id": thread.transactional_id})
        zombie.init_transactions(30)
        produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[1]])
        wait_until(lambda: thread.recoveries >= 1 or app.error is not None, 60,
                   "the thread notices the fencing")
        assert app.error is None, app.error
        _caught_up(gbroker, app_id, inp, app, 2)
        produce(gbroker.bootstrap, inp, [(None, line, None) for line in batches[2]])
        _caught_up(gbroker, app_id, inp, app, 2)
        assert app.state is State.RUNNING and app.stream_thread is thread  # no restart
    finally:
        assert app.close()
    assert app.error is None
    got = latest(read_all(gbroker.bootstrap, out, 1, committed_only=True))
    assert {w: int(c) for w, c in got.items()} == _expected([x for b in batches for x in b])


@pytest.mark.slow
def test_streams_transaction_aborted_by_the_broker_recovers_without_a_restart(
        tmp_path: Path) -> None:
    """The thread stalls longer than its `transaction.timeout.ms`: the broker aborts the
    open transaction (and bumps the producer's epoch); the thread's commit fails, and it
    recovers as from fencing: tasks closed dirty, state restored from the committed
    changelog, the stalled records processed again. Counts stay exact."""
    import re
    import threading

    from strom.streams import Grouped, Materialized, Serdes, StreamsBuilder
    from strom.streams.runtime.app import StreamsApp

    broker = BrokerProcess(tmp_path / "data", overrides={
        **NO_DELAY, "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}
    ).start()
    stalled = threading.Event()

    def stall_once(_key: object, line: str) -> None:
        if line == "stall" and not stalled.is_set():
            stalled.set()
            time.sleep(25)  # past the producer's 15 s transaction timeout

    app_id, inp, out = unique_topic("txto"), unique_topic("lines"), unique_topic("counts")
    builder = StreamsBuilder()
    (builder.stream(inp, key_serde=Serdes.String, value_serde=Serdes.String)
     .peek(stall_once)
     .flat_map_values(lambda line: [w for w in re.split(r"\W+", line.lower()) if w])
     .group_by(lambda _, word: word, Grouped(key_serde=Serdes.String,
                                             value_serde=Serdes.String))
     .count(Materialized.as_("counts-store"))
     .to_stream().map_values(str).to(out, Serdes.String, Serdes.String))
    try:
        create_topic(broker.bootstrap, inp, 1)
        create_topic(broker.bootstrap, out, 1)
        first = _lines(300, 81)
        second = [*_lines(300, 82), "stall", *_lines(300, 83)]
        produce(broker.bootstrap, inp, [(None, line, None) for line in first])
        app = StreamsApp(builder, app_id, broker.bootstrap, state_dir=tmp_path / "s",
                         commit_interval_ms=200, processing_guarantee="exactly_once_v2",
                         consumer_properties={"session.timeout.ms": 60000})
        app.start()
        try:
            wait_until(lambda: _settled([app], 2), 60, "the tasks run")
            _caught_up(broker, app_id, inp, app, 1)
            produce(broker.bootstrap, inp, [(None, line, None) for line in second])
            thread = app.stream_thread
            assert thread is not None
            wait_until(lambda: thread.recoveries >= 1 or app.error is not None, 90,
                       "the thread notices the aborted transaction")
            assert app.error is None, app.error
            _caught_up(broker, app_id, inp, app, 1)
            assert app.state is State.RUNNING and app.stream_thread is thread
        finally:
            assert app.close()
        assert app.error is None
        got = latest(read_all(broker.bootstrap, out, 1, committed_only=True))
        assert {w: int(c) for w, c in got.items()} == _expected(first + second)
    finally:
        broker.stop()

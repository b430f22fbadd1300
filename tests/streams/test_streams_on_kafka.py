"""Strom Streams against Apache Kafka 4.4 itself (a KRaft broker from the jars
`tools/kafka_dist.py` caches): the same application, nothing Strom-specific on the
broker side. An exactly-once word count is killed mid-run and restarted: the committed
counts are exact, and the changelog topic has the configs Kafka Streams gives it.
Marked `interop` (a JVM broker); skipped only when no JDK is installed.
"""

from __future__ import annotations

import collections
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from streams_runtime_support import App, latest, produce, read_all, wait_caught_up

from support.broker_process import wait_until
from support.clients import create_topic, unique_topic
from support.interop import kafka_dist

pytestmark = [pytest.mark.interop, pytest.mark.slow]

@pytest.fixture(autouse=True)
def _no_leftover_apps() -> Iterator[None]:
    """A failed test must not leave example processes running."""
    yield
    App.kill_leftovers()


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka_dist.KafkaBroker]:
    if not kafka_dist.java_available():
        pytest.skip("no JDK: an Apache Kafka broker needs java")
    kafka_dist.ensure_jars()
    broker = kafka_dist.KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.cleanup()


def _lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5))) for _ in range(count)]


def test_streams_exactly_once_word_count_on_apache_kafka(kafka: kafka_dist.KafkaBroker,
                                                         tmp_path: Path) -> None:
    app_id, inp, out = unique_topic("eosk"), unique_topic("lines"), unique_topic("counts")
    create_topic(kafka.bootstrap, inp, 2)
    create_topic(kafka.bootstrap, out, 1)
    first, second = _lines(1500, 1), _lines(1500, 2)

    def start(run: int) -> App:
        return App("word_count.py", tmp_path / f"run-{run}.log", "--bootstrap-servers",
                   kafka.bootstrap, "--application-id", app_id, "--input", inp, "--output", out,
                   "--state-dir", str(tmp_path / "state"), "--processing-guarantee",
                   "exactly_once_v2", "--consumer-property", "session.timeout.ms=6000")

    def counts() -> dict[str, int]:
        return {w: int(c) for w, c in latest(read_all(kafka.bootstrap, out, 1,
                                                      committed_only=True)).items()}

    produce(kafka.bootstrap, inp, [(None, line, None) for line in first])
    app = start(1)
    wait_until(lambda: counts() or not app.alive(), 90, "first committed counts")
    assert app.alive(), app.log_text()
    app.stop(signal.SIGKILL)
    produce(kafka.bootstrap, inp, [(None, line, None) for line in second])
    app = start(2)
    wait_caught_up(kafka.bootstrap, app_id, inp, 2, app, timeout=180)
    wait_caught_up(kafka.bootstrap, app_id, f"{app_id}-counts-store-repartition", 2, app,
                   timeout=180)
    assert app.stop(signal.SIGTERM) == 0, app.log_text()
    expected = collections.Counter(w for line in first + second for w in line.split())
    assert counts() == dict(expected)
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    changelog = f"{app_id}-counts-store-changelog"
    [described] = [f.result() for f in
                   admin.describe_configs([ConfigResource("topic", changelog)]).values()]
    assert described["cleanup.policy"].value == "compact"

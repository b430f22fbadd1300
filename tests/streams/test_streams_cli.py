"""`strom streams describe` and `strom streams reset` against a real broker and a real
Strom Streams application (examples/streams/word_count.py as a child process).

describe: the running application's group, its member and partitions, the lag per input
partition and its internal topics. reset: refused while the instance runs; a dry run
changes nothing; each offset scheme (earliest, latest, offset, by-duration, date-time)
lands the input offsets where Kafka's kafka-streams-application-reset puts them,
intermediate topics go to their end, internal topics are deleted; after a reset the
application counts its input again from zero.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streams_runtime_support import (
    App,
    committed,
    latest,
    produce,
    read_all,
    wait_caught_up,
)

from support.broker_process import BrokerProcess
from support.cli import strom
from support.clients import create_topic, unique_topic

WORDS = ["alpha", "beta", "gamma", "delta"]
BASE_TS = 1_700_000_000_000


@pytest.fixture(autouse=True)
def _no_leftover_apps() -> Iterator[None]:
    yield
    App.kill_leftovers()


def _word_count(broker: BrokerProcess, tmp: Path, app_id: str, inp: str, out: str,
                run: int) -> App:
    return App("word_count.py", tmp / f"{app_id}-{run}.log", "--bootstrap-servers",
               broker.bootstrap, "--application-id", app_id, "--input", inp, "--output", out,
               "--state-dir", str(tmp / f"state-{run}"), "--commit-interval-ms", "200",
               "--consumer-property", "session.timeout.ms=6000")


def _counts(broker: BrokerProcess, out: str) -> dict[str, int]:
    return {w: int(c) for w, c in latest(read_all(broker.bootstrap, out, 1)).items()}


def _cli(broker: BrokerProcess, *args: str, check: bool = True) -> dict:
    result = strom("streams", *args, "-b", broker.bootstrap, "--format", "json", check=check)
    return json.loads(result.stdout) if result.returncode == 0 else {"error": result.stderr}


def _topics(broker: BrokerProcess) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(
        timeout=10).topics)


def test_streams_describe_and_reset_a_word_count(gbroker: BrokerProcess, tmp_path: Path) -> None:
    app_id, inp, out = unique_topic("cli-wc"), unique_topic("lines"), unique_topic("counts")
    create_topic(gbroker.bootstrap, inp, 2)
    create_topic(gbroker.bootstrap, out, 1)
    lines = [" ".join(WORDS[(i + j) % 4] for j in range(3)) for i in range(60)]
    produce(gbroker.bootstrap, inp, [(f"k{i}", line, None) for i, line in enumerate(lines)])
    expected = dict(collections.Counter(w for line in lines for w in line.split()))
    changelog = f"{app_id}-counts-store-changelog"
    repartition = f"{app_id}-counts-store-repartition"

    app = _word_count(gbroker, tmp_path, app_id, inp, out, 1)
    wait_caught_up(gbroker.bootstrap, app_id, inp, 2, app)
    wait_caught_up(gbroker.bootstrap, app_id, repartition, 2, app)
    described = _cli(gbroker, "describe", app_id)
    assert described["state"] == "Stable" and len(described["members"]) == 1
    member = described["members"][0]
    assert {(a["topic"], a["partition"]) for a in member["assignment"]} >= {(inp, 0), (inp, 1)}
    lags = {(p["topic"], p["partition"]): (p["lag"], p["internal"])
            for p in described["partitions"]}
    assert lags[(inp, 0)] == (0, False) and lags[(inp, 1)] == (0, False)
    assert lags[(repartition, 0)][1] is True
    assert {(t["topic"], t["kind"]) for t in described["internal_topics"]} == {
        (changelog, "changelog"), (repartition, "repartition")}

    refused = strom("streams", "reset", app_id, "--input-topics", inp, "-b", gbroker.bootstrap,
                    check=False)
    assert refused.returncode != 0 and "still active" in refused.stderr
    assert app.stop() == 0
    assert _counts(gbroker, out) == expected

    plan = _cli(gbroker, "reset", app_id, "--input-topics", inp, "--dry-run")
    assert plan["dry_run"] is True and plan["deleted_topics"] == [changelog, repartition]
    assert {(o["topic"], o["partition"]): o["offset"] for o in plan["offsets"]} == {
        (inp, 0): 0, (inp, 1): 0}
    assert {changelog, repartition} <= _topics(gbroker)  # nothing changed
    assert sum(committed(gbroker.bootstrap, app_id, inp, 2).values()) == len(lines)

    done = _cli(gbroker, "reset", app_id, "--input-topics", inp)
    assert done["dry_run"] is False
    assert committed(gbroker.bootstrap, app_id, inp, 2) == {0: 0, 1: 0}
    assert not {changelog, repartition} & _topics(gbroker)
    first_updates = len(read_all(gbroker.bootstrap, out, 1))

    app = _word_count(gbroker, tmp_path, app_id, inp, out, 2)  # a fresh state directory
    wait_caught_up(gbroker.bootstrap, app_id, inp, 2, app)
    wait_caught_up(gbroker.bootstrap, app_id, repartition, 2, app)
    assert app.stop() == 0
    assert _counts(gbroker, out) == expected  # counted from zero again, not doubled
    assert len(read_all(gbroker.bootstrap, out, 1)) == 2 * first_updates


def test_streams_reset_offset_schemes(gbroker: BrokerProcess) -> None:
    """Where each of Kafka's schemes puts the input offsets (one partition, ten records a
    minute apart), and intermediate topics at their end; no application runs."""
    app_id, inp, mid = unique_topic("cli-schemes"), unique_topic("in"), unique_topic("mid")
    create_topic(gbroker.bootstrap, inp, 1)
    create_topic(gbroker.bootstrap, mid, 1)
    now = int(time.time() * 1000)
    produce(gbroker.bootstrap, inp, [(None, f"r{i}", now - (10 - i) * 60_000)
                                     for i in range(10)])  # r9 one minute ago
    produce(gbroker.bootstrap, mid, [(None, f"m{i}", None) for i in range(4)])

    def offsets(*scheme: str) -> dict[str, int]:
        result = _cli(gbroker, "reset", app_id, "--input-topics", inp,
                      "--intermediate-topics", mid, *scheme)
        assert not result["deleted_topics"]
        return {o["topic"]: o["offset"] for o in result["offsets"]}

    assert offsets("--to-latest") == {inp: 10, mid: 4}
    assert committed(gbroker.bootstrap, app_id, inp, 1) == {0: 10}
    assert offsets("--to-earliest") == {inp: 0, mid: 4}
    assert committed(gbroker.bootstrap, app_id, mid, 1) == {0: 4}
    assert offsets("--to-offset", "7") == {inp: 7, mid: 4}
    assert offsets("--to-offset", "99")[inp] == 10  # clamped to the log end, as Kafka's tool
    assert offsets("--by-duration", "PT3M30S")[inp] == 7  # r7 is 3 min old, r6 4 min
    moment = dt.datetime.fromtimestamp((now - 5 * 60_000 - 1) / 1000, dt.UTC)
    assert offsets("--to-datetime", moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                   )[inp] == 5
    assert committed(gbroker.bootstrap, app_id, inp, 1) == {0: 5}
    bad = strom("streams", "reset", app_id, "--input-topics", inp, "--to-latest",
                "--to-offset", "1", "-b", gbroker.bootstrap, check=False)
    assert bad.returncode != 0 and "at most one" in bad.stderr

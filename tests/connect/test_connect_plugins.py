"""Plugins from `plugin.path`: the connector of docs/connect.md ("Writing a connector"),
loaded from a directory, runs on a real broker and resumes from its committed offset;
a class name outside the registry is refused, never imported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from connect_support import CONVERTERS, read_topic, wait_for

from strom.connect.api.errors import BadRequestError
from strom.connect.converters import JsonConverter
from strom.connect.runtime.standalone import Standalone, build
from strom.testing import StromBroker

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "connect.md"


def guide_example() -> str:
    section = GUIDE.read_text(encoding="utf-8").split("## Writing a connector", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def worker(tmp_path: Path, bootstrap: str, plugins: Path) -> Standalone:
    return build({"bootstrap.servers": bootstrap, "plugin.path": str(plugins),
                  "offset.storage.file.filename": str(tmp_path / "offsets"), **CONVERTERS,
                  "offset.flush.interval.ms": "100", "listeners": "http://127.0.0.1:0",
                  "value.converter.schemas.enable": "false"})


def test_the_guide_connector_runs_from_plugin_path(tmp_path: Path, strom_broker: StromBroker) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "counter_plugin.py").write_text(guide_example(), encoding="utf-8")
    strom_broker.create_topic("connect-counter")
    config = {"connector.class": "CounterSource", "topic": "connect-counter"}

    first = worker(tmp_path, strom_broker.bootstrap_servers, plugins)
    first.herder.put_config("counter", config, allow_replace=False)
    wait_for(lambda: first.herder.offsets("counter")["offsets"], "a committed offset")
    first.herder.stop()
    stopped_at = first.herder.offsets("counter")["offsets"][0]["offset"]["n"]

    second = worker(tmp_path, strom_broker.bootstrap_servers, plugins)
    second.herder.put_config("counter", {**config, "connector.class": "counter_plugin.CounterSource"},
                             allow_replace=False)
    wait_for(lambda: second.herder.offsets("counter")["offsets"][0]["offset"]["n"] > stopped_at + 10,
             "more numbers after the restart")
    second.herder.stop()
    json = JsonConverter()
    json.configure({"schemas.enable": "false"}, False)
    numbers = [json.to_connect_data("t", m.value()).value
               for m in read_topic(strom_broker.bootstrap_servers, "connect-counter", stopped_at + 10)]
    # the second worker went on from the stored offset: no number is written twice
    assert numbers == list(range(len(numbers)))


def test_unregistered_class_names_are_refused(tmp_path: Path, strom_broker: StromBroker) -> None:
    standalone = worker(tmp_path, strom_broker.bootstrap_servers, tmp_path)
    with pytest.raises(BadRequestError, match="Failed to find any class that implements Connector"):
        standalone.herder.put_config("x", {"connector.class": "subprocess.Popen"}, allow_replace=False)

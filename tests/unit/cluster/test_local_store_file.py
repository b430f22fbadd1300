"""The local store's file: each topic's JSON text is encoded once and reused, and the
file stays exactly what ``json.dumps(doc, sort_keys=True)`` wrote before."""

from __future__ import annotations

import json
from pathlib import Path

from strom.cluster.image import BrokerInfo
from strom.cluster.local import LocalMetadataStore, NewTopic, _topic_to_json


def test_the_file_is_the_sorted_compact_json_of_every_topic(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    store = LocalMetadataStore(path, BrokerInfo(1, "h", 9092), "c")
    store.create_topics([NewTopic("ä-topic", {0: [1], 1: [1]}, {"retention.ms": "5"}),
                         NewTopic("b", {0: [1]}, {})])
    first = store.image().topics["b"]
    store.create_topics([NewTopic("c", {0: [1]}, {}, internal=True)])
    assert store.image().topics["b"] is first and "local-json" in first.derived  # reused
    doc = {"version": 1, "topics": [_topic_to_json(t) for t in store.image().topics.values()]}
    assert path.read_text() == json.dumps(doc, separators=(",", ":"), sort_keys=True)
    again = LocalMetadataStore(path, BrokerInfo(1, "h", 9092), "c").image()
    assert again.topics == store.image().topics


def test_only_the_owner_can_read_the_file(tmp_path: Path) -> None:
    """It holds SCRAM salted keys: 0600, also when it was written wider before."""
    path = tmp_path / "meta.json"
    path.write_text('{"topics":[],"version":1}')
    path.chmod(0o644)
    (tmp_path / "meta.tmp").write_text("left over")
    (tmp_path / "meta.tmp").chmod(0o666)
    store = LocalMetadataStore(path, BrokerInfo(1, "h", 9092), "c")
    store.create_topics([NewTopic("t", {0: [1]}, {})])
    assert path.stat().st_mode & 0o777 == 0o600

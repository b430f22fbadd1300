"""The local metadata store writes a whole admin request at once: one file write (one
fsync) and one image per CreateTopics or DeleteTopics, not one per topic."""

from __future__ import annotations

from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from strom.cluster.image import BrokerInfo, MetadataImage
from strom.cluster.local import LocalMetadataStore, NewTopic
from strom.cluster.store import MetadataError


@pytest.fixture
def store(tmp_path: Path) -> LocalMetadataStore:
    return LocalMetadataStore(tmp_path / "meta.json", BrokerInfo(1, "localhost", 9092), "c1")


def _count_saves(store: LocalMetadataStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    saves: list[int] = []
    real = store._save

    def counting(image: MetadataImage) -> None:
        saves.append(len(image.topics))
        real(image)

    monkeypatch.setattr(store, "_save", counting)
    return saves


def test_a_batch_of_topics_is_one_write_and_one_image(
        store: LocalMetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
    images: list[MetadataImage] = []
    store.subscribe(images.append)
    saves = _count_saves(store, monkeypatch)
    results = store.create_topics([NewTopic(f"t{i}", {0: [1]}, {}) for i in range(500)])
    assert all(not isinstance(r, MetadataError) for r in results.values())
    assert saves == [500]
    assert len(images) == 1 and len(images[0].topics) == 500
    reopened = LocalMetadataStore(store._path, BrokerInfo(1, "localhost", 9092), "c1")
    assert set(reopened.image().topics) == {f"t{i}" for i in range(500)}

    deleted = store.delete_topics(["t1", "t2", "missing"])
    assert deleted["t1"] is None and deleted["t2"] is None
    missing = deleted["missing"]
    assert isinstance(missing, MetadataError) and missing.error == ErrorCode.unknown_topic_or_partition
    assert saves == [500, 498]


def test_each_topic_of_a_batch_gets_its_own_error(store: LocalMetadataStore) -> None:
    store.create_topic("a.b", {0: [1]}, {})
    results = store.create_topics([
        NewTopic("a.b", {0: [1]}, {}),  # exists
        NewTopic("a_b", {0: [1]}, {}),  # collides with a.b
        NewTopic("x.y", {0: [1]}, {}),
        NewTopic("x_y", {0: [1]}, {}),  # collides with x.y, created earlier in the batch
        NewTopic("bad/name", {0: [1]}, {}),
    ])
    errors = {name: r.error.name for name, r in results.items() if isinstance(r, MetadataError)}
    assert errors == {"a.b": "topic_already_exists", "a_b": "invalid_topic_exception",
                      "x_y": "invalid_topic_exception", "bad/name": "invalid_topic_exception"}
    assert set(store.image().topics) == {"a.b", "x.y"}


def test_a_batch_with_nothing_valid_writes_nothing(
        store: LocalMetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
    saves = _count_saves(store, monkeypatch)
    store.create_topics([NewTopic("", {0: [1]}, {})])
    store.delete_topics(["nope"])
    assert saves == []

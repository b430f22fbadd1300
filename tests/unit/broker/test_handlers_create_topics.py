"""CreateTopics validation without a socket: the real `TopicAdmin` rules over a fake
metadata store and a fake replica manager, neither of which may be written to. Only
the `admin` face (and the broker config, for the effective configs) is given."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.broker.handlers import topics
from strom.broker.topic_admin import TopicAdmin
from strom.cluster.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo
from support.handler_context import broker_config, call, context, request

CREATE_TOPICS = 19
EXISTING = TopicInfo("existing", uuid.uuid4(), {0: PartitionInfo(0, 1, 0, (1,), (1,))})
IMAGE = MetadataImage("c", 1, {1: BrokerInfo(1, "localhost", 9092)}, {"existing": EXISTING})


class ReadOnlyStore:
    """The image; any write fails the test (validation must not write)."""

    def image(self) -> MetadataImage:
        return IMAGE

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"validation called store.{name}")


def _admin() -> TopicAdmin:
    budget = SimpleNamespace(free_descriptors=lambda: None, check=lambda *a, **k: None)
    replicas: Any = SimpleNamespace(budget=budget, hosted_count=lambda: 0,
                                    builder=SimpleNamespace())  # building would fail
    return TopicAdmin(broker_config(), ReadOnlyStore(), replicas)  # type: ignore[arg-type]


def _topic(name: str, partitions: int = 1, rf: int = 1, **extra: Any) -> dict[str, Any]:
    return {"name": name, "num_partitions": partitions, "replication_factor": rf,
            "assignments": [], "configs": [], **extra}


def _create(*specs: dict[str, Any], version: int = 7, validate_only: bool = False
            ) -> dict[str, tuple[ErrorCode, Any]]:
    body = request(CREATE_TOPICS, version, topics=list(specs), timeout_ms=1000,
                   validate_only=validate_only)
    ctx = context(CREATE_TOPICS, version, admin=_admin())
    response = call(topics.create_topics, ctx, body)
    return {t.name: (ErrorCode(int(t.error_code)), t) for t in response.topics}


@pytest.mark.parametrize("version", [2, 5, 7])
def test_each_invalid_topic_gets_its_own_error(version: int) -> None:
    results = _create(
        _topic("zero", partitions=0),
        _topic("too-many-copies", rf=3),
        _topic("zero-copies", rf=0),
        _topic("bad/name"),
        _topic("existing"),
        _topic("bad-config", configs=[{"name": "cleanup.policy", "value": "shred"}]),
        _topic("null-config", configs=[{"name": "retention.ms", "value": None}]),
        _topic("both", assignments=[{"partition_index": 0, "broker_ids": [1]}]),
        _topic("stray-broker", partitions=-1, rf=-1,
               assignments=[{"partition_index": 0, "broker_ids": [7]}]),
        version=version,
    )
    assert {name: code for name, (code, _) in results.items()} == {
        "zero": ErrorCode.invalid_partitions,
        "too-many-copies": ErrorCode.invalid_replication_factor,
        "zero-copies": ErrorCode.invalid_replication_factor,
        "bad/name": ErrorCode.invalid_topic_exception,
        "existing": ErrorCode.topic_already_exists,
        "bad-config": ErrorCode.invalid_config,
        "null-config": ErrorCode.invalid_config,
        "both": ErrorCode.invalid_request,
        "stray-broker": ErrorCode.invalid_replica_assignment,
    }
    _, too_many = results["too-many-copies"]
    assert too_many.error_message == "Replication factor: 3 larger than available brokers: 1."
    if version >= 5:
        assert int(too_many.num_partitions) == -1


def test_a_name_twice_in_one_request_is_refused_for_both() -> None:
    body = request(CREATE_TOPICS, 7, topics=[_topic("twice"), _topic("twice")],
                   timeout_ms=1000, validate_only=True)
    response = call(topics.create_topics, context(CREATE_TOPICS, 7, admin=_admin()), body)
    assert [(t.name, ErrorCode(int(t.error_code))) for t in response.topics] == [
        ("twice", ErrorCode.invalid_request), ("twice", ErrorCode.invalid_request)]


def test_validate_only_answers_the_would_be_topic_and_writes_nothing() -> None:
    results = _create(_topic("fine", partitions=3,
                             configs=[{"name": "retention.ms", "value": "1000"}]),
                      validate_only=True)
    code, topic = results["fine"]
    assert code == ErrorCode.none
    assert (int(topic.num_partitions), int(topic.replication_factor)) == (3, 1)
    configs = {c.name: c.value for c in topic.configs}
    assert configs["retention.ms"] == "1000" and "segment.bytes" in configs

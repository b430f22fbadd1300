"""A sink task commits only what `put` took (issue 14). A batch consumed but never put (the
task stopped while `put` kept asking to retry) must not be committed: Kafka's
WorkerSinkTask moves its commit positions only after a successful put. Before the fix the
stop committed the consumer's position past that batch, and the records were lost to the
connector for good. Real broker, real consumer group, an in-process standalone worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from confluent_kafka import Producer
from connect_support import CONVERTERS, OneTaskSinkConnector, wait_for

from strom.connect import ConfigDef, RetriableError, SinkRecord, SinkTask
from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.standalone import build
from strom.connect.transforms.base import Transformation
from strom.testing import StromBroker

TOPIC = "connect-commit-after-put"
HELD_TOPIC = "connect-commit-after-put-held"


class GatedSinkTask(SinkTask):
    """Refuses every batch (RetriableError, a long backoff) until `accepting` is set."""

    accepting: ClassVar[threading.Event] = threading.Event()
    refused: ClassVar[threading.Event] = threading.Event()
    received: ClassVar[list[str]] = []

    def version(self) -> str:
        return "1"

    def start(self, props: Mapping[str, str]) -> None:
        """Nothing to set up."""

    def put(self, records: Sequence[SinkRecord]) -> None:
        if records and not GatedSinkTask.accepting.is_set():
            GatedSinkTask.refused.set()
            self.context.timeout(60_000)
            raise RetriableError("downstream not ready")
        GatedSinkTask.received.extend(str(r.value) for r in records)

    def stop(self) -> None:
        """Nothing to release."""


class GatedSinkConnector(OneTaskSinkConnector):
    task = GatedSinkTask


class KeepingSinkTask(GatedSinkTask):
    """Takes every batch."""

    kept: ClassVar[list[str]] = []

    def put(self, records: Sequence[SinkRecord]) -> None:
        KeepingSinkTask.kept.extend(str(r.value) for r in records)


class KeepingSinkConnector(GatedSinkConnector):
    task = KeepingSinkTask


class HoldFirstBatch(Transformation):
    """Holds the first record it sees until the test releases it: the task is between its
    consume and its put when the stop arrives, as in an early rebalance."""

    entered: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()

    def apply(self, record: Any) -> Any:
        HoldFirstBatch.entered.set()
        HoldFirstBatch.release.wait(60)
        return record

    def config(self) -> ConfigDef:
        return ConfigDef()


@pytest.fixture
def herder(tmp_path: Path, strom_broker: StromBroker) -> Iterator[StandaloneHerder]:
    standalone = build({"bootstrap.servers": strom_broker.bootstrap_servers,
                        "offset.storage.file.filename": str(tmp_path / "offsets"), **CONVERTERS,
                        "offset.flush.interval.ms": "200", "listeners": "http://127.0.0.1:0"})
    yield standalone.herder
    standalone.herder.stop()


def test_a_batch_never_put_is_not_committed_at_stop(strom_broker: StromBroker,
                                                    herder: StandaloneHerder) -> None:
    strom_broker.create_topic(TOPIC)
    producer = Producer({"bootstrap.servers": strom_broker.bootstrap_servers})
    for value in ("a", "b", "c"):
        producer.produce(TOPIC, value.encode())
    assert producer.flush(30) == 0
    herder.worker.plugins.add(GatedSinkConnector)
    herder.put_config("gated", {"connector.class": "GatedSinkConnector", "topics": TOPIC,
                                "value.converter": "org.apache.kafka.connect.storage.StringConverter"},
                      allow_replace=False)
    wait_for(GatedSinkTask.refused.is_set, "the task refusing its first batch")
    herder.stop_connector("gated")  # the task stops during its retry backoff
    assert herder.offsets("gated") == {"offsets": []}  # nothing was put, nothing committed
    GatedSinkTask.accepting.set()
    herder.resume("gated")
    wait_for(lambda: sorted(GatedSinkTask.received) == ["a", "b", "c"], "every record put after the resume")


def test_a_batch_consumed_when_the_stop_arrives_is_not_committed(strom_broker: StromBroker,
                                                                 herder: StandaloneHerder) -> None:
    strom_broker.create_topic(HELD_TOPIC)
    producer = Producer({"bootstrap.servers": strom_broker.bootstrap_servers})
    for value in ("a", "b", "c"):
        producer.produce(HELD_TOPIC, value.encode())
    assert producer.flush(30) == 0
    herder.worker.plugins.add(KeepingSinkConnector)
    herder.worker.plugins.add(HoldFirstBatch)
    herder.put_config("held", {"connector.class": "KeepingSinkConnector", "topics": HELD_TOPIC,
                               "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                               "transforms": "hold", "transforms.hold.type": "HoldFirstBatch"},
                      allow_replace=False)
    wait_for(HoldFirstBatch.entered.is_set, "the task holding its first batch")
    task = herder.connectors["held"].tasks[0]
    stopping = threading.Thread(target=herder.stop_connector, args=("held",))
    stopping.start()
    wait_for(task.stopping.is_set, "the stop reaching the task")
    HoldFirstBatch.release.set()
    stopping.join(60)
    assert herder.offsets("held") == {"offsets": []}  # the batch never reached put
    herder.resume("held")
    wait_for(lambda: sorted(KeepingSinkTask.kept) == ["a", "b", "c"], "every record put after the resume")

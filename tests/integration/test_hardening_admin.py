"""Issue 9, findings 4 and 5: admin work that never stalls other clients, and a partition
budget derived from the file-descriptor limit so that a big create cannot brick the
broker.

* One CreateTopics of 1,000 topics used to hold the event loop for ~20 s: here a second
  connection must get answers while that request is still in progress.
* A CreateTopics over Kafka's 10,000-records-per-operation bound is refused with
  POLICY_VIOLATION for every topic, validate-only included, as Kafka 4's controller does.
* Under `prlimit --nofile=256:256` a topic too big for the descriptors is refused with
  POLICY_VIOLATION before anything is written; the broker keeps serving and restarts.
* A create that died half way is completed (metadata without logs) or rolled back (logs
  without metadata) at the next start; a start that runs out of descriptors while loading
  takes the partitions it cannot open offline (ERROR, KAFKA_STORAGE_ERROR to clients)
  and stays up.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess, wait_until
from support.raw_client import RawClient, make_request, produce, record_batch

TIMEOUT = 60.0
EXCESSIVE = "Unable to perform excessively large batch operation."


class LimitedBroker(BrokerProcess):
    """A broker whose process starts with a given RLIMIT_NOFILE (soft = hard)."""

    def __init__(self, data_dir: Path, nofile: int, port: int | None = None) -> None:
        super().__init__(data_dir, port=port)
        self.nofile = nofile

    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *super().command()]


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[LimitedBroker]:
    proc = LimitedBroker(tmp_path / "data", 256)
    yield proc
    proc.stop()


def _create_topics_request(names: list[str], partitions: int, validate_only: bool = False,
                           timeout_ms: int = 600_000) -> object:
    return make_request(19, 7, {
        "topics": [{"name": n, "num_partitions": partitions, "replication_factor": 1,
                    "assignments": [], "configs": []} for n in names],
        "timeout_ms": timeout_ms, "validate_only": validate_only,
    })


def _create(bootstrap: str, name: str, partitions: int) -> KafkaException | None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=TIMEOUT)[name]
    try:
        future.result(TIMEOUT)
    except KafkaException as exc:
        return exc
    return None


def _partitions(bootstrap: str, name: str) -> int | None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = admin.list_topics(timeout=TIMEOUT).topics.get(name)
    return None if topic is None or topic.error is not None else len(topic.partitions)


def _round_trip(bootstrap: str, topic: str, partition: int = 0) -> None:
    """Produce one record and read it back with real clients: the broker serves."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, b"still-serving", partition=partition)
    assert producer.flush(TIMEOUT) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}-{partition}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                assert message.value() == b"still-serving"
                return
        raise AssertionError(f"nothing read back from {topic}-{partition}")
    finally:
        consumer.close()


def _readable(client: RawClient) -> bool:
    return bool(select.select([client.sock], [], [], 0)[0])


# --- bounded admin work --------------------------------------------------------------------


def test_other_clients_are_answered_while_1000_topics_are_created(broker: BrokerProcess) -> None:
    names = [f"bulk-{i:04d}" for i in range(1000)]
    with RawClient(broker.bootstrap, timeout=600) as creator, \
            RawClient(broker.bootstrap, timeout=60) as other:
        other.request(18, 3, client_software_name="t", client_software_version="1")
        cid = creator.send(19, 7, _create_topics_request(names, 1))
        answered_meanwhile = 0
        while not _readable(creator):
            metadata = other.request(3, 12, topics=None, allow_auto_topic_creation=False,
                                     include_topic_authorized_operations=False)
            assert metadata.body.brokers
            other.request(18, 3, client_software_name="t", client_software_version="1")
            if not _readable(creator):
                answered_meanwhile += 1
        response = creator.read_response(19, 7)
    assert response.correlation_id == cid
    assert {t.error_code for t in response.body.topics} == {ErrorCode.none}
    assert answered_meanwhile > 0, "no other request was answered during the CreateTopics"
    assert _partitions(broker.bootstrap, "bulk-0999") == 1
    _round_trip(broker.bootstrap, "bulk-0500")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    deleted = admin.delete_topics(names, request_timeout=TIMEOUT)
    for future in deleted.values():
        future.result(TIMEOUT)
    wait_until(lambda: _partitions(broker.bootstrap, "bulk-0000") is None, TIMEOUT,
               "deleted topics gone from metadata")


def test_more_than_10000_records_in_one_create_is_a_policy_violation(
        broker: BrokerProcess) -> None:
    with RawClient(broker.bootstrap, timeout=120) as client:
        for validate_only in (True, False):
            request = _create_topics_request(["huge-a", "huge-b"], 5000, validate_only)
            client.send(19, 7, request)
            topics = client.read_response(19, 7).body.topics
            assert [(t.name, t.error_code, t.error_message) for t in topics] == [
                ("huge-a", ErrorCode.policy_violation, EXCESSIVE),
                ("huge-b", ErrorCode.policy_violation, EXCESSIVE),
            ]
        client.send(19, 7, _create_topics_request(["fits-a", "fits-b"], 4999, True))
        assert {t.error_code for t in client.read_response(19, 7).body.topics} == {
            ErrorCode.none}
    assert _partitions(broker.bootstrap, "huge-a") is None


def test_millions_of_partitions_are_refused_before_any_placement(broker: BrokerProcess) -> None:
    """Fuzzing found a CreateTopics of 2.7M partitions took the broker to 420 MiB while
    placing replicas it would refuse anyway; the record bound now comes first."""
    with RawClient(broker.bootstrap, timeout=60) as client:
        client.send(19, 7, _create_topics_request(["millions"], 2_752_513, False))
        [topic] = client.read_response(19, 7).body.topics
        assert (topic.error_code, topic.error_message) == (ErrorCode.policy_violation, EXCESSIVE)
    assert broker.proc is not None
    with open(f"/proc/{broker.proc.pid}/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    assert peak_kib < 200 * 1024


# --- partition and descriptor budget -----------------------------------------------------------


def test_a_topic_too_big_for_the_descriptors_is_refused_and_the_broker_lives_on(
        limited: LimitedBroker) -> None:
    limited.start()
    refused = _create(limited.bootstrap, "too-big", 1000)
    assert refused is not None
    error = refused.args[0]
    assert error.code() == ErrorCode.policy_violation
    assert "budget" in error.str() and "open file limit 256" in error.str()
    assert _partitions(limited.bootstrap, "too-big") is None, "nothing may be written"

    assert _create(limited.bootstrap, "fits", 100) is None
    _round_trip(limited.bootstrap, "fits", 99)
    second = _create(limited.bootstrap, "no-room-left", 100)
    assert second is not None and second.args[0].code() == ErrorCode.policy_violation

    limited.restart()
    assert _partitions(limited.bootstrap, "fits") == 100
    assert _partitions(limited.bootstrap, "too-big") is None
    _round_trip(limited.bootstrap, "fits", 42)
    assert "Too many open files" not in limited.log_text()


def test_strom_max_partitions_is_the_budget_when_set(broker_factory: object) -> None:
    proc = broker_factory({"strom.max.partitions": "60"})  # type: ignore[operator]
    error = _create(proc.bootstrap, "over", 20)  # 20 + room for 50 offsets partitions > 60
    assert error is not None and error.args[0].code() == ErrorCode.policy_violation
    assert "strom.max.partitions" in error.args[0].str()
    assert _create(proc.bootstrap, "under", 10) is None


# --- half-done creates and starts short of descriptors ----------------------------------------


def _metadata_file(proc: BrokerProcess) -> Path:
    return proc.data_dir / "strom-metadata.json"


def test_a_create_that_died_half_way_is_completed_or_rolled_back_at_start(
        tmp_path: Path) -> None:
    proc = LimitedBroker(tmp_path / "data", 256).start()
    try:
        assert _create(proc.bootstrap, "half", 4) is None
        assert _create(proc.bootstrap, "ghost", 2) is None
        assert proc.stop() == 0
        # Metadata written, logs missing (lost directories, or the old create order):
        for index in (1, 3):
            shutil.rmtree(proc.data_dir / f"half-{index}")
        doc = json.loads(_metadata_file(proc).read_text())
        half = next(t for t in doc["topics"] if t["name"] == "half")
        # ... and the finding's bricked broker: a topic too big for the descriptors whose
        # metadata was written before its logs ran out of them.
        bricked = {**half, "name": "bricked", "id": str(uuid.uuid4()), "partitions": [
            {**half["partitions"][0], "partition": p} for p in range(300)]}
        # Logs written, metadata missing (the broker died before the metadata write):
        doc["topics"] = [t for t in doc["topics"] if t["name"] != "ghost"] + [bricked]
        _metadata_file(proc).write_text(json.dumps(doc))

        proc.start()
        for index in range(4):
            _round_trip(proc.bootstrap, "half", index)  # completed
        assert _partitions(proc.bootstrap, "ghost") is None  # rolled back
        wait_until(lambda: not (proc.data_dir / "ghost-0").exists(), TIMEOUT, "stray log gone")
        assert re.search(r"ERROR .*partition bricked-\d+ is offline", proc.log_text())
        admin = AdminClient({"bootstrap.servers": proc.bootstrap})
        admin.delete_topics(["bricked"], request_timeout=TIMEOUT)["bricked"].result(TIMEOUT)

        proc.restart()
        assert _partitions(proc.bootstrap, "bricked") is None
        assert not list(proc.data_dir.glob("bricked-*"))
        _round_trip(proc.bootstrap, "half", 3)
    finally:
        proc.stop()


def test_a_start_short_of_descriptors_takes_partitions_offline_and_serves(
        tmp_path: Path) -> None:
    roomy = LimitedBroker(tmp_path / "data", 512).start()
    try:
        assert _create(roomy.bootstrap, "many", 200) is None
        _round_trip(roomy.bootstrap, "many", 0)
        assert roomy.stop() == 0
        tight = LimitedBroker(tmp_path / "data", 160, port=roomy.port).start()
        try:
            assert re.search(r"ERROR .*partition many-\d+ is offline", tight.log_text())
            _round_trip(tight.bootstrap, "many", 0)  # loaded first: partition dirs sort by name
            with RawClient(tight.bootstrap) as client:
                entry = produce(client, "many", record_batch([b"x"]), partition=99)
            assert entry.error_code == ErrorCode.kafka_storage_error
            assert tight.stop() == 0
        finally:
            tight.kill()
        again = LimitedBroker(tmp_path / "data", 512, port=roomy.port).start()
        try:
            _round_trip(again.bootstrap, "many", 99)  # nothing was lost while offline
        finally:
            again.stop()
    finally:
        roomy.kill()

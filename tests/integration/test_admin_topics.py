"""Topic administration through real admin clients and the raw protocol.

CreateTopics, DeleteTopics, CreatePartitions, DescribeCluster, DeleteRecords and
InitProducerId, checked with confluent-kafka's AdminClient (librdkafka), kafka-python's
KafkaAdminClient and, where a field matters that clients hide, the raw client.

Fixtures `broker`, `admin`, `kp_admin` and `raw` come from tests/conftest.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka import KafkaAdminClient
from kafka import TopicPartition as KpTopicPartition
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.raw_client import (
    RawClient,
    create_topic,
    high_watermark,
    list_offset,
    produce,
    record_batch,
    topic_id,
)

TIMEOUT = 20.0


def _create_error(admin: AdminClient, topic: NewTopic, **kwargs: Any) -> KafkaError | None:
    future = admin.create_topics([topic], request_timeout=TIMEOUT, **kwargs)[topic.topic]
    try:
        future.result()
    except KafkaException as exc:
        return exc.args[0]  # type: ignore[no-any-return]
    return None


def _topics(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=TIMEOUT).topics)


def _partition_count(raw: RawClient, name: str) -> int:
    body = raw.request(3, 12, topics=[{"name": name}], allow_auto_topic_creation=False).body
    assert body.topics[0].error_code == ErrorCode.none
    return len(body.topics[0].partitions)


# --- CreateTopics -----------------------------------------------------------------------


def test_create_topic_then_list_all_topics(admin: AdminClient) -> None:
    """Also the all-topics Metadata librdkafka sends (with 3 stray bytes after the body)."""
    assert _create_error(admin, NewTopic("adm-created", 3, 1)) is None
    metadata = admin.list_topics(timeout=TIMEOUT)
    assert "adm-created" in metadata.topics
    partitions = metadata.topics["adm-created"].partitions
    assert sorted(partitions) == [0, 1, 2]
    assert all(p.leader == 0 and p.replicas == [0] and p.isrs == [0] for p in partitions.values())


def test_validate_only_creates_nothing(admin: AdminClient, kp_admin: KafkaAdminClient) -> None:
    assert _create_error(admin, NewTopic("adm-validate-only", 2, 1), validate_only=True) is None
    kp_admin.create_topics({"adm-validate-only-kp": {"num_partitions": 1}}, validate_only=True)
    topics = _topics(admin)
    assert "adm-validate-only" not in topics
    assert "adm-validate-only-kp" not in topics
    # validation still happens: an invalid request fails even in validate-only mode
    err = _create_error(admin, NewTopic("adm-validate-only-bad", 1, 5), validate_only=True)
    assert err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR


def test_duplicate_topic_is_topic_already_exists(
    admin: AdminClient, kp_admin: KafkaAdminClient
) -> None:
    assert _create_error(admin, NewTopic("adm-dup", 1, 1)) is None
    err = _create_error(admin, NewTopic("adm-dup", 1, 1))
    assert err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS == 36
    with pytest.raises(TopicAlreadyExistsError):
        kp_admin.create_topics({"adm-dup": {}})


@pytest.mark.parametrize(
    "name", ["x" * 250, "bad/name", "bad name", "bäd", "semi;colon", ".", "..", ""],
    ids=["too-long", "slash", "space", "non-ascii", "semicolon", "dot", "dotdot", "empty"],
)
def test_invalid_topic_names_are_refused(raw: RawClient, name: str) -> None:
    result = create_topic(raw, name)
    assert result.error_code == ErrorCode.invalid_topic_exception, result
    assert result.error_message
    metadata = raw.request(3, 12, topics=None, allow_auto_topic_creation=False).body
    assert name not in {t.name for t in metadata.topics}


def test_invalid_topic_name_through_clients(admin: AdminClient,
                                            kp_admin: KafkaAdminClient) -> None:
    err = _create_error(admin, NewTopic("adm/invalid", 1, 1))
    assert err is not None and err.code() == KafkaError.TOPIC_EXCEPTION == 17
    answer = kp_admin.create_topics({"x" * 250: {}}, raise_errors=False)
    assert answer["topics"][0]["error_code"] == 17


def test_longest_legal_name_is_accepted(raw: RawClient) -> None:
    name = "n" * 249
    assert create_topic(raw, name).error_code == ErrorCode.none


def test_replication_factor_above_broker_count(admin: AdminClient) -> None:
    err = _create_error(admin, NewTopic("adm-rf3", 1, 3))
    assert err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR == 38
    assert "adm-rf3" not in _topics(admin)


@pytest.mark.parametrize(("partitions", "rf", "code"), [
    (0, 1, ErrorCode.invalid_partitions),
    (-5, 1, ErrorCode.invalid_partitions),
    (1, 0, ErrorCode.invalid_replication_factor),
    (1, -7, ErrorCode.invalid_replication_factor),
])
def test_bad_counts_are_refused(raw: RawClient, partitions: int, rf: int, code: ErrorCode) -> None:
    name = f"adm-counts-{partitions}-{rf}"
    body = raw.request(19, 7, topics=[{"name": name, "num_partitions": partitions,
                                       "replication_factor": rf}], timeout=10_000).body
    assert body.topics[0].error_code == code, body
    assert create_topic(raw, name).error_code == ErrorCode.none  # nothing half-created


def test_defaults_apply_for_minus_one(raw: RawClient) -> None:
    body = raw.request(19, 7, topics=[{"name": "adm-defaults", "num_partitions": -1,
                                       "replication_factor": -1}], timeout=10_000).body
    result = body.topics[0]
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (1, 1)
    assert result.topic_id == topic_id(raw, "adm-defaults")


def test_explicit_assignments(admin: AdminClient, raw: RawClient) -> None:
    topic = NewTopic("adm-assigned", 4, replica_assignment=[[0], [0], [0], [0]])
    assert _create_error(admin, topic) is None
    partitions = admin.list_topics("adm-assigned", timeout=TIMEOUT).topics["adm-assigned"].partitions
    assert {p: m.replicas for p, m in partitions.items()} == {0: [0], 1: [0], 2: [0], 3: [0]}
    # unknown broker, and a gap in the partition indexes
    body = raw.request(19, 7, timeout=10_000, topics=[
        {"name": "adm-assigned-bad", "num_partitions": -1, "replication_factor": -1,
         "assignments": [{"partition_index": 0, "broker_ids": [7]}]},
        {"name": "adm-assigned-gap", "num_partitions": -1, "replication_factor": -1,
         "assignments": [{"partition_index": 0, "broker_ids": [0]},
                         {"partition_index": 2, "broker_ids": [0]}]},
        {"name": "adm-assigned-both", "num_partitions": 2, "replication_factor": 1,
         "assignments": [{"partition_index": 0, "broker_ids": [0]}]},
    ]).body
    codes = {t.name: t.error_code for t in body.topics}
    assert codes == {"adm-assigned-bad": ErrorCode.invalid_replica_assignment,
                     "adm-assigned-gap": ErrorCode.invalid_replica_assignment,
                     "adm-assigned-both": ErrorCode.invalid_request}


def test_create_response_carries_configs(raw: RawClient, kp_admin: KafkaAdminClient) -> None:
    result = create_topic(raw, "adm-cfg-response", partitions=2,
                          configs={"retention.ms": "123456", "cleanup.policy": "compact"})
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (2, 1)
    configs = {c.name: c for c in result.configs}
    assert configs["retention.ms"].value == "123456"
    assert configs["retention.ms"].config_source == 1  # DYNAMIC_TOPIC_CONFIG
    assert configs["cleanup.policy"].value == "compact"
    assert configs["segment.bytes"].value == "1073741824"
    assert configs["segment.bytes"].config_source == 5  # DEFAULT_CONFIG
    answer = kp_admin.create_topics({"adm-cfg-response-kp": {"configs": {"retention.ms": "777"}}})
    kp_configs = answer["topics"][0]["configs"]
    assert kp_configs["retention.ms"]["value"] == "777"
    assert kp_configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"


def test_invalid_config_at_creation_creates_nothing(admin: AdminClient) -> None:
    err = _create_error(admin, NewTopic("adm-bad-config", 1, 1, config={"retention.ms": "soon"}))
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG == 40
    assert "adm-bad-config" not in _topics(admin)


def test_duplicate_name_within_one_request(raw: RawClient) -> None:
    entry = {"name": "adm-twice", "num_partitions": 1, "replication_factor": 1}
    body = raw.request(19, 7, topics=[entry, entry], timeout=10_000).body
    assert [t.error_code for t in body.topics] == [ErrorCode.invalid_request] * 2
    assert create_topic(raw, "adm-twice").error_code == ErrorCode.none


# --- DeleteTopics -----------------------------------------------------------------------


def test_delete_by_name_through_both_clients(admin: AdminClient,
                                             kp_admin: KafkaAdminClient) -> None:
    for name in ("adm-del-ck", "adm-del-kp"):
        assert _create_error(admin, NewTopic(name, 1, 1)) is None
    assert admin.delete_topics(["adm-del-ck"], request_timeout=TIMEOUT)["adm-del-ck"].result() is None
    kp_admin.delete_topics(["adm-del-kp"])
    topics = _topics(admin)
    assert "adm-del-ck" not in topics and "adm-del-kp" not in topics


def test_delete_unknown_topic(admin: AdminClient, kp_admin: KafkaAdminClient,
                              raw: RawClient) -> None:
    future = admin.delete_topics(["adm-never-was"], request_timeout=TIMEOUT)["adm-never-was"]
    with pytest.raises(KafkaException) as info:
        future.result()
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART == 3
    with pytest.raises(UnknownTopicOrPartitionError):
        kp_admin.delete_topics(["adm-never-was"])
    body = raw.request(20, 4, topic_names=["adm-never-was"], timeout=5000).body
    assert body.responses[0].error_code == ErrorCode.unknown_topic_or_partition


def test_delete_by_topic_id_at_v6(raw: RawClient) -> None:
    assert create_topic(raw, "adm-del-by-id").error_code == ErrorCode.none
    produce(raw, "adm-del-by-id", record_batch([b"gone soon"]))
    tid = topic_id(raw, "adm-del-by-id")
    body = raw.request(20, 6, topics=[{"name": None, "topic_id": tid}], timeout=5000).body
    result = body.responses[0]
    assert result.error_code == ErrorCode.none
    assert result.name == "adm-del-by-id" and result.topic_id == tid
    metadata = raw.request(3, 12, topics=[{"name": "adm-del-by-id"}],
                           allow_auto_topic_creation=False).body
    assert metadata.topics[0].error_code == ErrorCode.unknown_topic_or_partition
    # the same id again, and an id that never existed
    body = raw.request(20, 6, timeout=5000, topics=[
        {"name": None, "topic_id": tid}, {"name": None, "topic_id": uuid.uuid4()}]).body
    assert [r.error_code for r in body.responses] == [ErrorCode.unknown_topic_id] * 2


def test_recreated_topic_starts_empty_with_a_new_id(raw: RawClient) -> None:
    assert create_topic(raw, "adm-reborn").error_code == ErrorCode.none
    produce(raw, "adm-reborn", record_batch([b"a", b"b", b"c"]))
    old_id = topic_id(raw, "adm-reborn")
    body = raw.request(20, 6, topics=[{"name": "adm-reborn", "topic_id": None}], timeout=5000).body
    assert body.responses[0].error_code == ErrorCode.none
    assert create_topic(raw, "adm-reborn").error_code == ErrorCode.none
    assert topic_id(raw, "adm-reborn") != old_id
    assert high_watermark(raw, "adm-reborn") == 0


# --- CreatePartitions -------------------------------------------------------------------


def test_create_partitions_grows_the_topic(admin: AdminClient, kp_admin: KafkaAdminClient,
                                           raw: RawClient) -> None:
    assert _create_error(admin, NewTopic("adm-grow", 1, 1)) is None
    futures = admin.create_partitions([NewPartitions("adm-grow", 3)], request_timeout=TIMEOUT)
    assert futures["adm-grow"].result() is None
    assert _partition_count(raw, "adm-grow") == 3
    kp_admin.create_partitions({"adm-grow": 5})
    assert _partition_count(raw, "adm-grow") == 5
    # the new partitions take writes
    assert produce(raw, "adm-grow", record_batch([b"p4"]), partition=4).error_code == 0


def test_create_partitions_result_is_complete(raw: RawClient) -> None:
    """Other brokers answered CreatePartitions with an empty result list."""
    for name in ("adm-grow-a", "adm-grow-b"):
        assert create_topic(raw, name).error_code == ErrorCode.none
    body = raw.request(37, 3, timeout=10_000, validate_only=False, topics=[
        {"name": "adm-grow-a", "count": 2, "assignments": None},
        {"name": "adm-grow-b", "count": 4, "assignments": [{"broker_ids": [0]}] * 3},
        {"name": "adm-grow-missing", "count": 2, "assignments": None},
    ]).body
    codes = {r.name: r.error_code for r in body.results}
    assert codes == {"adm-grow-a": ErrorCode.none, "adm-grow-b": ErrorCode.none,
                     "adm-grow-missing": ErrorCode.unknown_topic_or_partition}
    assert _partition_count(raw, "adm-grow-a") == 2
    assert _partition_count(raw, "adm-grow-b") == 4
    # the same topic twice in one request is refused, not applied twice
    body = raw.request(37, 3, timeout=10_000, validate_only=False, topics=[
        {"name": "adm-grow-a", "count": 3, "assignments": None},
        {"name": "adm-grow-a", "count": 4, "assignments": None},
    ]).body
    assert body.results and {r.name for r in body.results} == {"adm-grow-a"}
    assert {r.error_code for r in body.results} == {ErrorCode.invalid_request}
    assert _partition_count(raw, "adm-grow-a") == 2


def test_create_partitions_errors(admin: AdminClient, raw: RawClient) -> None:
    assert _create_error(admin, NewTopic("adm-shrink", 3, 1)) is None
    for count in (2, 3):  # fewer, and the same number
        future = admin.create_partitions([NewPartitions("adm-shrink", count)],
                                         request_timeout=TIMEOUT)["adm-shrink"]
        with pytest.raises(KafkaException) as info:
            future.result()
        assert info.value.args[0].code() == KafkaError.INVALID_PARTITIONS == 37
    future = admin.create_partitions([NewPartitions("adm-no-such", 4)],
                                     request_timeout=TIMEOUT)["adm-no-such"]
    with pytest.raises(KafkaException) as info:
        future.result()
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    body = raw.request(37, 3, timeout=10_000, validate_only=False, topics=[
        {"name": "adm-shrink", "count": 5, "assignments": [{"broker_ids": [0]}]}]).body
    assert body.results[0].error_code == ErrorCode.invalid_replica_assignment
    assert _partition_count(raw, "adm-shrink") == 3


def test_create_partitions_validate_only(admin: AdminClient, raw: RawClient) -> None:
    assert _create_error(admin, NewTopic("adm-grow-vo", 1, 1)) is None
    futures = admin.create_partitions([NewPartitions("adm-grow-vo", 6)], validate_only=True,
                                      request_timeout=TIMEOUT)
    assert futures["adm-grow-vo"].result() is None
    assert _partition_count(raw, "adm-grow-vo") == 1


# --- DescribeCluster --------------------------------------------------------------------


def test_describe_cluster(admin: AdminClient, kp_admin: KafkaAdminClient, raw: RawClient,
                          broker: BrokerProcess) -> None:
    cluster_id = raw.request(3, 12, topics=[], allow_auto_topic_creation=False).body.cluster_id
    assert cluster_id and len(cluster_id) == 22  # Kafka's base64 UUID form
    described = admin.describe_cluster(request_timeout=TIMEOUT).result()
    assert described.cluster_id == cluster_id
    assert [(n.id, n.host, n.port) for n in described.nodes] == [(0, "127.0.0.1", broker.port)]
    assert described.controller is not None and described.controller.id == 0
    kp = kp_admin.describe_cluster()
    assert kp["cluster_id"] == cluster_id and kp["controller_id"] == 0
    assert [(b["broker_id"], b["host"], b["port"]) for b in kp["brokers"]] == [
        (0, "127.0.0.1", broker.port)]
    body = raw.request(60, 1, include_cluster_authorized_operations=False, endpoint_type=1).body
    assert body.error_code == ErrorCode.none and body.cluster_id == cluster_id
    # a broker is not a controller endpoint (KIP-919)
    body = raw.request(60, 1, include_cluster_authorized_operations=False, endpoint_type=2).body
    assert body.error_code == ErrorCode.unsupported_endpoint_type


# --- DeleteRecords ----------------------------------------------------------------------


def test_delete_records(admin: AdminClient, kp_admin: KafkaAdminClient, raw: RawClient) -> None:
    assert create_topic(raw, "adm-delrec").error_code == ErrorCode.none
    for i in range(4):
        produce(raw, "adm-delrec", record_batch([f"r{i}a".encode(), f"r{i}b".encode()]))
    assert high_watermark(raw, "adm-delrec") == 8
    result = admin.delete_records([TopicPartition("adm-delrec", 0, 3)],
                                  request_timeout=TIMEOUT)
    deleted = next(iter(result.values())).result()
    assert deleted.low_watermark == 3
    assert list_offset(raw, "adm-delrec", -2).offset == 3  # earliest moved
    kp_admin.delete_records({KpTopicPartition("adm-delrec", 0): 5})
    assert list_offset(raw, "adm-delrec", -2).offset == 5
    # beyond the high watermark
    body = raw.request(21, 2, timeout=5000, topics=[
        {"name": "adm-delrec", "partitions": [{"partition_index": 0, "offset": 9}]}]).body
    part = body.topics[0].partitions[0]
    assert part.error_code == ErrorCode.offset_out_of_range
    assert list_offset(raw, "adm-delrec", -2).offset == 5
    # -1 means "up to the high watermark"
    body = raw.request(21, 2, timeout=5000, topics=[
        {"name": "adm-delrec", "partitions": [{"partition_index": 0, "offset": -1}]}]).body
    assert body.topics[0].partitions[0].error_code == ErrorCode.none
    assert body.topics[0].partitions[0].low_watermark == 8
    # unknown partition
    body = raw.request(21, 2, timeout=5000, topics=[
        {"name": "adm-delrec", "partitions": [{"partition_index": 3, "offset": 0}]}]).body
    assert body.topics[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


# --- InitProducerId ---------------------------------------------------------------------


def _producer_ids(bootstrap: str, count: int) -> list[int]:
    ids = []
    with RawClient(bootstrap) as raw:
        for _ in range(count):
            body = raw.request(22, 4, transactional_id=None, transaction_timeout=60_000,
                               producer_id=-1, producer_epoch=-1).body
            assert body.error_code == ErrorCode.none
            assert body.producer_epoch == 0
            ids.append(int(body.producer_id))
    return ids


def test_init_producer_id_distinct_and_never_reused_after_restart(broker_factory: Any) -> None:
    node: BrokerProcess = broker_factory({})
    first = _producer_ids(node.bootstrap, 5)
    assert len(set(first)) == 5 and min(first) >= 0
    node.restart()
    second = _producer_ids(node.bootstrap, 5)
    assert len(set(second)) == 5
    assert min(second) > max(first), (first, second)
    node.kill()  # a crash, not a clean stop
    node.start()
    third = _producer_ids(node.bootstrap, 3)
    assert min(third) > max(second), (second, third)


def test_transactional_init_producer_id_is_refused_explicitly(raw: RawClient) -> None:
    body = raw.request(22, 4, transactional_id="txn-1", transaction_timeout=60_000,
                       producer_id=-1, producer_epoch=-1).body
    assert body.error_code != ErrorCode.none
    assert body.producer_id == -1

"""ApiVersions against a live broker, and every advertised API probed at its edge versions.

What we advertise must be exactly what we serve: a client picks the highest version both
sides know, so an advertised version the broker cannot answer breaks that client for
good. For each advertised API we send a valid request at the lowest and highest version
we serve and check that the response arrives, parses with the schema of that exact
version, carries our correlation id, and leaves the connection open.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient
from kio.schema.errors import ErrorCode

from strom.protocol import apis
from support.broker_process import BrokerProcess
from support.raw_client import (
    RawClient,
    create_topic,
    decode_response,
    encode_request,
    make_request,
    record_batch,
    topic_id,
)

PRODUCE, FETCH, LIST_OFFSETS, METADATA, API_VERSIONS = 0, 1, 2, 3, 18
CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS, INIT_PRODUCER_ID = 19, 20, 21, 22
DESCRIBE_CONFIGS, ALTER_CONFIGS, CREATE_PARTITIONS, INCREMENTAL_ALTER = 32, 33, 37, 44
DESCRIBE_CLUSTER = 60
CONSUMER_GROUP_HEARTBEAT, SHARE_GROUP_HEARTBEAT = 68, 76

# The first version Strom serves where that is above the advertised minimum.
SERVED_MIN = {PRODUCE: 3}

REQUIRED = {
    API_VERSIONS: "ApiVersions", METADATA: "Metadata", PRODUCE: "Produce", FETCH: "Fetch",
    LIST_OFFSETS: "ListOffsets", CREATE_TOPICS: "CreateTopics", DELETE_TOPICS: "DeleteTopics",
    CREATE_PARTITIONS: "CreatePartitions", DESCRIBE_CONFIGS: "DescribeConfigs",
    ALTER_CONFIGS: "AlterConfigs", INCREMENTAL_ALTER: "IncrementalAlterConfigs",
    DESCRIBE_CLUSTER: "DescribeCluster", DELETE_RECORDS: "DeleteRecords",
    INIT_PRODUCER_ID: "InitProducerId",
}


@pytest.fixture(scope="module")
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


@pytest.fixture(scope="module")
def advertised(raw: RawClient) -> dict[int, tuple[int, int]]:
    response = raw.request(API_VERSIONS, 3, client_software_name="strom-tests",
                           client_software_version="1.0")
    assert response.body.error_code == ErrorCode.none
    keys = [(int(k.api_key), int(k.min_version), int(k.max_version))
            for k in response.body.api_keys]
    assert len({k for k, _, _ in keys}) == len(keys), f"an API key is listed twice: {keys}"
    return {k: (lo, hi) for k, lo, hi in keys}


@pytest.fixture(scope="module")
def probe_topic(raw: RawClient) -> tuple[str, Any]:
    name = "apiv-probe"
    assert create_topic(raw, name, partitions=1).error_code == ErrorCode.none
    return name, topic_id(raw, name)


# --- the advertised table ---------------------------------------------------------------


def test_every_advertised_range_is_sane(advertised: dict[int, tuple[int, int]]) -> None:
    for key, (lo, hi) in advertised.items():
        known = apis.known_versions(key)
        assert len(known) > 0, f"advertised API key {key} that Kafka does not define"
        assert 0 <= lo <= hi, f"{apis.api_name(key)}: bad range {lo}..{hi}"
        assert hi <= known[-1], f"{apis.api_name(key)} v{hi} is beyond any known schema"
        served_lo = SERVED_MIN.get(key, lo)
        assert served_lo >= known[0] or key == PRODUCE
    missing = {name for key, name in REQUIRED.items() if key not in advertised}
    assert not missing, f"not advertised: {sorted(missing)}"
    # KIP-848 and KIP-932 are served by default, as by Kafka 4.4
    # (group.coordinator.rebalance.protocols).
    assert CONSUMER_GROUP_HEARTBEAT in advertised and SHARE_GROUP_HEARTBEAT in advertised


def test_produce_is_advertised_from_version_zero(advertised: dict[int, tuple[int, int]]) -> None:
    # librdkafka derives MsgVer2 support from the advertised range (KAFKA-18659).
    lo, hi = advertised[PRODUCE]
    assert lo == 0 and hi >= 9


def test_versions_real_clients_need_are_covered(advertised: dict[int, tuple[int, int]]) -> None:
    librdkafka_max = {PRODUCE: 10, FETCH: 16, LIST_OFFSETS: 7, METADATA: 13, API_VERSIONS: 3,
                      CREATE_TOPICS: 4, INIT_PRODUCER_ID: 4}
    for key, version in librdkafka_max.items():
        lo, hi = advertised[key]
        assert lo <= version <= hi, f"librdkafka's {apis.api_name(key)} v{version} not served"


def test_api_versions_v0_to_max_answer_the_same_list(
    raw: RawClient, advertised: dict[int, tuple[int, int]]
) -> None:
    lo, hi = advertised[API_VERSIONS]
    assert lo == 0 and hi >= 3
    for version in range(lo, hi + 1):
        response = raw.request(API_VERSIONS, version, client_software_name="strom-tests",
                               client_software_version="1.0")
        assert response.body.error_code == ErrorCode.none
        got = {int(k.api_key): (int(k.min_version), int(k.max_version))
               for k in response.body.api_keys}
        assert got == advertised, f"ApiVersions v{version} answered a different list"


def test_api_versions_response_header_is_v0_even_when_flexible(raw: RawClient) -> None:
    cid = raw.send(API_VERSIONS, 3, make_request(API_VERSIONS, 3, client_software_name="t",
                                                 client_software_version="1"),
                   correlation_id=0x0A0B0C0D)
    frame = raw.recv_frame()
    assert struct.unpack_from(">i", frame, 0)[0] == cid
    response = decode_response(frame, API_VERSIONS, 3)  # body parses right after 4 bytes
    # Header v0: error code (int16 0) then the compact api_keys count (N+1) at byte 6.
    # A v1 header would have put its tagged-field count (0x00) first, leaving 0 there.
    assert frame[4:6] == b"\x00\x00"
    assert frame[6] == len(response.body.api_keys) + 1


@pytest.mark.parametrize("version", [5, 99, 32767])
def test_unsupported_api_versions_version_answers_v0_with_the_list(
    raw: RawClient, advertised: dict[int, tuple[int, int]], version: int
) -> None:
    """KIP-511: a newer client's ApiVersions is answered as v0 with UNSUPPORTED_VERSION."""
    body = make_request(API_VERSIONS, 3, client_software_name="future-client",
                        client_software_version="9.9")
    frame = encode_request(API_VERSIONS, 3, body, correlation_id=4242)
    # Same bytes, but the header says `version` (offset 4+2: the api_version field).
    frame = frame[:6] + struct.pack(">h", version) + frame[8:]
    raw.send_raw(frame)
    response = decode_response(raw.recv_frame(), API_VERSIONS, 0)
    assert response.correlation_id == 4242
    assert response.body.error_code == ErrorCode.unsupported_version
    got = {int(k.api_key): (int(k.min_version), int(k.max_version))
           for k in response.body.api_keys}
    assert got == advertised
    # and the connection stays usable, as the client retries at a version we support
    again = raw.request(API_VERSIONS, 3, client_software_name="x", client_software_version="1")
    assert again.body.error_code == ErrorCode.none


def test_real_clients_negotiate_against_the_table(broker: BrokerProcess) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="apiv-kp")
    try:
        versions = admin.api_versions()
    finally:
        admin.close()
    assert versions, "kafka-python learned no API versions"
    producer = Producer({"bootstrap.servers": broker.bootstrap, "api.version.request": True,
                         "compression.type": "lz4"})
    producer.produce("apiv-clients", b"negotiated")
    assert producer.flush(20) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        from confluent_kafka import TopicPartition

        consumer.assign([TopicPartition("apiv-clients", 0, 0)])
        msg = None
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                break
        assert msg is not None and msg.error() is None and msg.value() == b"negotiated"
    finally:
        consumer.close()


# --- every advertised API answers at both ends of its range -----------------------------


def _minimal(key: int, version: int, topic: str, tid: Any, tag: str) -> dict[str, Any] | None:
    """A valid, harmless request body for `key`, or None to use an all-zero request."""
    part0 = {"partition_index": 0}
    builders: dict[int, Callable[[], dict[str, Any]]] = {
        API_VERSIONS: lambda: {"client_software_name": "probe", "client_software_version": "1"},
        METADATA: lambda: {"topics": [{"name": topic, "topic_id": None}],
                           "allow_auto_topic_creation": False},
        PRODUCE: lambda: {"acks": 1, "timeout": 5000, "topic_data": [
            {"name": topic, "topic_id": tid,
             "partition_data": [{"index": 0, "records": record_batch([tag.encode()])}]}]},
        FETCH: lambda: {"replica_id": -1, "max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20,
                        "session_epoch": -1, "topics": [
                            {"topic": topic, "topic_id": tid, "partitions": [
                                {"partition": 0, "fetch_offset": 0, "current_leader_epoch": -1,
                                 "last_fetched_epoch": -1, "log_start_offset": -1,
                                 "partition_max_bytes": 1 << 20}]}]},
        LIST_OFFSETS: lambda: {"replica_id": -1, "timeout": 5000, "topics": [
            {"name": topic, "partitions": [{**part0, "timestamp": -2, "current_leader_epoch": -1,
                                            "max_num_offsets": 1}]}]},
        CREATE_TOPICS: lambda: {"topics": [{"name": f"apiv-create-{tag}", "num_partitions": 1,
                                            "replication_factor": 1}], "timeout": 10_000},
        DELETE_TOPICS: lambda: {"topic_names": [f"apiv-create-{tag}"],
                                "topics": [{"name": f"apiv-create-{tag}", "topic_id": None}],
                                "timeout": 10_000},
        CREATE_PARTITIONS: lambda: {"topics": [{"name": f"apiv-grow-{tag}", "count": 2,
                                                "assignments": None}], "timeout": 10_000},
        DESCRIBE_CONFIGS: lambda: {"resources": [{"resource_type": 2, "resource_name": topic,
                                                  "configuration_keys": None}],
                                   "include_synonyms": True},
        ALTER_CONFIGS: lambda: {"resources": [{"resource_type": 2, "resource_name": topic,
                                               "configs": [{"name": "retention.ms",
                                                            "value": "86400000"}]}]},
        INCREMENTAL_ALTER: lambda: {"resources": [{"resource_type": 2, "resource_name": topic,
                                                   "configs": [{"name": "segment.ms",
                                                                "config_operation": 0,
                                                                "value": "3600000"}]}]},
        DESCRIBE_CLUSTER: lambda: {"endpoint_type": 1},
        DELETE_RECORDS: lambda: {"topics": [{"name": topic, "partitions": [
            {**part0, "offset": 0}]}], "timeout": 5000},
        INIT_PRODUCER_ID: lambda: {"transactional_id": None, "transaction_timeout": 60_000,
                                   "producer_id": -1, "producer_epoch": -1},
    }
    builder = builders.get(key)
    return builder() if builder else None


def _errors_in(body: Any) -> list[int]:
    """Every error_code field anywhere in a response entity."""
    found: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, tuple):
            for item in value:
                walk(item)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:
                field = getattr(value, name)
                if name == "error_code":
                    found.append(int(field))
                else:
                    walk(field)

    walk(body)
    return found


def _probe(raw: RawClient, key: int, version: int, topic: str, tid: Any) -> Any:
    tag = f"v{version}"
    if key == CREATE_PARTITIONS:
        assert create_topic(raw, f"apiv-grow-{tag}").error_code == ErrorCode.none
    if key == DELETE_TOPICS:
        assert create_topic(raw, f"apiv-create-{tag}").error_code == ErrorCode.none
    fields = _minimal(key, version, topic, tid, tag)
    body = make_request(key, version, fields or {})
    response = raw.request(key, version, body)  # checks the correlation id
    # Nothing is left unanswered on the connection: a follow-up request works.
    follow = raw.request(API_VERSIONS, 0)
    assert follow.body.error_code == ErrorCode.none
    return response.body


@pytest.mark.parametrize("key", sorted(REQUIRED), ids=[REQUIRED[k] for k in sorted(REQUIRED)])
@pytest.mark.parametrize("end", ["min", "max"])
def test_required_api_answers_at_edge_versions(
    raw: RawClient, advertised: dict[int, tuple[int, int]], probe_topic: tuple[str, Any],
    key: int, end: str,
) -> None:
    lo, hi = advertised[key]
    version = SERVED_MIN.get(key, lo) if end == "min" else hi
    topic, tid = probe_topic
    if key == CREATE_TOPICS:
        # the DeleteTopics probe creates its own; use a distinct tag here
        fields = _minimal(key, version, topic, tid, f"ct{end}")
        body = raw.request(key, version, make_request(key, version, fields)).body
    else:
        body = _probe(raw, key, version, topic, tid)
    errors = _errors_in(body)
    assert errors, f"{REQUIRED[key]} v{version}: no error_code anywhere in {body}"
    assert set(errors) == {0}, f"{REQUIRED[key]} v{version} answered errors {errors}: {body}"


def test_every_advertised_api_answers_a_zero_request(
    raw: RawClient, advertised: dict[int, tuple[int, int]], probe_topic: tuple[str, Any]
) -> None:
    """Also APIs this file does not know yet: an all-defaults request gets an answer."""
    for key, (lo, hi) in sorted(advertised.items()):
        if key == PRODUCE:
            continue  # acks=0 would legitimately get no response; covered above
        for version in sorted({SERVED_MIN.get(key, lo), hi}):
            body = make_request(key, version, {})
            raw.request(key, version, body)
            assert raw.request(API_VERSIONS, 0).body.error_code == ErrorCode.none

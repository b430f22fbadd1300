"""Share groups (KIP-932) over the wire, request by request, on a real Strom broker: the
`share` switch in `group.coordinator.rebalance.protocols`, share session epochs, the
acknowledgement rules, and `strom group list/describe` of a share group with the records
in flight."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer

from support.broker_process import BrokerProcess
from support.cli import strom, strom_json, table
from support.clients import create_topic
from support.raw_client import RawClient

pytestmark = [pytest.mark.timeout(120)]
ENABLED = {"group.coordinator.rebalance.protocols": "classic,consumer,share"}
HEARTBEAT, DESCRIBE, FETCH, ACK, API_VERSIONS = 76, 77, 78, 79, 18
NONE, INVALID_REQUEST, UNKNOWN_MEMBER_ID, UNSUPPORTED_VERSION = 0, 42, 25, 35
INVALID_RECORD_STATE, SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH = 121, 122, 123
NOT_COORDINATOR, LOADING = 16, 14


def topic_id(raw: RawClient, topic: str) -> uuid.UUID:
    body = raw.request(3, 12, topics=[{"name": topic, "topic_id": None}],
                       allow_auto_topic_creation=False,
                       include_topic_authorized_operations=False).body
    return body.topics[0].topic_id  # type: ignore[no-any-return]


def join(raw: RawClient, group: str, member: str, topic: str) -> Any:
    """Join once the group's coordinator is up (FindCoordinator creates the offsets topic)."""
    deadline = time.monotonic() + 30
    while True:
        raw.request(10, 4, key_type=0, coordinator_keys=[group])
        body = raw.request(HEARTBEAT, 1, group_id=group, member_id=member, member_epoch=0,
                           subscribed_topic_names=[topic]).body
        if body.error_code not in (NOT_COORDINATOR, LOADING) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert body.error_code == NONE, body
    return body


def fetch(raw: RawClient, group: str, member: str, epoch: int, tid: uuid.UUID,
          acks: list[dict[str, Any]] | None = None, wait_ms: int = 0) -> Any:
    return raw.request(FETCH, 2, group_id=group, member_id=member, share_session_epoch=epoch,
                       max_wait=wait_ms, min_bytes=1, max_bytes=1 << 20, max_records=500,
                       batch_size=500, topics=[{"topic_id": tid, "partitions": [
                           {"partition_index": 0, "acknowledgement_batches": acks or []}]}],
                       forgotten_topics_data=[]).body


def acquired(body: Any) -> list[tuple[int, int, int]]:
    return [(int(a.first_offset), int(a.last_offset), int(a.delivery_count))
            for t in body.responses for p in t.partitions for a in p.acquired_records]


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(), partition=0)
    assert producer.flush(30) == 0


def test_share_apis_are_off_with_share_version_zero(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    """On by default, as Kafka 4.4; `strom.share.version=0` is the off-switch."""
    proc = broker_factory({"strom.share.version": "0"})
    with RawClient(proc.bootstrap) as raw:
        keys = {int(k.api_key) for k in raw.request(API_VERSIONS, 3).body.api_keys}
        assert not keys & {HEARTBEAT, DESCRIBE, FETCH, ACK, 90, 91, 92}
        body = raw.request(HEARTBEAT, 1, group_id="g", member_id="m", member_epoch=0,
                           subscribed_topic_names=["t"]).body
        assert body.error_code == UNSUPPORTED_VERSION


def test_sessions_acknowledgements_and_the_cli(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    topic = create_topic(proc.bootstrap, f"share-{uuid.uuid4().hex[:6]}", partitions=1)
    group, member = "share-g", str(uuid.uuid4())
    with RawClient(proc.bootstrap) as raw:
        tid = topic_id(raw, topic)
        beat = join(raw, group, member, topic)
        assert beat.member_epoch == 1 and beat.assignment.topic_partitions[0].topic_id == tid
        assert fetch(raw, group, member, 1, tid).error_code == SHARE_SESSION_NOT_FOUND
        assert fetch(raw, group, member, 0, tid).error_code == NONE  # starts at the end (0)
        produce(proc.bootstrap, topic, 5)
        assert fetch(raw, group, member, 2, tid).error_code == INVALID_SHARE_SESSION_EPOCH
        assert acquired(fetch(raw, group, member, 1, tid, wait_ms=5000)) == [(0, 4, 1)]
        [described] = strom_json("group", "describe", group, "--brokers", proc.bootstrap)
        assert (described["type"], described["state"]) == ("share", "Stable")
        assert described["partitions"][0]["start_offset"] == 0
        assert described["total_in_flight"] == 5
        rows = {r["GROUP"]: r for r in table(strom("group", "list", "--brokers",
                                                    proc.bootstrap).stdout)}
        assert rows[group]["TYPE"] == "share"
        wrong = raw.request(ACK, 2, group_id=group, member_id="other", share_session_epoch=-1,
                            topics=[]).body
        assert wrong.error_code == SHARE_SESSION_NOT_FOUND
        acks = [{"first_offset": 0, "last_offset": 2, "acknowledge_types": [1]},
                {"first_offset": 3, "last_offset": 4, "acknowledge_types": [2]}]
        body = fetch(raw, group, member, 2, tid, acks)
        assert body.responses[0].partitions[0].acknowledge_error_code == NONE
        assert acquired(body) == [(3, 4, 2)]  # released: delivered again at once
        again = fetch(raw, group, member, 3, tid,
                      [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [1]}])
        assert again.responses[0].partitions[0].acknowledge_error_code == INVALID_RECORD_STATE
        [described] = strom_json("group", "describe", group, "--brokers", proc.bootstrap)
        assert described["partitions"][0]["start_offset"] == 3
        assert described["total_in_flight"] == 2
        with urllib.request.urlopen(proc.metrics_url, timeout=10) as page:
            scraped = page.read().decode()  # while the session's connection is open
    assert (f'strom_share_partition_records{{group="{group}",partition="0",state="acquired",'
            f'topic="{topic}"}} 2.0') in scraped
    assert 'strom_share_groups{state="Stable"} 1.0' in scraped


def test_share_group_apis_need_read_on_the_group(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    """With the authorizer on, a principal without ACLs (User:ANONYMOUS on PLAINTEXT) is
    refused GROUP_AUTHORIZATION_FAILED, as Kafka refuses it."""
    proc = broker_factory({**ENABLED, "super.users": "User:admin", "authorizer.class.name":
                           "org.apache.kafka.metadata.authorizer.StandardAuthorizer"})
    denied = 30
    with RawClient(proc.bootstrap) as raw:
        beat = raw.request(HEARTBEAT, 1, group_id="g", member_id="m", member_epoch=0,
                           subscribed_topic_names=["t"]).body
        assert (beat.error_code, beat.member_epoch) == (denied, -1)
        assert fetch(raw, "g", "m", 0, uuid.uuid4()).error_code == denied
        ack = raw.request(ACK, 2, group_id="g", member_id="m", share_session_epoch=-1,
                          topics=[]).body
        assert ack.error_code == denied
        described = raw.request(DESCRIBE, 1, group_ids=["g"],
                                include_authorized_operations=False).body
        assert described.groups[0].error_code == denied


def test_a_share_group_id_is_not_a_classic_or_consumer_group(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    topic = create_topic(proc.bootstrap, f"kinds-{uuid.uuid4().hex[:6]}", partitions=1)
    not_found = 69
    with RawClient(proc.bootstrap) as raw:
        join(raw, "kind-g", str(uuid.uuid4()), topic)
        joined = raw.request(11, 5, group_id="kind-g", session_timeout=30_000,
                             rebalance_timeout=30_000, member_id="", protocol_type="consumer",
                             protocols=[{"name": "range", "metadata": b""}]).body
        assert joined.error_code == not_found
        consumer = raw.request(68, 0, group_id="kind-g", member_id="", member_epoch=0,
                               rebalance_timeout=30_000, subscribed_topic_names=[topic],
                               topic_partitions=[]).body
        assert consumer.error_code == not_found
        other = raw.request(HEARTBEAT, 1, group_id="kind-g", member_id="x", member_epoch=0,
                            subscribed_topic_names=[topic]).body
        assert other.error_code == NONE  # a second share member is welcome


def test_read_committed_share_groups_never_see_aborted_records(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    """`share.isolation.level=read_committed` (a group config): an aborted transaction's
    records and every marker are archived, never acquired."""
    proc = broker_factory(ENABLED)
    topic = create_topic(proc.bootstrap, f"rc-{uuid.uuid4().hex[:6]}", partitions=1)
    group, member = "rc-g", str(uuid.uuid4())
    with RawClient(proc.bootstrap) as raw:
        altered = raw.request(44, 1, resources=[{
            "resource_type": 32, "resource_name": group, "configs": [{
                "name": "share.isolation.level", "config_operation": 0,
                "value": "read_committed"}]}], validate_only=False).body
        assert altered.responses[0].error_code == NONE, altered
        tid = topic_id(raw, topic)
        join(raw, group, member, topic)
        assert fetch(raw, group, member, 0, tid).error_code == NONE  # starts at 0
        producer = Producer({"bootstrap.servers": proc.bootstrap, "transactional.id": "rc-t"})
        producer.init_transactions(30)
        producer.begin_transaction()
        for value in (b"aborted-1", b"aborted-2"):  # offsets 0, 1; marker 2
            producer.produce(topic, value=value, partition=0)
        producer.flush(30)  # abort_transaction drops what is not sent yet
        producer.abort_transaction(30)
        producer.begin_transaction()
        for value in (b"committed-1", b"committed-2"):  # offsets 3, 4; marker 5
            producer.produce(topic, value=value, partition=0)
        producer.flush(30)
        producer.commit_transaction(30)
        got: list[tuple[int, int, int]] = []
        epoch = 1
        while sum(last - first + 1 for first, last, _ in got) < 2 and epoch < 20:
            got += acquired(fetch(raw, group, member, epoch, tid, wait_ms=2000))
            epoch += 1
        assert got == [(3, 4, 1)]

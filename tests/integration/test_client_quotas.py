"""Client quotas on a real broker process: AlterClientQuotas/DescribeClientQuotas on the
wire (Kafka's entity forms, strict and non-strict filters, validation messages,
validate_only, persistence across a restart), and byte-rate enforcement: a producer or
consumer over its quota is answered with `throttle_time_ms` (librdkafka reports it in
its statistics), the connection is muted, the broker exports the throttle per sensor,
and a client without a quota is never throttled. Assertions are on what the broker
reports (throttle times, bytes), not on wall-clock durations.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.raw_client import RawClient, create_topic, record_batch

pytestmark = pytest.mark.timeout(180)
PRODUCER_RATE = "producer_byte_rate"


def _entity(**names: str | None) -> list[dict[str, Any]]:
    return [{"entity_type": kind.replace("_", "-"), "entity_name": name}
            for kind, name in names.items()]


def alter(raw: RawClient, *entries: tuple[list[dict[str, Any]], dict[str, float | None]],
          validate_only: bool = False) -> list[tuple[int, str | None]]:
    body = raw.request(49, 1, validate_only=validate_only, entries=[
        {"entity": entity, "ops": [{"key": k, "value": v or 0.0, "remove": v is None}
                                   for k, v in ops.items()]}
        for entity, ops in entries]).body
    return [(int(e.error_code), e.error_message) for e in body.entries]


def describe(raw: RawClient, *components: tuple[str, int, str | None], strict: bool = False
             ) -> list[tuple[tuple[tuple[str, str | None], ...], dict[str, float]]]:
    body = raw.request(48, 1, strict=strict, components=[
        {"entity_type": kind, "match_type": match_type, "match": match}
        for kind, match_type, match in components]).body
    assert body.error_code == 0, body
    return sorted(((tuple((e.entity_type, e.entity_name) for e in entry.entity),
                    {v.key: v.value for v in entry.values}) for entry in body.entries),
                  key=repr)


EXACT, DEFAULT, ANY = 0, 1, 2


def test_alter_and_describe_every_entity_kind(raw: RawClient) -> None:
    assert alter(raw,
                 (_entity(user="alice"), {PRODUCER_RATE: 1024.0, "request_percentage": 50.5}),
                 (_entity(user=None), {"consumer_byte_rate": 2048.0}),
                 (_entity(client_id="c1"), {PRODUCER_RATE: 10.0}),
                 (_entity(client_id=None), {"controller_mutation_rate": 3.0}),
                 (_entity(user="alice", client_id="c1"), {"consumer_byte_rate": 5.0}),
                 (_entity(user=None, client_id=None), {PRODUCER_RATE: 7.0}),
                 ) == [(0, None)] * 6
    alice = (("user", "alice"),)
    assert describe(raw, ("user", EXACT, "alice"), strict=True) == [
        (alice, {PRODUCER_RATE: 1024.0, "request_percentage": 50.5})]
    # non-strict: every entity with user alice, with or without a client id
    assert {e for e, _ in describe(raw, ("user", EXACT, "alice"))} == {
        alice, (("user", "alice"), ("client-id", "c1"))}
    assert describe(raw, ("user", DEFAULT, None), strict=True) == [
        ((("user", None),), {"consumer_byte_rate": 2048.0})]
    assert {e for e, _ in describe(raw, ("client-id", ANY, None), strict=True)} == {
        (("client-id", None),), (("client-id", "c1"),)}
    assert {e for e, _ in describe(raw, ("user", ANY, None), ("client-id", ANY, None))} == {
        (("user", None), ("client-id", None)), (("user", "alice"), ("client-id", "c1"))}
    assert len(describe(raw)) == 6  # no components, not strict: everything
    assert describe(raw, strict=True) == []
    # removal of one key keeps the others; of the last one removes the entity
    assert alter(raw, (_entity(user="alice"), {"request_percentage": None})) == [(0, None)]
    assert describe(raw, ("user", EXACT, "alice"), strict=True) == [
        (alice, {PRODUCER_RATE: 1024.0})]
    assert alter(raw, (_entity(user="alice"), {PRODUCER_RATE: None})) == [(0, None)]
    assert describe(raw, ("user", EXACT, "alice"), strict=True) == []


def test_validate_only_and_kafkas_refusals(raw: RawClient) -> None:
    assert alter(raw, (_entity(user="vo"), {PRODUCER_RATE: 1.0}), validate_only=True) \
        == [(0, None)]
    assert describe(raw, ("user", EXACT, "vo")) == []
    invalid = int(ErrorCode.invalid_request)
    assert alter(raw, (_entity(user="bob"), {"producer_byte_rate": 1.5})) == [
        (invalid, "producer_byte_rate cannot be a fractional value.")]
    assert alter(raw, (_entity(user="bob"), {"nonsense": 1.0})) == [
        (invalid, "Invalid configuration key nonsense")]
    assert alter(raw, ([], {PRODUCER_RATE: 1.0})) == [
        (invalid, "Invalid empty client quota entity")]
    assert alter(raw, (_entity(user=""), {PRODUCER_RATE: 1.0})) == [
        (invalid, "Empty user not supported")]
    assert alter(raw, ([{"entity_type": "group", "entity_name": "g"}], {PRODUCER_RATE: 1.0})) \
        == [(invalid, "Unhandled client quota entity type: group")]
    assert alter(raw, (_entity(user="bob", client_id="c"), {PRODUCER_RATE: 1.0}),
                 (_entity(user="bob", client_id="c"), {PRODUCER_RATE: 2.0})) == [
        (invalid, "Ignoring duplicate entity ClientQuotaEntity(entries={client-id=c, "
                  "user=bob})")]
    assert describe(raw, ("user", EXACT, "bob"))[0][1] == {PRODUCER_RATE: 1.0}


def test_quotas_survive_a_restart(broker_factory: Any) -> None:
    proc: BrokerProcess = broker_factory()
    with RawClient(proc.bootstrap) as raw:
        assert alter(raw, (_entity(user="kept", client_id=None), {PRODUCER_RATE: 99.0})) \
            == [(0, None)]
    proc.restart()
    with RawClient(proc.bootstrap) as raw:
        assert describe(raw, ("user", EXACT, "kept")) == [
            ((("user", "kept"), ("client-id", None)), {PRODUCER_RATE: 99.0})]


def _produce(raw: RawClient, topic: str, payload: bytes, client_id: str) -> Any:
    from support.raw_client import make_request

    body = make_request(0, 9, acks=1, timeout=10_000, transactional_id=None, topic_data=[
        {"name": topic, "partition_data": [{"index": 0, "records": payload}]}])
    cid = raw.send(0, 9, body, client_id=client_id)
    response = raw.read_response(0, 9)
    assert response.correlation_id == cid
    return response.body


def _scrape(proc: BrokerProcess) -> str:
    with urllib.request.urlopen(proc.metrics_url, timeout=10) as answer:
        return str(answer.read().decode())


def test_a_producer_over_its_quota_is_throttled_and_others_are_not(broker_factory: Any
                                                                  ) -> None:
    """100 KB/s for client id `slow`: Kafka averages the first burst over 10 windows of
    1 s, so the request that takes the total past ~1 MB is answered with a throttle
    time; that time is what brings the average back to the quota
    (window + throttle = bytes / quota), and `fast` (no quota) is never throttled."""
    proc: BrokerProcess = broker_factory()
    quota = 100 * 1024
    with RawClient(proc.bootstrap) as raw:
        assert create_topic(raw, "quota-produce").error_code == 0
        assert alter(raw, (_entity(client_id="slow"), {PRODUCER_RATE: float(quota)})) \
            == [(0, None)]
        batch = record_batch([b"x" * 60_000])
        sent = 0
        throttles = []
        for _ in range(25):
            answer = _produce(raw, "quota-produce", batch, "slow")
            assert answer.responses[0].partition_responses[0].error_code == 0
            sent += len(batch)
            throttle_ms = int(answer.throttle_time.total_seconds() * 1000)
            throttles.append(throttle_ms)
            if throttle_ms:
                break
        assert throttles[0] == 0 and throttles[-1] > 0, throttles
        # the throttle brings the average back to the quota: W + t ~ bytes / quota
        assert 10_000 + throttles[-1] >= 0.9 * sent / quota * 1000
        for _ in range(25):
            answer = _produce(raw, "quota-produce", batch, "fast")
            assert int(answer.throttle_time.total_seconds() * 1000) == 0
    text = _scrape(proc)
    assert 'strom_client_quota_throttled_requests_total{client_id="slow",quota_type="Produce",' \
           'user=""} 1.0' in text
    assert 'strom_client_quota_limit_bytes_per_second{client_id="slow",quota_type="Produce",' \
           'user=""} 102400.0' in text


def test_librdkafka_reports_the_throttle(broker_factory: Any) -> None:
    """A confluent-kafka producer pushing ~1.5 MB under a 100 KB/s user-default quota
    (the ANONYMOUS user): its statistics show the broker's throttle time."""
    from confluent_kafka import Producer

    proc: BrokerProcess = broker_factory()
    with RawClient(proc.bootstrap) as raw:
        assert create_topic(raw, "quota-rdkafka").error_code == 0
        assert alter(raw, (_entity(user=None), {PRODUCER_RATE: 102400.0})) == [(0, None)]
    stats: list[dict[str, Any]] = []
    producer = Producer({"bootstrap.servers": proc.bootstrap, "client.id": "rdk",
                         "statistics.interval.ms": 500, "linger.ms": 5,
                         "stats_cb": lambda text: stats.append(json.loads(text))})
    for _ in range(1500):
        producer.produce("quota-rdkafka", b"y" * 1000)
        producer.poll(0)
    assert producer.flush(60) == 0

    def throttled() -> int:
        return max((b["throttle"]["max"] for s in stats for b in s["brokers"].values()
                    if b.get("nodeid", -1) >= 0), default=0)

    for _ in range(40):  # statistics come every 500 ms
        if throttled() > 0:
            break
        producer.poll(0.25)
    assert throttled() > 0, "librdkafka never saw a throttle time"
    assert 'quota_type="Produce",user="ANONYMOUS"' in _scrape(proc)


def _fetch(raw: RawClient, topic: str, client_id: str) -> Any:
    from support.raw_client import make_request

    body = make_request(1, 12, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=50_000_000,
                        isolation_level=0, session_id=0, session_epoch=-1, topics=[
                            {"topic": topic, "partitions": [
                                {"partition": 0, "current_leader_epoch": -1,
                                 "fetch_offset": 0, "last_fetched_epoch": -1,
                                 "log_start_offset": -1, "partition_max_bytes": 50_000_000}]}],
                        forgotten_topics_data=[], rack_id="")
    cid = raw.send(1, 12, body, client_id=client_id)
    response = raw.read_response(1, 12)
    assert response.correlation_id == cid
    return response.body


def test_a_consumer_over_its_quota_gets_an_empty_throttled_answer_and_is_muted(
        broker_factory: Any) -> None:
    """consumer_byte_rate 100 KB/s for client id `reader`: a fetch is capped at what the
    quota allows in a window (10 x 100 KB), the fetch that takes the rate over it is
    answered empty with a throttle time, and the connection then reads nothing until the
    throttle has passed (KIP-219): a request sent at once is not answered before."""
    import select

    proc: BrokerProcess = broker_factory()
    with RawClient(proc.bootstrap) as raw:
        assert create_topic(raw, "quota-fetch").error_code == 0
        batch = record_batch([b"z" * 100_000])
        for _ in range(20):
            assert _produce(raw, "quota-fetch", batch, "writer").responses[0] \
                .partition_responses[0].error_code == 0
        assert alter(raw, (_entity(client_id="reader"), {"consumer_byte_rate": 102400.0})) \
            == [(0, None)]
        first = _fetch(raw, "quota-fetch", "reader")
        records = first.responses[0].partitions[0].records
        assert 0 < len(records) <= 10 * 102400 + len(batch), len(records)  # capped
        throttled = None
        for _ in range(5):
            answer = _fetch(raw, "quota-fetch", "reader")
            if answer.throttle_time.total_seconds() > 0:
                throttled = answer
                break
        assert throttled is not None, "never throttled"
        assert list(throttled.responses) == []  # Kafka answers a throttled fetch empty
        throttle_s = throttled.throttle_time.total_seconds()
        assert throttle_s >= 2, throttle_s
        raw.send(18, 3, _api_versions())  # muted: not even read for the throttle time
        readable, _, _ = select.select([raw.sock], [], [], throttle_s / 2)
        assert not readable, "answered while the connection should be muted"
        raw.read_response(18, 3)  # answered once the throttle has passed
    assert ('strom_client_quota_throttled_requests_total{client_id="reader",'
            'quota_type="Fetch",user=""} 1.0') in _scrape(proc)


def _api_versions() -> Any:
    from support.raw_client import make_request

    return make_request(18, 3, client_software_name="t", client_software_version="1")


def test_an_old_producer_gets_its_throttled_answer_late(broker_factory: Any) -> None:
    """Produce v5 predates KIP-219: such a client does not back off on its own, so Kafka
    holds the throttled answer for the throttle time. 500 KB requests against 100 KB/s:
    the third takes the rate to 150 KB/s, a throttle of ~4.6 s; its answer is not there
    within a second of the request (a bound that a slow broker only makes safer)."""
    import select

    from support.raw_client import make_request

    proc: BrokerProcess = broker_factory()
    with RawClient(proc.bootstrap) as raw:
        assert create_topic(raw, "quota-old").error_code == 0
        assert alter(raw, (_entity(client_id="old"), {PRODUCER_RATE: 102400.0})) \
            == [(0, None)]
        batch = record_batch([b"o" * 500_000])
        for _ in range(5):
            raw.send(0, 5, make_request(0, 5, acks=1, timeout=10_000, transactional_id=None,
                                        topic_data=[{"name": "quota-old", "partition_data": [
                                            {"index": 0, "records": batch}]}]),
                     client_id="old")
            quick = bool(select.select([raw.sock], [], [], 1.0)[0])
            answer = raw.read_response(0, 5).body
            throttle_ms = int(answer.throttle_time.total_seconds() * 1000)
            if throttle_ms:
                assert throttle_ms >= 2000 and not quick, (throttle_ms, quick)
                break
        else:
            pytest.fail("never throttled")

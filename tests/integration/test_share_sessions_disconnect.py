"""Share sessions and their connections, and `share.renew.acknowledge.enable`, on a real
Strom broker over raw requests: a consumer whose connection closes hands its acquired
records back at once (Kafka 4.4's share session cache listens for disconnects), and a
group that disables renewing refuses RENEW acknowledgements with INVALID_RECORD_STATE."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from test_share_groups import (
    ACK,
    ENABLED,
    INVALID_RECORD_STATE,
    NONE,
    acquired,
    fetch,
    join,
    produce,
    topic_id,
)

from support.broker_process import BrokerProcess
from support.clients import create_topic
from support.raw_client import RawClient

pytestmark = [pytest.mark.timeout(120)]


def test_a_closed_connection_releases_its_members_records_at_once(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    """The lock is 30 s (Kafka's default); the second member gets the records within its
    5 s long poll only because the first one's connection closing released them."""
    proc = broker_factory(ENABLED)
    topic = create_topic(proc.bootstrap, f"disc-{uuid.uuid4().hex[:6]}", partitions=1)
    group, first, second = "disc-g", str(uuid.uuid4()), str(uuid.uuid4())
    with RawClient(proc.bootstrap) as raw:
        tid = topic_id(raw, topic)
        join(raw, group, first, topic)
        assert fetch(raw, group, first, 0, tid).error_code == NONE
        produce(proc.bootstrap, topic, 3)
        assert acquired(fetch(raw, group, first, 1, tid, wait_ms=5000)) == [(0, 2, 1)]
    with RawClient(proc.bootstrap) as raw:
        join(raw, group, second, topic)
        got = acquired(fetch(raw, group, second, 0, tid, wait_ms=5000))
        assert got == [(0, 2, 2)]  # delivered a second time, to the other member


def test_renew_is_refused_when_the_group_disables_it(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    topic = create_topic(proc.bootstrap, f"renew-{uuid.uuid4().hex[:6]}", partitions=1)
    member = str(uuid.uuid4())
    with RawClient(proc.bootstrap) as raw:
        tid = topic_id(raw, topic)
        for group, enabled in (("renew-on", "true"), ("renew-off", "false")):
            altered = raw.request(44, 1, resources=[{
                "resource_type": 32, "resource_name": group, "configs": [
                    {"name": "share.renew.acknowledge.enable", "config_operation": 0,
                     "value": enabled},
                    {"name": "share.auto.offset.reset", "config_operation": 0,
                     "value": "earliest"}]}], validate_only=False).body
            assert altered.responses[0].error_code == NONE, altered
        produce(proc.bootstrap, topic, 2)
        codes = {}
        for group in ("renew-on", "renew-off"):
            join(raw, group, member, topic)
            assert acquired(fetch(raw, group, member, 0, tid, wait_ms=5000)) == [(0, 1, 1)]
            body = raw.request(ACK, 2, group_id=group, member_id=member, share_session_epoch=1,
                               topics=[{"topic_id": tid, "partitions": [{
                                   "partition_index": 0, "acknowledgement_batches": [{
                                       "first_offset": 0, "last_offset": 1,
                                       "acknowledge_types": [4]}]}]}]).body
            assert body.error_code == NONE, body
            codes[group] = body.responses[0].partitions[0].error_code
        assert codes == {"renew-on": NONE, "renew-off": INVALID_RECORD_STATE}

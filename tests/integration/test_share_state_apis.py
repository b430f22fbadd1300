"""The share coordinator's APIs (83-87) over the wire on a real Strom broker, as a
partition leader of another broker calls them: initialize, write (v1, with Kafka 4.4's
DeliveryCompleteCount), read, summary, delete; FindCoordinator key type 2 names the
broker holding the share-partition's `__share_group_state` partition."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from test_share_groups import ENABLED

from support.broker_process import BrokerProcess
from support.raw_client import RawClient

pytestmark = [pytest.mark.timeout(120)]
INITIALIZE, READ, WRITE, DELETE, SUMMARY = 83, 84, 85, 86, 87


def _call(raw: RawClient, api: int, version: int, tid: uuid.UUID, **fields: Any) -> Any:
    """One share-partition (partition 0 of ``tid``) of group g; retried while the state
    topic is being made."""
    deadline = time.monotonic() + 30
    while True:
        body = raw.request(api, version, group_id="g", topics=[
            {"topic_id": tid, "partitions": [{"partition": 0, **fields}]}]).body
        result = body.results[0].partitions[0]
        if result.error_code not in (14, 15, 16) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_initialize_write_read_summary_delete(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    tid = uuid.uuid4()
    with RawClient(proc.bootstrap) as raw:
        key = f"g:{base64.urlsafe_b64encode(tid.bytes).decode().rstrip('=')}:0"
        found = raw.request(10, 6, key_type=2, coordinator_keys=[key]).body.coordinators[0]
        assert found.error_code == 0 and found.node_id == 0, found
        assert _call(raw, INITIALIZE, 0, tid, state_epoch=1, start_offset=10).error_code == 0
        written = _call(raw, WRITE, 1, tid, state_epoch=1, leader_epoch=0, start_offset=12,
                        delivery_complete_count=1, state_batches=[
                            {"first_offset": 12, "last_offset": 13, "delivery_state": 2,
                             "delivery_count": 1}])
        assert written.error_code == 0
        fenced = _call(raw, WRITE, 1, tid, state_epoch=0, leader_epoch=0, start_offset=0,
                       delivery_complete_count=-1, state_batches=[])
        assert fenced.error_code == 124  # FENCED_STATE_EPOCH
        read = _call(raw, READ, 0, tid, leader_epoch=0)
        assert (read.error_code, read.state_epoch, read.start_offset) == (0, 1, 12)
        assert [(b.first_offset, b.last_offset, b.delivery_state, b.delivery_count)
                for b in read.state_batches] == [(12, 13, 2, 1)]
        summary = _call(raw, SUMMARY, 1, tid, leader_epoch=0)
        assert (summary.start_offset, summary.delivery_complete_count) == (12, 1)
        assert _call(raw, DELETE, 0, tid).error_code == 0
        assert _call(raw, READ, 0, tid, leader_epoch=0).start_offset == -1

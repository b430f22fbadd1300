"""Kafka 4.4's DumpLogSegments --share-group-state-decoder reads the `__share_group_state`
records Strom's share coordinator writes (ShareSnapshot, ShareUpdate, a tombstone),
field by field, from a log segment of Strom's record batches."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from strom.coordinator.share_state.records import ShareRecord, StateBatch
from strom.coordinator.share_state.shard import ShareCoordinatorShard
from strom.protocol.records import encode_batch
from support.interop import kafka_dist

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


def _records() -> tuple[uuid.UUID, list[ShareRecord]]:
    topic = uuid.uuid4()
    key = ("share-g", topic, 3)
    shard = ShareCoordinatorShard(lambda: 1_700_000_000_000, snapshot_every=500)
    records: list[ShareRecord] = []
    operations = (lambda: shard.initialize(key, 1, 10),
                  lambda: shard.write(key, 1, 0, 12, (StateBatch(12, 13, 2, 1),
                                                      StateBatch(14, 14, 4, 5)), 2),
                  lambda: shard.delete(key))
    for operation in operations:
        for record in operation().records:
            shard.replay(record)
            records.append(record)
    return topic, records


def test_kafka_decodes_the_share_state_records_strom_writes(tmp_path: Path,
                                                             kafka_lib: Path) -> None:
    topic, records = _records()
    segment = tmp_path / "__share_group_state-0" / "00000000000000000000.log"
    segment.parent.mkdir()
    data = b"".join(encode_batch([r.entry()], base_offset=i, timestamp_ms=1_700_000_000_000)
                    for i, r in enumerate(records))
    segment.write_bytes(data)
    out = kafka_dist.run_tool("org.apache.kafka.tools.DumpLogSegments",
                              "--share-group-state-decoder", "--files", str(segment),
                              check=True).stdout
    lines = [line for line in out.splitlines() if " key: " in line]
    assert len(lines) == 3, out[-3000:]
    parsed = []
    for line in lines:
        key = json.loads(line.split(" key: ", 1)[1].split(" payload: ", 1)[0])
        payload = line.split(" payload: ", 1)[1]
        parsed.append((key, None if payload.strip() in ("", "<DELETE>") else json.loads(payload)))
    topic_text = kafka_dist_uuid(topic)
    (k0, v0), (k1, v1), (k2, v2) = parsed
    assert k0 == {"type": "0", "data": {"groupId": "share-g", "topicId": topic_text,
                                        "partition": 3}}
    assert v0["data"]["stateEpoch"] == 1 and v0["data"]["startOffset"] == 10
    assert k1["type"] == "1" and v1["data"]["startOffset"] == 12
    assert v1["data"]["stateBatches"] == [
        {"firstOffset": 12, "lastOffset": 13, "deliveryState": 2, "deliveryCount": 1},
        {"firstOffset": 14, "lastOffset": 14, "deliveryState": 4, "deliveryCount": 5}]
    assert v1["data"]["deliveryCompleteCount"] == 2
    assert k2["type"] == "0" and v2 is None  # the tombstone


def kafka_dist_uuid(value: uuid.UUID) -> str:
    from strom.coordinator.share_state.config import kafka_uuid_text

    return kafka_uuid_text(value)

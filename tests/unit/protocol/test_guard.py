"""Declared-size guard: valid requests pass, impossible counts are refused cheaply."""

from __future__ import annotations

import io
import struct
from datetime import timedelta

import pytest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.serial import entity_writer

from strom.protocol import guard
from strom.protocol.records import encode_batch


def encode(entity) -> bytes:
    out = io.BytesIO()
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def test_valid_requests_pass_and_end_where_kio_ends():
    produce = ProduceRequest(transactional_id=None, acks=-1, timeout=timedelta(seconds=1),
                             topic_data=(TopicProduceData(name="t", partition_data=(
                                 PartitionProduceData(index=0, records=encode_batch([(b"k", b"v")])),)),))
    data = encode(produce)
    assert guard.check_entity(ProduceRequest, data, 0, len(data)) == len(data)
    metadata = MetadataRequest(topics=tuple(MetadataRequestTopic(topic_id=None, name=f"t{i}")
                                            for i in range(50)),
                               allow_auto_topic_creation=True,
                               include_topic_authorized_operations=False)
    data = encode(metadata)
    assert guard.check_entity(MetadataRequest, data, 0, len(data)) == len(data)


@pytest.mark.parametrize("count", [b"\xff\xff\xff\xff\x7f", b"\x80\x80\x04"])
def test_impossible_array_counts_are_refused(count):
    with pytest.raises(guard.DeclaredSizeError):
        guard.check_entity(MetadataRequest, count + b"\x00\x00", 0, len(count) + 2)


def test_oversized_string_is_refused():
    data = b"\x02" + b"\x00" * 16 + b"\xff\xff\x03" + b"ab"
    with pytest.raises(guard.DeclaredSizeError):
        guard.check_entity(MetadataRequest, data, 0, len(data))


def test_legacy_negative_count_is_null_not_an_error():
    from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1

    data = struct.pack(">i", -1)
    assert guard.check_entity(MetadataV1, data, 0, len(data)) == 4

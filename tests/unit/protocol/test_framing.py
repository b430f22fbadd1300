"""Framing and request decoding: sizes, headers, unknown versions, garbage."""

from __future__ import annotations

import contextlib
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_writer

from strom.protocol import framing
from strom.protocol.framing import FrameDecoder, FrameError, RequestDecodeError


def encode_request(header, body) -> bytes:
    out = io.BytesIO()
    entity_writer(type(header))(out, header)
    entity_writer(type(body))(out, body)
    return out.getvalue()


def test_frames_split_across_reads_are_reassembled():
    payload = b"x" * 10
    frame = struct.pack(">i", len(payload)) + payload
    decoder = FrameDecoder(100)
    assert decoder.feed(frame[:3]) == []
    assert decoder.feed(frame[3:] + frame) == [payload, payload]
    assert decoder.buffered == 0


@pytest.mark.parametrize("size", [-1, -(2**31), 101])
def test_bad_frame_sizes_are_refused_before_allocation(size):
    with pytest.raises(FrameError):
        FrameDecoder(100).feed(struct.pack(">i", size))


def test_flexible_request_decodes():
    header = HeaderV2(request_api_key=3, request_api_version=12, correlation_id=42, client_id="t")
    body = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
        allow_auto_topic_creation=True,
        include_topic_authorized_operations=False,
    )
    request = framing.decode_request(encode_request(header, body))
    assert (request.api_key, request.api_version, request.correlation_id) == (3, 12, 42)
    assert request.body.topics[0].name == "orders"


def test_unknown_version_yields_no_body():
    header = HeaderV1(request_api_key=18, request_api_version=99, correlation_id=5, client_id=None)
    body = ApiVersionsRequest(client_software_name="a", client_software_version="1")
    request = framing.decode_request(encode_request(header, body))
    assert request.body is None and request.correlation_id == 5


def test_trailing_bytes_are_ignored_as_kafka_does():
    # librdkafka 2.x sends all-topics Metadata v9+ with 3 stray bytes after the body.
    frame = bytes.fromhex("0003000d00000003000772646b61666b610000000000010000")
    request = framing.decode_request(frame)
    assert (request.api_key, request.api_version, request.correlation_id) == (3, 13, 3)
    assert request.body.topics is None


@settings(max_examples=400)
@given(st.integers(0, 80), st.integers(-1, 20), st.binary(max_size=300))
def test_decoder_never_crashes_on_garbage(api_key, version, tail):
    frame = struct.pack(">hhi", api_key, version, 7) + tail
    with contextlib.suppress(RequestDecodeError):
        framing.decode_request(frame)


@given(st.lists(st.binary(max_size=50), max_size=8), st.lists(st.integers(1, 40), max_size=30))
def test_any_chunking_yields_the_same_frames(payloads, cuts):
    stream = b"".join(struct.pack(">i", len(p)) + p for p in payloads)
    decoder = FrameDecoder(1000)
    frames, pos = [], 0
    for cut in cuts:
        frames += decoder.feed(stream[pos : pos + cut])
        pos += cut
    frames += decoder.feed(stream[pos:])
    assert frames == payloads
    assert decoder.buffered == 0

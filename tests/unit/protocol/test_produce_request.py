"""Produce requests read without copying their records (`strom.protocol.produce_request`),
against kio's reader (behind `guard`, as every other request is read): both agree on
every recorded produce request of real clients and on thousands of mutations of them,
and the records of a request read from a connection's frame are that frame's bytes."""

from __future__ import annotations

import contextlib
import io
import random
import struct
from typing import Any

import pytest
from kio.serial import entity_writer

from strom.protocol import apis, framing, guard
from strom.protocol.api_keys import ApiKey
from strom.protocol.framing import FrameDecoder
from strom.protocol.produce_request import read_produce
from strom.protocol.records import read_header
from strom.protocol.schema import build, null_required_array
from support import fuzz_frames
from support.golden import all_exchanges

MUTATIONS_PER_SEED = 60
ENGINES = ("bitflip", "interesting", "length-lie", "truncate", "insert-delete", "splice")


def _seeds() -> list[bytes]:
    """Every produce frame recorded from real clients (size prefix included)."""
    golden = [e.request for e in all_exchanges() if e.api_key == ApiKey.PRODUCE]
    fuzz = [s.frame for s in fuzz_frames.load_corpus() if s.api[0] == ApiKey.PRODUCE]
    return golden + fuzz


def _body_offset(frame: bytes, version: int) -> int:
    """Where the body starts in a frame without its size prefix."""
    spec = apis.request_spec(ApiKey.PRODUCE, version)
    assert spec is not None
    reader = framing._read_header_v2 if spec.flexible else framing._read_header_v1
    return int(reader(frame, 0)[1])


def _kio(frame: bytes, version: int, pos: int) -> Any:
    """The reading every other request gets: guard, kio, the non-nullable-array check."""
    spec = apis.request_spec(ApiKey.PRODUCE, version)
    assert spec is not None
    guard.check_entity(spec.request_type, frame, pos, len(frame))
    body, _ = spec.reader(frame, pos)
    if null_required_array(body) is not None:
        raise ValueError("null array")
    return body


def _outcome(read: Any, frame: bytes, version: int, pos: int) -> tuple[str, Any]:
    try:
        return "ok", read(frame, version, pos)
    except Exception as exc:  # noqa: BLE001 - any failure is the outcome compared
        return "error", type(exc).__name__


def _ours(frame: bytes, version: int, pos: int) -> Any:
    return read_produce(bytearray(frame), pos, version)


def test_the_seeds_cover_flexible_and_legacy_versions() -> None:
    versions = {struct.unpack_from(">h", f, 6)[0] for f in _seeds()}
    assert {v for v in versions if v >= 9} and {v for v in versions if v < 9}, versions


@pytest.mark.parametrize("frame", _seeds(), ids=lambda f: f"v{struct.unpack_from('>h', f, 6)[0]}")
def test_real_clients_requests_read_as_kio_reads_them(frame: bytes) -> None:
    body = frame[4:]
    version = struct.unpack_from(">h", body, 2)[0]
    pos = _body_offset(body, version)
    ours = read_produce(bytearray(body), pos, version)
    assert ours == _kio(body, version, pos)
    for topic in ours.topic_data:
        for part in topic.partition_data:
            assert part.records is None or isinstance(part.records, memoryview)


def test_mutations_are_refused_or_read_alike_by_both() -> None:
    rng = random.Random(20261201)
    seeds = _seeds()
    corpus = [fuzz_frames.Seed("produce", f) for f in seeds]
    compared = refused = 0
    for seed in seeds:
        for _ in range(MUTATIONS_PER_SEED):
            mutated = fuzz_frames.ENGINES[rng.choice(ENGINES)](seed, rng, corpus)[4:]
            if len(mutated) < 8 or struct.unpack_from(">h", mutated, 0)[0] != ApiKey.PRODUCE:
                continue
            version = struct.unpack_from(">h", mutated, 2)[0]
            if apis.request_spec(ApiKey.PRODUCE, version) is None:
                continue
            try:
                pos = _body_offset(mutated, version)
            except Exception:  # noqa: BLE001 - a broken header is framing's, not ours
                continue
            theirs = _outcome(_kio, mutated, version, pos)
            ours = _outcome(_ours, mutated, version, pos)
            assert ours[0] == theirs[0], (mutated.hex(), ours, theirs)
            if ours[0] == "ok":
                assert ours[1] == theirs[1]
            compared += 1
            refused += ours[0] == "error"
    assert compared > 1000 and 0 < refused < compared


def _request(version: int, records: bytes) -> bytes:
    """A whole produce frame (size prefix included) with one partition's records."""
    spec = apis.request_spec(ApiKey.PRODUCE, version)
    assert spec is not None
    body = build(spec.request_type, {
        "transactional_id": None, "acks": 1, "timeout": 1000,
        "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": records}]}]})
    out = io.BytesIO()
    header = struct.pack(">hhih", ApiKey.PRODUCE, version, 7, 1) + b"c"
    out.write(header + (b"\0" if spec.flexible else b""))
    entity_writer(type(body))(out, body)
    data = out.getvalue()
    return struct.pack(">i", len(data)) + data


@pytest.mark.parametrize("version", [3, 8, 9, 12])
def test_records_are_the_frames_own_bytes(version: int) -> None:
    """Patching a request's records patches the frame the connection read: no copy
    between the socket's buffer and the log's write."""
    from strom.protocol.records import encode_batch, patch_base_offset

    batch = encode_batch([(None, b"value")])
    stream = _request(version, batch) + _request(version, batch)
    decoder = FrameDecoder(1 << 20)
    frames = decoder.feed(stream[:10]) + decoder.feed(stream[10:])  # one of them joined
    assert len(frames) == 2
    for frame in frames:
        assert isinstance(frame, memoryview) and not frame.readonly
        [topic] = framing.decode_request(frame).body.topic_data
        records = topic.partition_data[0].records
        assert not records.readonly
        patch_base_offset(records, 0, 4242)
        at = bytes(frame).index(batch[8:]) - 8  # base offset: the batch's first 8 bytes
        assert read_header(frame, at).base_offset == 4242
    assert bytes(stream).count(batch) == 2  # the bytes given to the decoder are untouched


def test_a_frame_given_as_bytes_still_reads() -> None:
    """Tools and tests decode bytes: the records are then read-only views of them."""
    from strom.protocol.records import encode_batch

    frame = _request(9, encode_batch([(b"k", b"v")]))[4:]
    [topic] = framing.decode_request(frame).body.topic_data
    records = topic.partition_data[0].records
    assert records.readonly and bytes(records) == encode_batch([(b"k", b"v")])
    with contextlib.suppress(framing.RequestDecodeError):
        framing.decode_request(frame[:-3])

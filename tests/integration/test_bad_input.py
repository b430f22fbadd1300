"""Hostile and broken input on the wire: the broker closes that one connection, says so in
its log, and keeps serving everyone else.

Each case sends bytes a correct client never would — bad frame sizes, garbage, truncated
or undecodable requests, APIs and versions we do not serve, declared lengths far beyond
the frame (CVE-2022-34917) — then checks three things: the connection is closed (or, where
Kafka answers, the right error comes back), the broker log has a line about it, and a real
client can still produce and consume on a fresh connection. A Hypothesis test then throws
mutated versions of valid requests at the live broker.
"""

from __future__ import annotations

import io
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v2.header import RequestHeader
from kio.serial import entity_writer

from support.broker_process import BrokerProcess
from support.raw_client import (
    RawClient,
    create_topic,
    decode_response,
    encode_header_only,
    encode_request,
    high_watermark,
    make_request,
    record_batch,
)

TIMEOUT = 20.0


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _wait_for_log(proc: BrokerProcess, needle: str, since: int, timeout: float = 10.0) -> str:
    """The broker's log written after byte offset `since`, once it contains `needle`."""
    deadline = time.monotonic() + timeout
    while True:
        text = proc.log_text()[since:]
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def assert_serves(proc: BrokerProcess, topic: str) -> None:
    """A real client produces and consumes on fresh connections."""
    assert proc.is_alive(), f"broker died; log:\n{proc.log_text()[-3000:]}"
    producer = Producer({"bootstrap.servers": proc.bootstrap, "linger.ms": 0})
    value = f"still-alive-{time.monotonic_ns()}".encode()
    producer.produce(topic, value)
    assert producer.flush(TIMEOUT) == 0, "produce after bad input did not complete"
    consumer = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": f"{topic}-check",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        seen: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT
        while value not in seen and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append(msg.value())
        assert value in seen, "consume after bad input did not see the record"
    finally:
        consumer.close()


def _send_and_expect_close(proc: BrokerProcess, data: bytes) -> bool:
    with RawClient(proc.bootstrap) as raw:
        raw.send_raw(data)
        return raw.is_closed_by_peer(timeout=10.0)


def _metadata_v9_body() -> bytes:
    body = make_request(3, 9, topics=[{"name": "some-topic"}], allow_auto_topic_creation=False,
                        include_cluster_authorized_operations=False,
                        include_topic_authorized_operations=False)
    return encode_request(3, 9, body, correlation_id=77)[4:]


def _huge_array_count() -> bytes:
    # Metadata v1: header, then a topics array that claims 2^31-1 entries in a 4-byte body
    return _frame(encode_header_only(3, 1, 78) + struct.pack(">i", 0x7FFFFFFF))


def _huge_records_length() -> bytes:
    # Produce v3: transactional_id null, acks, timeout, 1 topic, 1 partition, then a
    # records length of 2^31-1 with nothing behind it
    body = struct.pack(">hhi", -1, 1, 5000) + struct.pack(">i", 1)
    body += struct.pack(">h", 5) + b"topic" + struct.pack(">i", 1)
    body += struct.pack(">i", 0) + struct.pack(">i", 0x7FFFFFFF)
    return _frame(encode_header_only(0, 3, 79) + body)


def _huge_compact_string() -> bytes:
    # Metadata v12 (flexible): topics compact array of 1, topic id, then a name whose
    # unsigned-varint length claims about 2^28 bytes
    out = io.BytesIO()
    entity_writer(RequestHeader)(out, RequestHeader(request_api_key=3, request_api_version=12,
                                                    correlation_id=80, client_id="x"))
    out.write(b"\x02" + b"\x00" * 16 + b"\xff\xff\xff\x7f")
    return _frame(out.getvalue())


# name -> (the bytes to send, a phrase the broker must log about them)
BAD_FRAMES: dict[str, tuple[Callable[[], bytes], str]] = {
    "negative-size": (lambda: struct.pack(">i", -5), "frame size -5"),
    "min-int-size": (lambda: struct.pack(">i", -(2**31)), "frame size -2147483648"),
    "http-request": (lambda: b"GET / HTTP/1.1\r\nHost: broker\r\n\r\n", "frame size"),
    "tls-client-hello": (lambda: bytes.fromhex("160301020001000200") + b"\x03\x03" * 40,
                         "frame size"),
    "zero-size-frame": (lambda: _frame(b""), "bad request header"),
    "random-garbage": (lambda: _frame(bytes.fromhex("f00dbabe") * 8), "bad request header"),
    "header-only-no-body": (lambda: _frame(encode_header_only(3, 9, 81)),
                            "cannot decode metadata v9"),
    "truncated-body": (lambda: _frame(_metadata_v9_body()[:-6]), "cannot decode metadata v9"),
    "unknown-api-key": (lambda: _frame(encode_header_only(999, 0, 82) + b"\x00" * 8),
                        "unsupported API"),
    "negative-api-key": (lambda: _frame(encode_header_only(-3, 0, 83) + b"\x00" * 8),
                         "unsupported API"),
    "metadata-v99": (lambda: _frame(encode_header_only(3, 99, 84) + b"\x00" * 8),
                     "unsupported API"),
    "produce-v2-below-served": (lambda: _frame(encode_header_only(0, 2, 85) + b"\x00" * 8),
                                "unsupported API"),
    "null-required-array": (lambda: _frame(encode_header_only(0, 3, 86) + struct.pack(
        ">hhii", -1, 1, 5000, -1)), "topic_data was serialized as null"),
    "huge-array-count": (_huge_array_count, "cannot decode metadata v1"),
    "huge-records-length": (_huge_records_length, "cannot decode produce v3"),
    "huge-compact-string": (_huge_compact_string, "cannot decode metadata v12"),
}


@pytest.fixture(scope="module")
def live(broker: BrokerProcess) -> BrokerProcess:
    with RawClient(broker.bootstrap) as raw:
        assert create_topic(raw, "bad-input-check").error_code == ErrorCode.none
    return broker


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frame_closes_the_connection(live: BrokerProcess, case: str) -> None:
    make, needle = BAD_FRAMES[case]
    since = len(live.log_text())
    assert _send_and_expect_close(live, make()), f"{case}: connection left open"
    log = _wait_for_log(live, needle, since)
    assert needle in log, f"{case}: no log line containing {needle!r}; got:\n{log}"
    assert_serves(live, "bad-input-check")


def test_bad_request_does_not_affect_other_connections(live: BrokerProcess) -> None:
    with RawClient(live.bootstrap) as good:
        before = high_watermark(good, "bad-input-check")
        assert _send_and_expect_close(live, _frame(encode_header_only(999, 0, 1)))
        # the healthy connection is untouched and keeps its request order
        assert high_watermark(good, "bad-input-check") == before
        response = good.request(18, 3, client_software_name="ok", client_software_version="1")
        assert response.body.error_code == ErrorCode.none


def test_bad_frame_after_good_requests_on_the_same_connection(live: BrokerProcess) -> None:
    """Requests queued before the bad frame are still answered, in order."""
    with RawClient(live.bootstrap) as raw:
        first = raw.send(18, 3, make_request(18, 3, client_software_name="a",
                                             client_software_version="1"))
        second = raw.send(18, 0, make_request(18, 0))
        raw.send_raw(_frame(encode_header_only(999, 0, 3)))
        assert decode_response(raw.recv_frame(), 18, 3).correlation_id == first
        assert decode_response(raw.recv_frame(), 18, 0).correlation_id == second
        assert raw.is_closed_by_peer(timeout=10.0)


def test_truncated_frame_then_close(live: BrokerProcess) -> None:
    since = len(live.log_text())
    full = _frame(_metadata_v9_body())
    for cut in (2, 4, 10, len(full) - 1):
        with RawClient(live.bootstrap) as raw:
            raw.send_raw(full[:cut])
    log = _wait_for_log(live, "incomplete request", since)
    assert "incomplete request" in log, log
    assert_serves(live, "bad-input-check")


def test_api_versions_at_an_unsupported_version_is_answered(live: BrokerProcess) -> None:
    """The one exception Kafka makes (KIP-511): answered as v0, connection kept."""
    with RawClient(live.bootstrap) as raw:
        raw.send_raw(_frame(encode_header_only(18, 99, 4711)))
        response = decode_response(raw.recv_frame(), 18, 0)
        assert response.correlation_id == 4711
        assert response.body.error_code == ErrorCode.unsupported_version
        assert response.body.api_keys
        again = raw.request(18, 3, client_software_name="a", client_software_version="1")
        assert again.body.error_code == ErrorCode.none


def test_frame_above_socket_request_max_bytes(broker_factory: Any) -> None:
    node: BrokerProcess = broker_factory({"socket.request.max.bytes": "4096"})
    with RawClient(node.bootstrap) as raw:
        assert create_topic(raw, "bad-input-small-frames").error_code == ErrorCode.none
        # just under the limit is fine
        body = make_request(0, 9, acks=1, timeout=5000, transactional_id=None, topic_data=[
            {"name": "bad-input-small-frames",
             "partition_data": [{"index": 0, "records": record_batch([b"x" * 3000])}]}])
        ok = raw.request(0, 9, body).body.responses[0].partition_responses[0]
        assert ok.error_code == ErrorCode.none
    since = len(node.log_text())
    # the size alone is refused, before any of the body is sent or allocated
    assert _send_and_expect_close(node, struct.pack(">i", 4097))
    assert _send_and_expect_close(node, struct.pack(">i", 50_000_000) + b"\x00" * 64)
    log = _wait_for_log(node, "frame size 50000000", since)
    assert "frame size 4097" in log and "frame size 50000000" in log, log
    assert_serves(node, "bad-input-small-frames")


def test_many_connections_closed_mid_request(live: BrokerProcess) -> None:
    """Clients vanishing with partial requests buffered leave no state behind."""
    full = _frame(_metadata_v9_body())
    for i in range(50):
        sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
        sock.sendall(full[: 1 + i % (len(full) - 1)])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, not FIN
    assert_serves(live, "bad-input-check")


def _flexible_header(api_key: int, version: int, correlation_id: int) -> bytes:
    out = io.BytesIO()
    entity_writer(RequestHeader)(out, RequestHeader(request_api_key=api_key,
                                                    request_api_version=version,
                                                    correlation_id=correlation_id,
                                                    client_id="bomb"))
    return out.getvalue()


# A compact array whose 5-byte unsigned varint count says 2^35-2 elements. Flexible
# versions of every API have such arrays; three common ones. kio's native reader would
# reserve memory for the declared count and abort the process; strom.protocol.guard
# refuses such requests before kio sees them.
ARRAY_BOMBS = {
    "metadata-v12-topics": lambda: _frame(_flexible_header(3, 12, 90) + b"\xff\xff\xff\xff\x7f"),
    "fetch-v12-topics": lambda: _frame(
        _flexible_header(1, 12, 91) + struct.pack(">iiiibii", -1, 0, 0, 1, 0, 0, -1)
        + b"\xff\xff\xff\xff\x7f"),
    "produce-v9-topic-data": lambda: _frame(
        _flexible_header(0, 9, 92) + b"\x00" + struct.pack(">hi", 1, 5000)
        + b"\xff\xff\xff\xff\x7f"),
}


@pytest.mark.parametrize("case", sorted(ARRAY_BOMBS))
def test_huge_array_count_does_not_kill_the_broker(broker_factory: Any, case: str) -> None:
    node: BrokerProcess = broker_factory({})
    assert _send_and_expect_close(node, ARRAY_BOMBS[case]())
    with RawClient(node.bootstrap) as raw:  # refused if the process died
        assert raw.request(18, 0).body.error_code == ErrorCode.none
        assert create_topic(raw, "bomb-check").error_code == ErrorCode.none
    assert_serves(node, "bomb-check")


# --- fuzzing the live broker --------------------------------------------------------------


def _seed_frames() -> list[bytes]:
    """Valid requests to mutate. Nothing here can create or delete topics, or grow one."""
    records = record_batch([b"fuzz-a", b"fuzz-b"], keys=[b"k", None])
    seeds = [
        (18, 3, {"client_software_name": "fuzz", "client_software_version": "1"}),
        (18, 0, {}),
        (3, 1, {"topics": [{"name": "bad-input-fuzz"}]}),
        (3, 12, {"topics": [{"name": "bad-input-fuzz"}], "allow_auto_topic_creation": False}),
        (0, 3, {"acks": 1, "timeout": 1000, "topic_data": [
            {"name": "bad-input-fuzz", "partition_data": [{"index": 0, "records": records}]}]}),
        (0, 9, {"acks": -1, "timeout": 1000, "topic_data": [
            {"name": "bad-input-fuzz", "partition_data": [{"index": 0, "records": records}]}]}),
        (1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 0, "max_bytes": 65536,
                 "session_epoch": -1, "topics": [{"topic": "bad-input-fuzz", "partitions": [
                     {"partition": 0, "fetch_offset": 0, "current_leader_epoch": -1,
                      "last_fetched_epoch": -1, "log_start_offset": -1,
                      "partition_max_bytes": 65536}]}]}),
        (2, 7, {"replica_id": -1, "topics": [{"name": "bad-input-fuzz", "partitions": [
            {"partition_index": 0, "timestamp": -1, "current_leader_epoch": -1}]}]}),
        (32, 4, {"resources": [{"resource_type": 2, "resource_name": "bad-input-fuzz",
                                "configuration_keys": None}], "include_synonyms": True}),
        (60, 1, {"endpoint_type": 1}),
        (22, 4, {"transactional_id": None, "transaction_timeout": 1000,
                 "producer_id": -1, "producer_epoch": -1}),
    ]
    return [encode_request(k, v, make_request(k, v, f), correlation_id=5) for k, v, f in seeds]


SEEDS = _seed_frames()
MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("extreme"), st.integers(0, 10_000),
              st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00",
                               b"\x00\x00\x00\x00", b"\xff\xff"])),
)


def _mutate(frame: bytes, mutations: list[tuple[str, int, Any]], fix_size: bool) -> bytes:
    data = bytearray(frame)
    for kind, where, arg in mutations:
        if not data:
            break
        pos = where % len(data)
        if kind == "flip":
            data[pos] ^= arg
        elif kind == "set":
            data[pos] = arg
        elif kind == "insert":
            data[pos:pos] = arg
        elif kind == "delete":
            del data[pos : pos + arg]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "extreme":
            data[pos : pos + len(arg)] = arg
    if fix_size and len(data) >= 4:
        struct.pack_into(">i", data, 0, len(data) - 4)
    return bytes(data)


FUZZ_OUTCOMES: dict[str, int] = {"answered": 0, "closed": 0, "incomplete": 0, "silent": 0}


def _fire(port: int, payload: bytes) -> None:
    """Send one mutated payload and wait for an answer or a close, never long.

    A payload that declares more bytes than it has would only wait for the rest: it is
    sent and dropped (the broker must forget the partial frame). Otherwise we read until
    a whole response frame arrives, the broker closes, or a second passes (acks=0, or a
    mutated long-poll).
    """
    declared = struct.unpack_from(">i", payload)[0] if len(payload) >= 4 else -1
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            sock.sendall(payload)
            if len(payload) < 4 or (declared >= 0 and len(payload) - 4 < declared):
                FUZZ_OUTCOMES["incomplete"] += 1
                return
            sock.settimeout(1.0)
            received = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    FUZZ_OUTCOMES["closed"] += 1
                    return
                received += chunk
                if len(received) >= 4 and len(received) - 4 >= struct.unpack_from(
                        ">i", received)[0]:
                    FUZZ_OUTCOMES["answered"] += 1
                    return
        except TimeoutError:
            FUZZ_OUTCOMES["silent"] += 1
        except OSError:
            FUZZ_OUTCOMES["closed"] += 1  # reset while writing or reading


@pytest.fixture(scope="module")
def fuzz_target(live: BrokerProcess) -> BrokerProcess:
    with RawClient(live.bootstrap) as raw:
        assert create_topic(raw, "bad-input-fuzz").error_code == ErrorCode.none
    return live


# derandomize: the same 300 examples every run, so a failure here is reproducible and
# a CI run is never red by luck (the array-count abort above is one such find).
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    seed=st.integers(0, len(SEEDS) - 1),
    mutations=st.lists(MUTATION, min_size=1, max_size=3),
    fix_size=st.sampled_from([True, True, True, False]),  # mostly well-framed
    repeat=st.integers(1, 2),
)
def test_fuzzed_requests_never_take_the_broker_down(
    fuzz_target: BrokerProcess, seed: int, mutations: list[Any], fix_size: bool, repeat: int
) -> None:
    payload = _mutate(SEEDS[seed], mutations, fix_size)
    _fire(fuzz_target.port, payload * repeat)
    assert fuzz_target.is_alive()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=200))
def test_random_bytes_never_take_the_broker_down(fuzz_target: BrokerProcess,
                                                 data: bytes) -> None:
    _fire(fuzz_target.port, data)
    assert fuzz_target.is_alive()


def test_after_fuzzing_the_broker_serves_and_logged_no_crash(fuzz_target: BrokerProcess) -> None:
    """Runs after the fuzz tests (file order): alive, serving, and no handler blew up."""
    assert_serves(fuzz_target, "bad-input-check")
    with RawClient(fuzz_target.bootstrap) as raw:
        hw = high_watermark(raw, "bad-input-fuzz")
        assert hw >= 0
    if sum(FUZZ_OUTCOMES.values()) >= 300:  # the fuzz tests ran in this session
        # the fuzzing reached the handlers, and also hit the paths that close connections
        assert FUZZ_OUTCOMES["answered"] > 20, FUZZ_OUTCOMES
        assert FUZZ_OUTCOMES["closed"] > 20, FUZZ_OUTCOMES
    log = fuzz_target.log_text()
    assert "handler failed" not in log, _excerpt(log, "handler failed")
    assert "Traceback" not in log, _excerpt(log, "Traceback")


def _excerpt(log: str, needle: str) -> str:
    at = log.find(needle)
    return log[max(at - 500, 0) : at + 3000]

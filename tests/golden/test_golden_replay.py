"""Each client's golden session replayed against a fresh Strom broker: Strom's answers
today, decoded by kio and written back, are byte-identical to what Strom sent (no lossy
field, nothing unread), and match the recorded answers.

The sessions were recorded on fresh brokers with the settings in manifest.json, so a
replay in the same order reproduces the same state: the same offsets, records,
generations and producer ids. What differs between two brokers is learnt as the replay
goes (support.golden.VARYING: member ids, topic ids, the cluster id; the recorded value
is mapped to the live one in later requests and in the comparison) or masked (node
ports: the recording went through a proxy). So the comparison is of the whole answer,
structure and values, except those fields. A request whose live answer is a retriable
error (a coordinator still loading) is sent again, as the client did.

After a deliberate change in what Strom answers, re-record with
tests/golden/record_golden.py and review the diff.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strom.protocol import apis
from support.broker_process import BrokerProcess
from support.golden import (
    RETRIABLE,
    Exchange,
    decode_response,
    error_codes,
    load_sessions,
    manifest,
    plain,
    response_round_trip,
    substitute,
    varying_values,
    wire_bytes,
    with_correlation_id,
)
from support.raw_client import RawClient, create_topic

pytestmark = pytest.mark.timeout(300)

SESSIONS = load_sessions()
RETRY_S = 20.0


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data", overrides=dict(manifest()["broker_overrides"])).start()
    yield proc
    code = proc.stop()
    assert code == 0, f"broker exited with {code}; log:\n{proc.log_text()}"


class Replay:
    """Sends a session's requests in order on one connection and checks each answer."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.mapping: dict[Any, Any] = {}  # recorded value -> live value (VARYING fields)
        self.correlation_id = 0

    def request_bytes(self, exchange: Exchange) -> bytes:
        frame = exchange.request
        for recorded, live in self.mapping.items():
            old, new = wire_bytes(recorded), wire_bytes(live)
            assert len(old) == len(new), f"{recorded!r} and {live!r} differ in length"
            frame = frame[:4] + frame[4:].replace(old, new)
        self.correlation_id += 1
        return with_correlation_id(frame, self.correlation_id)

    def send(self, exchange: Exchange) -> bytes:
        self.client.send_raw(self.request_bytes(exchange))
        frame = self.client.recv_frame()
        return len(frame).to_bytes(4, "big") + frame

    def check(self, exchange: Exchange) -> None:
        """Send until the answer is final (not a retriable error), then compare."""
        deadline = time.monotonic() + RETRY_S
        recorded = plain(decode_response(exchange.response, exchange.api_key,
                                         exchange.api_version).body)
        while True:
            frame = self.send(exchange)
            decoded, rewritten = response_round_trip(frame, exchange.api_key, exchange.api_version)
            assert decoded.correlation_id == self.correlation_id
            assert decoded.unread == 0, f"{decoded.unread} bytes kio did not read"
            assert rewritten == frame, "kio writes Strom's live answer back differently"
            live = plain(decoded.body)
            retry = error_codes(live) & RETRIABLE and not error_codes(recorded) & RETRIABLE
            if not retry or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.mapping.update(varying_values(recorded, live))
        assert substitute(live, {}) == substitute(recorded, self.mapping), (
            f"{exchange.id}: Strom's answer differs from the recorded one")


@pytest.mark.parametrize("session", sorted(SESSIONS))
def test_a_replayed_session_gets_the_recorded_answers(session: str,
                                                     fresh_broker: BrokerProcess) -> None:
    entry = manifest()["sessions"][session]
    with RawClient(fresh_broker.bootstrap, timeout=30) as client:
        for topic, partitions in entry["precreated_topics"].items():
            assert create_topic(client, topic, partitions).error_code == 0
        replay = Replay(client)
        for exchange in SESSIONS[session]:
            try:
                replay.check(exchange)
            except AssertionError as exc:
                raise AssertionError(f"{exchange.id} ({apis.api_name(exchange.api_key)}): "
                                     f"{exc}") from exc

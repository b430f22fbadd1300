"""`strom quota set|delete|describe` against a broker process: every entity form
(user, client id, both, the defaults), JSON and text output, --strict, --validate-only,
Kafka's refusal of a fractional byte rate, and the quota in force on the broker (a raw
producer over it is throttled)."""

from __future__ import annotations

import pytest

from support.broker_process import BrokerProcess
from support.cli import strom, strom_json

pytestmark = pytest.mark.timeout(180)


def test_set_describe_delete(broker: BrokerProcess) -> None:
    b = ("-b", broker.bootstrap)
    strom("quota", "set", "--user", "alice", "producer_byte_rate=1048576",
          "request_percentage=25.5", *b)
    strom("quota", "set", "--user", "alice", "--client-id-default",
          "consumer_byte_rate=2048", *b)
    strom("quota", "set", "--client-id", "app-1", "producer_byte_rate=100", *b)
    strom("quota", "set", "--user-default", "controller_mutation_rate=4", *b)
    assert strom_json("quota", "describe", "--user", "alice", "--strict", *b) == [
        {"user": "alice", "client_id": "", "quotas": {
            "producer_byte_rate": 1048576.0, "request_percentage": 25.5}}]
    both = strom_json("quota", "describe", "--user", "alice", *b)
    assert [(r["user"], r["client_id"]) for r in both] == [("alice", ""),
                                                           ("alice", "<default>")]
    text = strom("quota", "describe", *b).stdout
    assert text.split()[:3] == ["USER", "CLIENT-ID", "QUOTAS"]
    assert "controller_mutation_rate=4" in text
    assert "consumer_byte_rate=2048" in text and "producer_byte_rate=100" in text
    assert strom_json("quota", "describe", "--client-id", "app-1", *b) == [
        {"user": "", "client_id": "app-1", "quotas": {"producer_byte_rate": 100.0}}]
    strom("quota", "set", "--user", "vo", "producer_byte_rate=1", "--validate-only", *b)
    assert strom_json("quota", "describe", "--user", "vo", *b) == []
    refused = strom("quota", "set", "--user", "bob", "producer_byte_rate=1.5", *b,
                    check=False)
    assert refused.returncode != 0
    assert "producer_byte_rate cannot be a fractional value." in refused.stderr
    strom("quota", "delete", "--user", "alice", "request_percentage", *b)
    assert strom_json("quota", "describe", "--user", "alice", "--strict", *b)[0]["quotas"] \
        == {"producer_byte_rate": 1048576.0}
    strom("quota", "delete", "--client-id", "app-1", "producer_byte_rate", *b)
    assert strom_json("quota", "describe", "--client-id", "app-1", *b) == []

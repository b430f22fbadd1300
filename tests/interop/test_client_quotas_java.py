"""Client quotas through Kafka's own tools, on Strom and on Apache Kafka 4.4 with the same
commands: kafka-configs (`--entity-type users/clients`, names and `--entity-default`,
add, describe, delete, refusals) prints the same on both, and a producer over a
100 KB/s quota (kafka-producer-perf-test) is throttled by both: the Java client's
`produce-throttle-time-max` metric, which reports the broker's throttle_time_ms, is
positive. The assertions are on what the brokers report, not on how long anything took.
"""

from __future__ import annotations

import re
import uuid

import pytest

from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]


def _configs(target: Target, *args: str) -> tuple[int, str]:
    result = target.tool("ConfigCommand", "--bootstrap-server", target.bootstrap, *args)
    return result.returncode, (result.stdout + result.stderr).strip()


def _session(target: Target, user: str, client: str) -> list[tuple[int, str]]:
    alice = ["--entity-type", "users", "--entity-name", user]
    pair = [*alice, "--entity-type", "clients", "--entity-name", client]
    steps = [
        ["--alter", *alice, "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048"],
        ["--alter", "--entity-type", "clients", "--entity-default", "--add-config",
         "producer_byte_rate=4096"],
        ["--alter", *pair, "--add-config", "request_percentage=50.5"],
        ["--alter", "--entity-type", "users", "--entity-default", "--entity-type", "clients",
         "--entity-default", "--add-config", "controller_mutation_rate=3"],
        ["--describe", *alice],
        ["--describe", *pair],
        ["--describe", "--entity-type", "clients", "--entity-default"],
        ["--describe", "--entity-type", "users", "--entity-default", "--entity-type",
         "clients", "--entity-default"],
        ["--alter", *alice, "--add-config", "producer_byte_rate=1.5"],
        ["--alter", *alice, "--add-config", "nonsense=1"],
        ["--alter", *alice, "--delete-config", "consumer_byte_rate"],
        ["--describe", *alice],
        ["--alter", *alice, "--delete-config", "producer_byte_rate"],
        ["--describe", *alice],
        ["--alter", "--entity-type", "clients", "--entity-default", "--delete-config",
         "producer_byte_rate"],
        ["--alter", "--entity-type", "users", "--entity-default", "--entity-type", "clients",
         "--entity-default", "--delete-config", "controller_mutation_rate"],
    ]
    return [_configs(target, *step) for step in steps]


def _normalised(lines: list[tuple[int, str]], bootstrap: str) -> list[tuple[int, str]]:
    """Java stack frames and the broker's address aside, the tool's words."""
    out = []
    for code, text in lines:
        kept = [line.replace(bootstrap, "BOOTSTRAP") for line in text.splitlines()
                if not line.lstrip().startswith("at ")]
        out.append((code, "\n".join(kept)))
    return out


def test_kafka_configs_on_quota_entities(strom_target: Target, kafka_target: Target) -> None:
    user, client = f"u-{uuid.uuid4().hex[:6]}", f"c-{uuid.uuid4().hex[:6]}"
    on_kafka = _normalised(_session(kafka_target, user, client), kafka_target.bootstrap)
    on_strom = _normalised(_session(strom_target, user, client), strom_target.bootstrap)
    for step, (strom, kafka) in enumerate(zip(on_strom, on_kafka, strict=True)):
        assert strom == kafka, f"step {step}:\nstrom: {strom}\nkafka: {kafka}"


PERF_THROTTLE = re.compile(r"producer-metrics:produce-throttle-time-max:\{client-id=([^}]*)\}"
                           r"\s*:\s*([\d.]+)")


def _throttle_max(target: Target, topic: str, client_id: str) -> float:
    target.tool_ok("TopicCommand", "--bootstrap-server", target.bootstrap, "--create",
                   "--topic", topic, "--partitions", "1", "--replication-factor", "1")
    target.tool_ok("ConfigCommand", "--bootstrap-server", target.bootstrap, "--alter",
                   "--entity-type", "clients", "--entity-name", client_id, "--add-config",
                   "producer_byte_rate=102400")
    out = target.tool_ok("ProducerPerformance", "--topic", topic, "--num-records", "1500",
                         "--record-size", "1000", "--throughput", "-1", "--print-metrics",
                         "--command-property", f"bootstrap.servers={target.bootstrap}",
                         f"client.id={client_id}", "linger.ms=5", timeout=300)
    found = {m.group(1): float(m.group(2)) for m in PERF_THROTTLE.finditer(out)}
    assert client_id in found, out[-3000:]
    return found[client_id]


def test_a_java_producer_over_its_quota_is_throttled_by_both(strom_target: Target,
                                                             kafka_target: Target) -> None:
    """1.5 MB at full speed against 100 KB/s (averaged over 10 windows of 1 s): both
    brokers answer with a throttle time, which the Java producer records."""
    name = f"quota-perf-{uuid.uuid4().hex[:6]}"
    assert _throttle_max(kafka_target, name, name) > 0
    assert _throttle_max(strom_target, name, name) > 0

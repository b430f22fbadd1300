"""Group configs through Kafka's own kafka-configs tool (`--entity-type groups`), on Strom
and on Kafka 4.4: set, described with Kafka's synonym chains, refused with Kafka's
message, deleted, and `--all` lists the same names and defaults on both."""

from __future__ import annotations

import uuid

import pytest

from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


def test_kafka_configs_on_a_group(target: Target) -> None:
    group = f"cfg-{uuid.uuid4().hex[:8]}"
    boot = ["--bootstrap-server", target.bootstrap]
    entity = ["--entity-type", "groups", "--entity-name", group]
    out = target.tool_ok("ConfigCommand", *boot, "--alter", *entity, "--add-config",
                         "consumer.session.timeout.ms=50000,share.record.lock.duration.ms=20000")
    assert f"Completed updating config for group {group}." in out
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity)
    assert out.splitlines() == [
        f"Dynamic configs for group {group} are:",
        "  consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.session.timeout.ms=50000, DEFAULT_CONFIG:group.consumer.session.timeout.ms"
        "=45000}",
        "  share.record.lock.duration.ms=20000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "share.record.lock.duration.ms=20000, DEFAULT_CONFIG:"
        "group.share.record.lock.duration.ms=30000}"], out
    refused = target.tool("ConfigCommand", *boot, "--alter", *entity, "--add-config",
                          "consumer.heartbeat.interval.ms=1")
    assert refused.returncode != 0
    assert ("InvalidConfigurationException: consumer.heartbeat.interval.ms must be in the "
            "range 5000 to 15000 inclusive.") in refused.stderr + refused.stdout
    target.tool_ok("ConfigCommand", *boot, "--alter", *entity, "--delete-config",
                   "share.record.lock.duration.ms")
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity)
    assert "share.record.lock.duration.ms" not in out and "consumer.session.timeout.ms=50000" in out
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity, "--all")
    lines = [line.strip() for line in out.splitlines()[1:] if line.strip()]
    assert len(lines) == 21, out
    for expected in (
            "share.auto.offset.reset=latest sensitive=false synonyms={DEFAULT_CONFIG:"
            "share.auto.offset.reset=latest}",
            "share.record.lock.duration.ms=30000 sensitive=false synonyms={DEFAULT_CONFIG:"
            "group.share.record.lock.duration.ms=30000}",
            "streams.assignor.name=sticky sensitive=false synonyms={DEFAULT_CONFIG:"
            "group.streams.assignors=sticky}",
            "streams.rack.aware.assignment.tags= sensitive=false synonyms={DEFAULT_CONFIG:"
            "group.streams.rack.aware.assignment.tags=}"):
        assert expected in lines, out

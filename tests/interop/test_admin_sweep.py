"""The AdminClient calls and `kafka-configs.sh` commands Kafka 4.4 makes for topics and
configs, against Strom and against Apache Kafka: topics by id, paged descriptions,
validate-only creation, dynamic broker configs per broker and cluster-wide, the topic
config that follows a broker synonym, config resources listed, log dirs described,
broker loggers, and quota descriptions.

The Java checks live in `java/AdminSweep.java`; each prints PASS or FAIL on its own.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

CHECKS = ["topics-by-id", "describe-paged", "create-validate-only",
          "create-partitions-validate-only", "broker-default-configs", "broker-configs",
          "list-config-resources", "describe-log-dirs"]


def test_admin_client_calls(target: Target, interop_classes: Path, kafka_lib: Path) -> None:
    cmd = ["java", "-Xmx512m",
           f"-Dlog4j2.configurationFile={kafka_lib.parent / 'tools-log4j2.properties'}",
           "-cp", f"{interop_classes}:{kafka_lib / '*'}", "AdminSweep", target.bootstrap, *CHECKS]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    passed = re.findall(r"^PASS (\S+)", result.stdout, re.M)
    assert passed == CHECKS, (f"against {target.name}:\n{result.stdout[-8000:]}\n"
                              f"stderr:\n{result.stderr[-3000:]}")


def test_kafka_configs_for_brokers(target: Target) -> None:
    boot = ["--bootstrap-server", target.bootstrap]
    default = ["--entity-type", "brokers", "--entity-default"]
    mine = ["--entity-type", "brokers", "--entity-name", str(target.node_id)]
    out = target.tool_ok("ConfigCommand", *boot, "--alter", *default,
                         "--add-config", "log.retention.ms=3600000")
    assert "Completed updating default config for brokers in the cluster." in out
    try:
        out = target.tool_ok("ConfigCommand", *boot, "--alter", *mine,
                             "--add-config", "log.cleaner.threads=2")
        assert f"Completed updating config for broker {target.node_id}." in out
        out = target.tool_ok("ConfigCommand", *boot, "--describe", *mine)
        assert f"Dynamic configs for broker {target.node_id} are:" in out
        assert ("log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:"
                "log.cleaner.threads=2, DEFAULT_CONFIG:log.cleaner.threads=1}") in out, out
        assert "log.retention.ms" not in out, out  # only the broker's own are listed
        out = target.tool_ok("ConfigCommand", *boot, "--describe", *default)
        assert "Default configs for brokers in the cluster are:" in out
        assert "log.retention.ms=3600000" in out and "log.cleaner.threads" not in out, out
        refused = target.tool("ConfigCommand", *boot, "--alter", *default,
                              "--add-config", "log.dirs=/elsewhere")
        assert refused.returncode != 0
        assert ("InvalidRequestException: Cannot update these configs dynamically: [log.dirs]"
                in refused.stdout + refused.stderr)
    finally:
        target.tool_ok("ConfigCommand", *boot, "--alter", *mine,
                       "--delete-config", "log.cleaner.threads")
        target.tool_ok("ConfigCommand", *boot, "--alter", *default,
                       "--delete-config", "log.retention.ms")


def test_kafka_configs_other_entities(target: Target) -> None:
    boot = ["--bootstrap-server", target.bootstrap]
    out = target.tool_ok("ConfigCommand", *boot, "--describe", "--entity-type", "broker-loggers",
                         "--entity-name", str(target.node_id))
    assert f"Dynamic configs for broker-logger {target.node_id} are:" in out
    assert re.search(r"^\s+root=(INFO|DEBUG|WARN|ERROR|TRACE) sensitive=false", out, re.M), out
    for entity in ("client-metrics", "clients", "ips", "groups"):
        target.tool_ok("ConfigCommand", *boot, "--describe", "--entity-type", entity)
    unknown = target.tool("ConfigCommand", *boot, "--alter", "--entity-type", "topics",
                          "--entity-name", "no-such-topic-for-configs", "--add-config",
                          "retention.ms=1")
    assert unknown.returncode != 0

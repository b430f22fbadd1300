"""Kafka's own command-line tools (the kafka-tools jar) against the broker: kafka-topics,
the console producer and consumer, kafka-consumer-groups (--list, --describe, --state,
--members, --reset-offsets, --delete), kafka-configs, kafka-get-offsets,
kafka-producer-perf-test and kafka-consumer-perf-test. Each test runs against Strom and
against Apache Kafka; outputs are checked for what Kafka itself prints."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from datetime import datetime

import pytest

from support.interop import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def end_offsets(target: Target, topic: str) -> dict[int, int]:
    out = target.tool_ok("GetOffsetShell", "--bootstrap-server", target.bootstrap, "--topic", topic)
    offsets = {}
    for line in out.splitlines():
        name, partition, offset = line.rsplit(":", 2)
        assert name == topic, line
        offsets[int(partition)] = int(offset)
    return offsets


def group_rows(out: str) -> dict[int, tuple[str, str, str]]:
    """Parse kafka-consumer-groups --describe: partition -> (current offset, log end, lag)."""
    rows = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[2].isdigit():
            rows[int(cols[2])] = (cols[3], cols[4], cols[5])
    return rows


def produce_lines(target: Target, topic: str, lines: list[str], *props: str) -> None:
    args = ["--bootstrap-server", target.bootstrap, "--topic", topic]
    for prop in props:
        args += ["--reader-property", prop]
    target.tool_ok("ConsoleProducer", *args, input="".join(f"{line}\n" for line in lines))


def consume_lines(target: Target, topic: str, count: int, *extra: str) -> list[str]:
    out = target.tool_ok("consumer.ConsoleConsumer", "--bootstrap-server", target.bootstrap,
                         "--topic", topic, "--max-messages", str(count), "--timeout-ms", "20000",
                         *extra)
    return out.splitlines()


def test_topics_command(target: Target) -> None:
    topic = unique("tools-topics")
    boot = ["--bootstrap-server", target.bootstrap]
    out = target.tool_ok("TopicCommand", *boot, "--create", "--topic", topic, "--partitions", "3",
                         "--replication-factor", "1", "--config", "retention.ms=86400000")
    assert f"Created topic {topic}." in out
    assert topic in target.tool_ok("TopicCommand", *boot, "--list").split()

    out = target.tool_ok("TopicCommand", *boot, "--describe", "--topic", topic)
    head, *parts = [line for line in out.splitlines() if line.strip()]
    assert f"Topic: {topic}" in head and "PartitionCount: 3" in head, out
    assert "ReplicationFactor: 1" in head and "retention.ms=86400000" in head, out
    assert re.search(r"TopicId: \S{22}", head), out
    assert len(parts) == 3, out
    for i, line in enumerate(parts):
        leader = target.node_id
        assert f"Partition: {i}\tLeader: {leader}\tReplicas: {leader}\tIsr: {leader}" in line, out

    # creating it again fails, --if-not-exists does not
    again = target.tool("TopicCommand", *boot, "--create", "--topic", topic, "--partitions", "1")
    assert again.returncode != 0 and "already exists" in again.stdout + again.stderr
    target.tool_ok("TopicCommand", *boot, "--create", "--if-not-exists", "--topic", topic)

    target.tool_ok("TopicCommand", *boot, "--alter", "--topic", topic, "--partitions", "5")
    out = target.tool_ok("TopicCommand", *boot, "--describe", "--topic", topic)
    assert "PartitionCount: 5" in out, out
    shrink = target.tool("TopicCommand", *boot, "--alter", "--topic", topic, "--partitions", "2")
    assert shrink.returncode != 0, shrink.stdout

    target.tool_ok("TopicCommand", *boot, "--delete", "--topic", topic)
    deadline = time.monotonic() + 30
    while topic in target.tool_ok("TopicCommand", *boot, "--list").split():
        assert time.monotonic() < deadline, f"{topic} still listed after delete"
        time.sleep(0.5)
    gone = target.tool("TopicCommand", *boot, "--describe", "--topic", topic)
    assert gone.returncode != 0 and "does not exist" in gone.stdout + gone.stderr


def test_console_producer_and_consumer(target: Target) -> None:
    topic = unique("tools-console")
    target.tool_ok("TopicCommand", "--bootstrap-server", target.bootstrap, "--create",
                   "--topic", topic, "--partitions", "1")
    lines = [f"src:test,n:{i}\tk{i}:value {i}" for i in range(10)]
    produce_lines(target, topic, lines, "parse.key=true", "key.separator=:", "parse.headers=true")
    got = consume_lines(target, topic, 10, "--from-beginning",
                        "--formatter-property", "print.key=true",
                        "--formatter-property", "print.headers=true",
                        "--formatter-property", "print.partition=true",
                        "--formatter-property", "print.offset=true",
                        "--formatter-property", "print.timestamp=true")
    assert len(got) == 10, got
    now_ms = time.time() * 1000
    for i, line in enumerate(got):
        ts, partition, offset, headers, key, value = line.split("\t")
        assert ts.startswith("CreateTime:") and abs(int(ts.split(":")[1]) - now_ms) < 300_000, line
        assert (partition, offset) == ("Partition:0", f"Offset:{i}"), line
        assert (headers, key, value) == (f"src:test,n:{i}", f"k{i}", f"value {i}"), line

    # plain values, and a consumer that starts from the end sees nothing old
    assert consume_lines(target, topic, 3, "--from-beginning") == ["value 0", "value 1", "value 2"]
    late = target.tool("consumer.ConsoleConsumer", "--bootstrap-server", target.bootstrap,
                       "--topic", topic, "--max-messages", "1", "--timeout-ms", "3000")
    assert late.stdout.strip() == "", late.stdout
    # --partition/--offset
    assert consume_lines(target, topic, 2, "--partition", "0", "--offset", "7") == [
        "value 7", "value 8"]


def test_consumer_groups_describe_active_group(target: Target) -> None:
    topic = unique("tools-cg-active")
    group = unique("cg-active")
    boot = ["--bootstrap-server", target.bootstrap]
    target.tool_ok("TopicCommand", *boot, "--create", "--topic", topic, "--partitions", "2")
    produce_lines(target, topic, [f"v{i}" for i in range(20)])
    consumer = target.tool_popen("consumer.ConsoleConsumer", *boot, "--topic", topic,
                                 "--group", group, "--from-beginning")
    try:
        deadline = time.monotonic() + 60
        while True:
            state = target.tool_ok("consumer.group.ConsumerGroupCommand", *boot, "--describe",
                                   "--group", group, "--state")
            if "Stable" in state:
                break
            assert time.monotonic() < deadline, f"group never stable:\n{state}"
            time.sleep(0.5)
        row = next(line for line in state.splitlines() if line.startswith(group)).split()
        # GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS
        assert row[1] == target.bootstrap and row[2] == f"({target.node_id})", state
        assert row[3:] == ["range", "Stable", "1"], state
        assert group in target.tool_ok("consumer.group.ConsumerGroupCommand", *boot, "--list").split()

        members = target.tool_ok("consumer.group.ConsumerGroupCommand", *boot, "--describe",
                                 "--group", group, "--members", "--verbose")
        member_rows = [line.split() for line in members.splitlines() if line.startswith(group)]
        assert len(member_rows) == 1, members
        _, member_id, host, client_id, count, *assignment = member_rows[0]
        assert member_id.startswith(client_id + "-") and host == "/127.0.0.1", members
        assert count == "2" and f"{topic}:0,1" in assignment, members

        deadline = time.monotonic() + 60
        while True:
            out = target.tool_ok("consumer.group.ConsumerGroupCommand", *boot, "--describe",
                                 "--group", group)
            rows = group_rows(out)
            lines = [line for line in out.splitlines() if line.startswith(group)]
            if rows and all(lag == "0" for _, _, lag in rows.values()) and len(rows) == 2:
                break
            assert time.monotonic() < deadline, f"lag never reached 0:\n{out}"
            time.sleep(0.5)
        assert sum(int(cur) for cur, _, _ in rows.values()) == 20, out
        assert all("console-consumer" in line and "/127.0.0.1" in line for line in lines), out

        # resetting an active group's offsets is refused
        busy = target.tool("consumer.group.ConsumerGroupCommand", *boot, "--reset-offsets",
                           "--group", group, "--topic", topic, "--to-earliest", "--execute")
        assert "can only be reset if the group" in busy.stdout + busy.stderr, busy
        # so is deleting it
        busy = target.tool("consumer.group.ConsumerGroupCommand", *boot, "--delete", "--group", group)
        said = busy.stdout + busy.stderr
        assert "NON_EMPTY_GROUP" in said or "not empty" in said, busy
    finally:
        consumer.send_signal(signal.SIGTERM)
        try:
            consumer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            consumer.kill()
            consumer.communicate()
    deadline = time.monotonic() + 30
    while "Empty" not in target.tool_ok("consumer.group.ConsumerGroupCommand", *boot, "--describe",
                                        "--group", group, "--state"):
        assert time.monotonic() < deadline, "group never became empty after its member left"
        time.sleep(0.5)


def test_consumer_groups_reset_offsets(target: Target) -> None:
    topic = unique("tools-cg-reset")
    group = unique("cg-reset")
    boot = ["--bootstrap-server", target.bootstrap]
    cg = "consumer.group.ConsumerGroupCommand"
    target.tool_ok("TopicCommand", *boot, "--create", "--topic", topic, "--partitions", "1")
    produce_lines(target, topic, [f"v{i}" for i in range(10)])
    before = datetime.now()  # the tool reads a zone-less time as local time
    time.sleep(1.1)
    produce_lines(target, topic, [f"w{i}" for i in range(5)])
    assert end_offsets(target, topic) == {0: 15}

    got = consume_lines(target, topic, 15, "--group", group, "--from-beginning")
    assert got == [f"v{i}" for i in range(10)] + [f"w{i}" for i in range(5)]
    out = target.tool_ok(cg, *boot, "--describe", "--group", group)
    assert group_rows(out) == {0: ("15", "15", "0")}, out
    assert "has no active members" in target.tool(cg, *boot, "--describe", "--group", group).stderr

    # --dry-run (the default) changes nothing
    out = target.tool_ok(cg, *boot, "--reset-offsets", "--group", group, "--topic", topic,
                         "--to-earliest")
    assert group_rows_new(out) == {0: 0}, out
    assert group_rows(target.tool_ok(cg, *boot, "--describe", "--group", group)) == {0: ("15", "15", "0")}

    def reset(*how: str) -> int:
        out = target.tool_ok(cg, *boot, "--reset-offsets", "--group", group, "--topic", topic,
                             *how, "--execute")
        new = group_rows_new(out)
        assert list(new) == [0], out
        rows = group_rows(target.tool_ok(cg, *boot, "--describe", "--group", group, "--offsets"))
        assert rows[0][0] == str(new[0]), (out, rows)
        return new[0]

    assert reset("--to-earliest") == 0
    assert reset("--to-datetime", before.strftime("%Y-%m-%dT%H:%M:%S.") +
                 f"{before.microsecond // 1000:03d}") == 10
    assert reset("--shift-by", "-3") == 7
    assert reset("--shift-by", "100") == 15  # clamped to the log end
    assert reset("--to-offset", "12") == 12

    # the group resumes from the reset position
    got = consume_lines(target, topic, 3, "--group", group)
    assert got == ["w2", "w3", "w4"]
    assert group_rows(target.tool_ok(cg, *boot, "--describe", "--group", group)) == {0: ("15", "15", "0")}

    # --delete-offsets, then --delete
    out = target.tool_ok(cg, *boot, "--delete-offsets", "--group", group, "--topic", topic)
    assert "Successful" in out or "successful" in out, out
    out = target.tool_ok(cg, *boot, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful." in out
    assert group not in target.tool_ok(cg, *boot, "--list").split()


def group_rows_new(out: str) -> dict[int, int]:
    """Parse kafka-consumer-groups --reset-offsets: partition -> new offset."""
    rows = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) == 4 and cols[2].isdigit() and cols[3].isdigit():
            rows[int(cols[2])] = int(cols[3])
    return rows


def test_configs_command(target: Target) -> None:
    topic = unique("tools-configs")
    boot = ["--bootstrap-server", target.bootstrap]
    target.tool_ok("TopicCommand", *boot, "--create", "--topic", topic, "--partitions", "1",
                   "--config", "retention.ms=86400000")
    entity = ["--entity-type", "topics", "--entity-name", topic]
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity)
    assert f"Dynamic configs for topic {topic} are:" in out
    assert "retention.ms=86400000 sensitive=false" in out, out
    out = target.tool_ok("ConfigCommand", *boot, "--alter", *entity,
                         "--add-config", "retention.ms=1000000,segment.bytes=10485760")
    assert f"Completed updating config for topic {topic}." in out
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity)
    assert "retention.ms=1000000" in out and "segment.bytes=10485760" in out, out
    target.tool_ok("ConfigCommand", *boot, "--alter", *entity, "--delete-config", "segment.bytes")
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity)
    assert "segment.bytes=" not in out and "retention.ms=1000000" in out, out
    out = target.tool_ok("ConfigCommand", *boot, "--describe", *entity, "--all")
    assert re.search(r"^\s*cleanup\.policy=delete\b", out, re.M), out
    assert re.search(r"^\s*max\.message\.bytes=\d+", out, re.M), out


def test_producer_and_consumer_perf(target: Target) -> None:
    topic = unique("tools-perf")
    records = 50_000
    target.tool_ok("TopicCommand", "--bootstrap-server", target.bootstrap, "--create",
                   "--topic", topic, "--partitions", "2")
    out = target.tool_ok("ProducerPerformance", "--topic", topic, "--num-records", str(records),
                         "--record-size", "100", "--throughput", "-1",
                         # one option, several values: a repeated option replaces the earlier one
                         "--command-property", f"bootstrap.servers={target.bootstrap}", "acks=all")
    summary = [m for m in map(PERF_LINE.search, out.splitlines()) if m]
    assert summary, out
    assert int(summary[-1].group(1)) == records and float(summary[-1].group(2)) > 0, out
    assert sum(end_offsets(target, topic).values()) == records

    out = target.tool_ok("ConsumerPerformance", "--bootstrap-server", target.bootstrap,
                         "--topic", topic, "--num-records", str(records), "--timeout", "30000")
    header, values = [line for line in out.splitlines() if "," in line][-2:]
    stats = dict(zip([h.strip() for h in header.split(",")], [v.strip() for v in values.split(",")],
                     strict=True))
    assert int(stats["data.consumed.in.nMsg"]) == records, out
    assert abs(float(stats["data.consumed.in.MB"]) - records * 100 / 1024 / 1024) < 0.01, out

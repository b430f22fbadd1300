"""Share groups (KIP-932) with Java's `KafkaShareConsumer` (kafka-clients 4.4.0), on Strom
(with `group.coordinator.rebalance.protocols=classic,consumer,share`) and on Apache
Kafka 4.4 as the oracle: several consumers on one partition, each record delivered to
one consumer at a time; released records redelivered and rejected ones not; the
delivery count limit (5); a consumer SIGKILLed holding records, which come back to
another once their acquisition lock (30 s) expires.

Each consumer is a Java process (`java/StromShareConsumer.java`) printing one line per
record it got; the test reads those lines.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from support.broker_process import BrokerProcess
from support.clients import create_topic
from support.interop import Target, kafka_dist
from support.java_program import JavaProgram
from support.java_program import wait_for as java_wait_for

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(420)]
WAIT_S = 150  # a held record comes back after group.share.record.lock.duration.ms (30 s)


class ShareMember(JavaProgram):
    """One Java share consumer and the lines it printed so far."""

    def __init__(self, classes: Path, lib: Path, bootstrap: str, group: str, topic: str,
                 mode: str = "accept", seconds: int = 300) -> None:
        super().__init__(classes, lib, "StromShareConsumer", bootstrap, group, topic, mode,
                         str(seconds))

    def records(self) -> list[tuple[int, int, str]]:
        """(offset, delivery count, acknowledgement) of every record received."""
        out = []
        for line in list(self.lines):
            if line.startswith("RECORD "):
                _, offset, count, _, ack = line.split()
                out.append((int(offset), int(count), ack))
        return out

def wait_for(what: str, done: Callable[[], bool], members: list[ShareMember]) -> None:
    java_wait_for(what, done, members, WAIT_S)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(start, start + count):
        producer.produce(topic, value=f"v{i}".encode(), partition=0)
    assert producer.flush(30) == 0


@pytest.fixture
def broker(share_target: Target) -> Target:
    return share_target


class Scenario:
    """A fresh topic (one partition) and share group, and the members started on it."""

    def __init__(self, target: Target, classes: Path, lib: Path) -> None:
        self.target, self.classes, self.lib = target, classes, lib
        self.topic = create_topic(target.bootstrap, f"share-{uuid.uuid4().hex[:8]}",
                                  partitions=1)
        self.group = f"sg-{uuid.uuid4().hex[:8]}"
        self.members: list[ShareMember] = []

    def member(self, mode: str = "accept", seconds: int = 300) -> ShareMember:
        self.members.append(ShareMember(self.classes, self.lib, self.target.bootstrap,
                                        self.group, self.topic, mode, seconds))
        return self.members[-1]

    def configured(self, member: ShareMember) -> None:
        wait_for("the group config", lambda: any(line.startswith("CONFIG")
                                                 for line in member.lines), self.members)

    def stop(self) -> None:
        for m in self.members:
            m.stop()


@pytest.fixture
def scenario(broker: Target, interop_classes: Path, kafka_lib: Path) -> Iterator[Scenario]:
    made = Scenario(broker, interop_classes, kafka_lib)
    yield made
    made.stop()


def test_several_consumers_share_one_partition_each_record_once(scenario: Scenario) -> None:
    members = [scenario.member() for _ in range(3)]
    scenario.configured(members[0])
    produce(scenario.target.bootstrap, scenario.topic, 60)

    def everything() -> bool:
        return {o for m in members for o, _, _ in m.records()} == set(range(60))

    wait_for("all 60 records", everything, members)
    seen = Counter(o for m in members for o, _, _ in m.records())
    assert set(seen.values()) == {1}, f"a record was delivered twice: {seen}"
    assert all(count == 1 for m in members for _, count, _ in m.records())


def test_released_records_come_back_and_rejected_ones_do_not(scenario: Scenario) -> None:
    releaser = scenario.member("release-once")
    scenario.configured(releaser)
    produce(scenario.target.bootstrap, scenario.topic, 10)
    wait_for("every record released once and accepted on its second delivery",
             lambda: {(o, c) for o, c, _ in releaser.records()}
             == {(o, c) for o in range(10) for c in (1, 2)}, scenario.members)
    releaser.stop()
    rejecter = scenario.member("reject")
    produce(scenario.target.bootstrap, scenario.topic, 10, start=10)
    wait_for("the rejected records", lambda: {o for o, _, _ in rejecter.records()}
             >= set(range(10, 20)), scenario.members)
    produce(scenario.target.bootstrap, scenario.topic, 1, start=20)
    wait_for("a later record", lambda: any(o == 20 for o, _, _ in rejecter.records()),
             scenario.members)
    seen = Counter(o for o, _, _ in rejecter.records() if 10 <= o < 20)
    assert set(seen.values()) == {1}, f"a rejected record came back: {seen}"
    assert not [o for o, _, _ in rejecter.records() if o < 10], "accepted records came back"


def test_the_delivery_count_limit_archives_a_record_after_five_deliveries(
        scenario: Scenario) -> None:
    member = scenario.member("release")
    scenario.configured(member)
    produce(scenario.target.bootstrap, scenario.topic, 3)
    wait_for("five deliveries of each record",
             lambda: {(o, c) for o, c, _ in member.records() if o < 3}
             == {(o, c) for o in range(3) for c in range(1, 6)}, scenario.members)
    produce(scenario.target.bootstrap, scenario.topic, 1, start=3)
    wait_for("the next record", lambda: any(o == 3 for o, _, _ in member.records()),
             scenario.members)
    assert max(c for o, c, _ in member.records() if o < 3) == 5


def test_a_killed_consumers_records_come_back_when_their_lock_expires(
        scenario: Scenario) -> None:
    holder = scenario.member("hold")
    scenario.configured(holder)
    produce(scenario.target.bootstrap, scenario.topic, 5)
    wait_for("the holder to acquire records", lambda: bool(holder.records()),
             scenario.members)
    held = {o for o, _, _ in holder.records()}
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait(timeout=30)
    taker = scenario.member("accept")
    wait_for("the held records to come back",
             lambda: held <= {o for o, _, _ in taker.records()}, scenario.members)
    again = {o: c for o, c, _ in taker.records() if o in held}
    assert set(again.values()) == {2}, f"not a second delivery: {again}"


def test_nothing_acknowledged_is_delivered_again_after_a_broker_restart(
        strom_share: BrokerProcess, interop_classes: Path, kafka_lib: Path) -> None:
    """Strom only (the oracle's restart is Kafka's own share coordinator): the state
    written in Kafka's ShareSnapshot format brings the share-partition back where it was."""
    target = Target("strom", strom_share.bootstrap, 0)
    scenario = Scenario(target, interop_classes, kafka_lib)
    try:
        first = scenario.member("accept")
        scenario.configured(first)
        produce(target.bootstrap, scenario.topic, 10)
        wait_for("ten records accepted", lambda: {o for o, _, _ in first.records()}
                 == set(range(10)) and "COMMITTED" in first.lines, scenario.members)
        first.stop()
        strom_share.restart()
        produce(target.bootstrap, scenario.topic, 1, start=10)
        second = scenario.member("accept")
        wait_for("the new record", lambda: any(o == 10 for o, _, _ in second.records()),
                 scenario.members)
        assert [o for o, _, _ in second.records()] == [10], "acknowledged records came back"
    finally:
        scenario.stop()


def test_kafka_reads_the_share_group_records_strom_writes(
        tmp_path: Path, interop_classes: Path, kafka_lib: Path) -> None:
    """Kafka's own DumpLogSegments --offsets-decoder decodes the share group records
    (types 10-14) Strom wrote to `__consumer_offsets`, field by field."""
    proc = BrokerProcess(tmp_path / "data", overrides={
        "group.coordinator.rebalance.protocols": "classic,consumer,share"}).start()
    target = Target("strom", proc.bootstrap, 0)
    scenario = Scenario(target, interop_classes, kafka_lib)
    try:
        member = scenario.member("accept")
        scenario.configured(member)
        produce(target.bootstrap, scenario.topic, 1)
        wait_for("the record", lambda: bool(member.records()), scenario.members)
    finally:
        scenario.stop()
        proc.stop()
    segments = [str(f) for f in (tmp_path / "data").glob("__consumer_offsets-*/*.log")
                if f.stat().st_size > 0]
    out = kafka_dist.run_tool("org.apache.kafka.tools.DumpLogSegments", "--offsets-decoder",
                              "--files", ",".join(segments), check=True).stdout
    for kind in ("10", "11", "12", "13", "14"):
        assert f'key: {{"type":"{kind}","data":{{"groupId":"{scenario.group}"' in out, out[-3000:]
    assert f'"subscribedTopicNames":["{scenario.topic}"]' in out
    assert '"memberEpoch":1,"previousMemberEpoch":0,"state":0' in out


def share_groups_tool(bootstrap: str, *args: str) -> str:
    """Kafka 4.4's kafka-share-groups.sh (ShareGroupCommand)."""
    done = kafka_dist.run_tool("org.apache.kafka.tools.consumer.group.ShareGroupCommand",
                               "--bootstrap-server", bootstrap, *args)
    return done.stdout + done.stderr


def test_kafka_share_groups_tool_describes_and_resets_offsets(
        scenario: Scenario) -> None:
    """DescribeShareGroupOffsets and AlterShareGroupOffsets through kafka-share-groups.sh:
    no lag after ten accepted records, a refused reset while a member is in the group,
    and a reset to the earliest offset that delivers them again."""
    bootstrap, group, topic = scenario.target.bootstrap, scenario.group, scenario.topic
    first = scenario.member("accept", seconds=20)
    scenario.configured(first)
    produce(bootstrap, topic, 10)
    wait_for("ten records", lambda: len(first.records()) >= 10, scenario.members)
    refused = share_groups_tool(bootstrap, "--reset-offsets", "--group", group, "--topic",
                                topic, "--to-earliest", "--execute")
    assert "not empty" in refused.lower() or "inactive" in refused.lower(), refused
    wait_for("the member to leave", lambda: "CLOSED" in first.lines, scenario.members)
    described = share_groups_tool(bootstrap, "--describe", "--offsets", "--group", group)
    row = [line.split() for line in described.splitlines() if topic in line]
    # GROUP TOPIC PARTITION START-OFFSET LAG: nothing left to deliver (Kafka 4.4 may still
    # report the acknowledged batch's first offset as the start)
    assert row and row[0][4] == "0" and row[0][3] in ("0", "10"), described
    reset = share_groups_tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic,
                              "--to-earliest", "--execute")
    assert topic in reset, reset
    again = scenario.member("accept")
    wait_for("the records again", lambda: {o for o, _, _ in again.records()} >= set(range(10)),
             scenario.members)
    assert {c for o, c, _ in again.records() if o < 10} == {1}

"""The Java consumer (kafka-clients 4.4.0) with `group.protocol=consumer` (KIP-848), on
Strom (with `group.coordinator.rebalance.protocols=classic,consumer`) and on Apache
Kafka 4.4 as the oracle: two members split a topic; one is SIGKILLed and the other takes
over once its session times out; what the survivor committed is where a new member
starts, after a broker restart on Strom.

Each member is a Java process (`java/StromConsumerProtocol.java`) that prints its
assignment and records; the test reads those lines.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from support.broker_process import BrokerProcess
from support.clients import create_topic
from support.interop import Target, kafka_dist
from support.java_program import JavaProgram
from support.java_program import wait_for as java_wait_for

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(420)]
WAIT_S = 120
# a SIGKILLed member leaves after group.consumer.session.timeout.ms: 45 s by default and
# at least group.consumer.min.session.timeout.ms; both brokers here take 12 s (heartbeats
# stay at the default 5 s)
SESSION = {"group.consumer.min.session.timeout.ms": "12000",
           "group.consumer.session.timeout.ms": "12000"}


class Member(JavaProgram):
    """One Java group member and the lines it printed so far."""

    def __init__(self, classes: Path, lib: Path, bootstrap: str, group: str, topic: str,
                 seconds: int = 300, instance: str | None = None) -> None:
        super().__init__(classes, lib, "StromConsumerProtocol", bootstrap, group, topic,
                         str(seconds), *([instance] if instance else []))

    def assigned_topics(self) -> set[tuple[str, int]] | None:
        """(topic, partition) of the last ASSIGNED line, None before the first."""
        for line in reversed(self.lines):
            if line.startswith("ASSIGNED"):
                text = line[len("ASSIGNED"):].strip()
                pairs = [entry.rsplit(":", 1) for entry in text.split(",")] if text else []
                return {(topic, int(p)) for topic, p in pairs}
        return None

    def assigned(self) -> set[int] | None:
        pairs = self.assigned_topics()
        return None if pairs is None else {p for _, p in pairs}

    def records(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in
                (line.split()[1:3] for line in self.lines if line.startswith("RECORD "))]

    def committed(self) -> int:
        counts = [int(line.split()[1]) for line in self.lines if line.startswith("COMMITTED ")]
        return max(counts, default=0)

def wait_for(what: str, done: Callable[[], bool], members: list[Member]) -> None:
    java_wait_for(what, done, members, WAIT_S)


def produce(bootstrap: str, topic: str, per_partition: int, partitions: int = 4) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"v{i}".encode(), partition=p)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def strom_848(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("interop-848") / "data", overrides={
        "group.coordinator.rebalance.protocols": "classic,consumer", **SESSION}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def kafka_848(kafka_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    broker = kafka_dist.KafkaBroker(tmp_path_factory.mktemp("interop-848-kafka"),
                                    overrides=SESSION)
    broker.start()
    yield Target("kafka", broker.bootstrap, 1)
    broker.stop()


@pytest.fixture(params=["strom", "kafka"])
def broker(request: pytest.FixtureRequest, kafka_lib: Path) -> tuple[Target, BrokerProcess | None]:
    if request.param == "strom":
        proc: BrokerProcess = request.getfixturevalue("strom_848")
        return Target("strom", proc.bootstrap, 0), proc
    return request.getfixturevalue("kafka_848"), None


def test_members_split_one_is_killed_the_other_takes_over_and_commits_hold(
        broker: tuple[Target, BrokerProcess | None], interop_classes: Path,
        kafka_lib: Path) -> None:
    target, strom = broker
    topic = create_topic(target.bootstrap, f"kip848-{uuid.uuid4().hex[:8]}", partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members: list[Member] = []

    def member() -> Member:
        members.append(Member(interop_classes, kafka_lib, target.bootstrap, group, topic))
        return members[-1]

    try:
        first = member()
        wait_for("the first member to own everything",
                 lambda: first.assigned() == {0, 1, 2, 3}, members)
        second = member()

        def split() -> bool:
            a, b = first.assigned(), second.assigned()
            return a is not None and b is not None and len(a) == len(b) == 2 and not a & b

        wait_for("the two members to split the partitions", split, members)
        second.proc.send_signal(signal.SIGKILL)
        wait_for("the survivor to take over", lambda: first.assigned() == {0, 1, 2, 3},
                 members)
        produce(target.bootstrap, topic, per_partition=5)
        wait_for("the survivor to consume and commit everything",
                 lambda: first.committed() >= 20, members)
        first.stop()
        if strom is not None:
            strom.restart()
        produce(target.bootstrap, topic, per_partition=1)
        third = member()
        wait_for("a new member to consume the new records", lambda: len(third.records()) >= 4,
                 members)
        assert sorted(third.records()) == [(p, 5) for p in range(4)], "committed offsets lost"
    finally:
        for m in members:
            m.stop()


def test_a_classic_group_takes_a_consumer_member_and_gives_it_back(
        broker: tuple[Target, BrokerProcess | None], interop_classes: Path,
        kafka_lib: Path) -> None:
    """Mixed groups: a consumer-protocol member joins a group of classic members (the
    group is upgraded; the classic member, answered from the consumer group, gives up
    half its partitions); when it leaves, the group goes back to the classic protocol
    and the classic member takes everything again."""
    target, _ = broker
    topic = create_topic(target.bootstrap, f"mixed-{uuid.uuid4().hex[:8]}", partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(target.bootstrap, topic, per_partition=5)
    classic = Member(interop_classes, kafka_lib, target.bootstrap, group, f"classic:{topic}")
    members = [classic]
    try:
        wait_for("the classic member to own every partition",
                 lambda: classic.assigned() == {0, 1, 2, 3}, members)
        modern = Member(interop_classes, kafka_lib, target.bootstrap, group, topic, seconds=40)
        members.append(modern)

        def split() -> bool:
            a, b = classic.assigned(), modern.assigned()
            return bool(a) and bool(b) and not (a & b) and (a | b) == {0, 1, 2, 3}

        wait_for("the two protocols to split the topic", split, members)
        wait_for("the consumer-protocol member to leave", lambda: "CLOSED" in modern.lines,
                 members)
        wait_for("the classic member to take everything back",
                 lambda: classic.assigned() == {0, 1, 2, 3}, members)
    finally:
        for m in members:
            m.stop()


def test_kafka_reads_the_consumer_group_records_strom_writes(
        tmp_path: Path, kafka_lib: Path) -> None:
    """Kafka's own DumpLogSegments --offsets-decoder decodes every KIP-848 record type
    Strom wrote to `__consumer_offsets` (16: a resolved regex too; 5 with a classic
    member's metadata, from an upgraded mixed group), field by field."""
    proc = BrokerProcess(tmp_path / "data", overrides={
        "group.coordinator.rebalance.protocols": "classic,consumer"}).start()
    try:
        topic = create_topic(proc.bootstrap, f"dump-{uuid.uuid4().hex[:8]}", partitions=2)
        consumer = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "dump-group",
                             "group.protocol": "consumer"})
        consumer.subscribe([topic])
        deadline = time.monotonic() + WAIT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
        consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
        consumer.close()
        by_regex = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "dump-regex",
                             "group.protocol": "consumer"})
        by_regex.subscribe([f"^{topic}.*"])
        deadline = time.monotonic() + WAIT_S
        while not by_regex.assignment() and time.monotonic() < deadline:
            by_regex.poll(0.2)
        by_regex.close()
        classic = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "dump-mixed"})
        classic.subscribe([topic])
        deadline = time.monotonic() + WAIT_S
        while not classic.assignment() and time.monotonic() < deadline:
            classic.poll(0.2)
        modern = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "dump-mixed",
                           "group.protocol": "consumer"})
        modern.subscribe([topic])  # upgrades the classic group: tag 0 of record 5
        deadline = time.monotonic() + WAIT_S
        while not modern.assignment() and time.monotonic() < deadline:
            modern.poll(0.2)
            classic.poll(0.2)
        modern.close()
        classic.close()
    finally:
        proc.stop()
    segments = [str(f) for f in (tmp_path / "data").glob("__consumer_offsets-*/*.log")
                if f.stat().st_size > 0]
    out = kafka_dist.run_tool("org.apache.kafka.tools.DumpLogSegments", "--offsets-decoder",
                              "--files", ",".join(segments), check=True).stdout
    for kind in ("3", "5", "6", "7", "8"):
        assert f'key: {{"type":"{kind}","data":{{"groupId":"dump-group"' in out, out[-3000:]
    assert f'"subscribedTopicNames":["{topic}"]' in out
    assert '"memberEpoch":1,"previousMemberEpoch":0,"state":0' in out
    assert '"partitions":[0,1]' in out and "payload: <DELETE>" in out
    assert '"offset":3' in out
    mixed = [line for line in out.splitlines()
             if '"groupId":"dump-mixed"' in line and '{"type":"5"' in line]
    assert any('"classicMemberMetadata":{"sessionTimeoutMs":45000' in line
               and '"supportedProtocols":[{"name":"range"' in line for line in mixed), mixed
    regex_keys = [line for line in out.splitlines() if '{"type":"16"' in line]
    assert regex_keys and '"groupId":"dump-regex"' in regex_keys[0], out[-3000:]
    assert f'"topics":["{topic}"]' in regex_keys[0], regex_keys[0]


def test_a_regex_subscription_picks_up_a_new_topic(
        broker: tuple[Target, BrokerProcess | None], interop_classes: Path,
        kafka_lib: Path) -> None:
    """SubscriptionPattern: the broker resolves the regex, and a topic created later
    that matches it joins the member's assignment."""
    target, _ = broker
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    first = create_topic(target.bootstrap, f"{prefix}-a", partitions=2)
    member = Member(interop_classes, kafka_lib, target.bootstrap, f"g-{prefix}",
                    f"regex:{prefix}-.*")
    try:
        wait_for("the regex to match the first topic",
                 lambda: member.assigned_topics() == {(first, 0), (first, 1)}, [member])
        second = create_topic(target.bootstrap, f"{prefix}-b", partitions=1)
        wait_for("the new topic to join the assignment",
                 lambda: member.assigned_topics() == {(first, 0), (first, 1), (second, 0)},
                 [member])
    finally:
        member.stop()


def test_a_static_member_returns_to_its_partitions_without_a_rebalance(
        broker: tuple[Target, BrokerProcess | None], interop_classes: Path,
        kafka_lib: Path) -> None:
    """group.instance.id: a static member that closes leaves with epoch -2 and keeps its
    partitions; its next incarnation gets them back and the other member is never
    handed them."""
    target, _ = broker
    topic = create_topic(target.bootstrap, f"static-{uuid.uuid4().hex[:8]}", partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members: list[Member] = []

    def member(instance: str, seconds: int = 300) -> Member:
        members.append(Member(interop_classes, kafka_lib, target.bootstrap, group, topic,
                              seconds, instance))
        return members[-1]

    try:
        stayer = member("stayer")
        wait_for("the first member", lambda: stayer.assigned() == {0, 1, 2, 3}, members)
        leaver = member("leaver", seconds=30)

        def split() -> bool:
            a, b = stayer.assigned(), leaver.assigned()
            return a is not None and b is not None and len(a) == len(b) == 2 and not a & b

        wait_for("the split", split, members)
        held, seen = leaver.assigned(), len(stayer.lines)
        wait_for("the static member to close", lambda: "CLOSED" in leaver.lines, members)
        back = member("leaver")
        wait_for("its return", lambda: bool(back.assigned()), members)
        assert back.assigned() == held
        moved = [line for line in stayer.lines[seen:] if line.startswith("ASSIGNED")]
        assert not moved, f"the other member was rebalanced: {moved}"
    finally:
        for m in members:
            m.stop()

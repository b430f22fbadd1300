"""Consumer-group test helpers.

Two halves:

* **Member processes.** `MemberProcess` runs one group member of a real client
  (confluent-kafka, kafka-python or aiokafka) as its own OS process, so a test can
  SIGKILL it for real. The member logs everything it does, one JSON object per line
  (`assign`/`revoke`/`lost` with the partitions of that callback, `rec` for each record
  it processed, `commit` after each successful synchronous commit), and the test reads
  that log to check assignments and at-least-once delivery. SIGTERM makes a member close
  gracefully (a dynamic member then sends LeaveGroup). Run as
  `python -m support.groups member ...` with the tests directory on the path.

* **Raw group protocol.** Thin wrappers over `support.raw_client` for JoinGroup,
  SyncGroup, Heartbeat, OffsetCommit, OffsetFetch and DescribeGroups at exact versions,
  plus ConsumerProtocol subscription/assignment encoders written from the spec, so tests
  can send what real clients never would and read every field of the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from support.broker_process import wait_until

if TYPE_CHECKING:
    from support.broker_process import BrokerProcess

TESTS_DIR = Path(__file__).resolve().parent.parent
CLIENT_TIMEOUT_MS = 10_000

# Brokers for group tests: no initial rebalance delay, so a group forms as soon as its
# members have joined (the default delay has a test of its own).
NO_DELAY = {"group.initial.rebalance.delay.ms": "0"}


# --- waiting -----------------------------------------------------------------------------




# --- member processes ------------------------------------------------------------------


@dataclass
class MemberLog:
    """What one member process reported, parsed from its JSON-lines log."""

    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> MemberLog:
        events = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line torn by SIGKILL: nothing after it was written
        return cls(events)

    def assignment(self) -> set[int]:
        """Partitions currently owned, folding assign/revoke/lost callbacks in order."""
        owned: set[int] = set()
        for e in self.events:
            if e["ev"] == "assign":
                owned |= set(e["parts"])
            elif e["ev"] in ("revoke", "lost"):
                owned -= set(e["parts"])
        return owned

    def callbacks(self) -> list[tuple[str, list[int]]]:
        """Every rebalance callback (assign/revoke/lost) with its partitions, in order."""
        return [(e["ev"], sorted(e["parts"])) for e in self.events
                if e["ev"] in ("assign", "revoke", "lost")]

    def processed(self) -> list[tuple[int, int]]:
        return [(e["p"], e["o"]) for e in self.events if e["ev"] == "rec"]

    def committed(self) -> dict[int, int]:
        """The last offset this member successfully committed per partition."""
        out: dict[int, int] = {}
        for e in self.events:
            if e["ev"] == "commit":
                out.update({int(p): o for p, o in e["offsets"].items()})
        return out

    def has(self, ev: str) -> bool:
        return any(e["ev"] == ev for e in self.events)


class MemberProcess:
    """One consumer-group member of a real client in its own process."""

    def __init__(self, client: str, bootstrap: str, group: str, topic: str, log_dir: Path,
                 name: str, *, session_ms: int = 6000, heartbeat_ms: int = 1000,
                 instance_id: str | None = None, assignor: str | None = None,
                 delay_ms: int = 0) -> None:
        self.client = client
        self.name = name
        self.log_path = log_dir / f"{name}.jsonl"
        self.stderr_path = log_dir / f"{name}.stderr"
        self.args = [
            "--client", client, "--bootstrap", bootstrap, "--group", group, "--topic", topic,
            "--log", str(self.log_path), "--session-ms", str(session_ms),
            "--heartbeat-ms", str(heartbeat_ms), "--delay-ms", str(delay_ms),
        ]
        if instance_id is not None:
            self.args += ["--instance-id", instance_id]
        if assignor is not None:
            self.args += ["--assignor", assignor]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MemberProcess:
        self.log_path.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "support.groups", "member", *self.args],
                stdout=err, stderr=subprocess.STDOUT, env=env, cwd=TESTS_DIR,
            )
        return self

    def log(self) -> MemberLog:
        return MemberLog.read(self.log_path)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:] if self.stderr_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no last commit; the coordinator must notice the silence."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self, timeout: float = 30) -> int:
        """SIGTERM: the member closes its consumer (a dynamic member leaves the group)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not close within {timeout}s: "
                                     f"{self.stderr()}") from None
        return int(self.proc.returncode)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def describe_members(members: Iterable[MemberProcess]) -> str:
    return "; ".join(
        f"{m.name}{'' if m.alive() else ' (dead)'}: {sorted(m.log().assignment())}"
        for m in members
    )


def balanced(members: Sequence[MemberProcess], partitions: int) -> bool:
    """Every partition owned by exactly one member, and the members' shares differ by at
    most one (what every assignor produces for one topic)."""
    owned = [m.log().assignment() for m in members]
    flat = [p for o in owned for p in o]
    if sorted(flat) != list(range(partitions)):
        return False
    sizes = [len(o) for o in owned]
    return max(sizes) - min(sizes) <= 1


def stop_all(members: Iterable[MemberProcess]) -> None:
    for m in members:
        m.ensure_stopped()


def processed_union(logs: Iterable[MemberLog]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for log in logs:
        for p, o in log.processed():
            out[p].add(o)
    return out


def gaps(processed: Mapping[int, set[int]], ends: Mapping[int, int]) -> dict[int, list[int]]:
    """Offsets below each partition's end that nobody processed (at most 10 each)."""
    out = {}
    for p, end in ends.items():
        missing = sorted(set(range(end)) - processed.get(p, set()))
        if missing:
            out[p] = missing[:10]
    return out


# --- the member process itself ----------------------------------------------------------


class _Log:
    def __init__(self, path: str) -> None:
        self.f = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def __call__(self, ev: str, **fields: Any) -> None:
        self.f.write(json.dumps({"ev": ev, "t": time.time(), **fields}) + "\n")


def _member_main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser()
    for name in ("--client", "--bootstrap", "--group", "--topic", "--log"):
        ap.add_argument(name, required=True)
    ap.add_argument("--session-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--instance-id")
    ap.add_argument("--assignor")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=os.environ.get("STROM_TEST_CLIENT_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s")
    log = _Log(args.log)
    stop = {"now": False}

    def on_term(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    runner = {"confluent": _run_confluent, "kafka-python": _run_kafka_python,
              "aiokafka": _run_aiokafka}[args.client]
    log("start", pid=os.getpid())
    runner(args, log, lambda: stop["now"])
    log("closed")
    return 0


def _run_confluent(args: argparse.Namespace, log: _Log, stopping: Callable[[], bool]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    conf: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap, "group.id": args.group,
        "session.timeout.ms": args.session_ms, "heartbeat.interval.ms": args.heartbeat_ms,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "socket.timeout.ms": CLIENT_TIMEOUT_MS, "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    if args.assignor:
        conf["partition.assignment.strategy"] = args.assignor
    consumer = Consumer(conf)

    def parts(tps: list[Any]) -> list[int]:
        return sorted(tp.partition for tp in tps)

    consumer.subscribe(
        [args.topic],
        on_assign=lambda c, tps: log("assign", parts=parts(tps)),
        on_revoke=lambda c, tps: log("revoke", parts=parts(tps)),
        on_lost=lambda c, tps: log("lost", parts=parts(tps)),
    )
    try:
        while not stopping():
            msgs = consumer.consume(num_messages=100, timeout=0.2)
            done: dict[int, int] = {}
            for m in msgs:
                if m.error() is not None:
                    log("error", error=str(m.error()))
                    continue
                if args.delay_ms:
                    time.sleep(args.delay_ms / 1000)
                log("rec", p=m.partition(), o=m.offset())
                done[m.partition()] = m.offset() + 1
            if done:
                try:
                    consumer.commit(offsets=[TopicPartition(args.topic, p, o)
                                             for p, o in done.items()], asynchronous=False)
                    log("commit", offsets=done)
                except Exception as exc:  # noqa: BLE001 - a client's commit error is an event the test reads
                    log("commit_failed", error=str(exc))
    finally:
        consumer.close()


def _run_kafka_python(args: argparse.Namespace, log: _Log, stopping: Callable[[], bool]) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            log("revoke", parts=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            log("assign", parts=sorted(tp.partition for tp in assigned))

        def on_partitions_lost(self, lost: Any) -> None:
            log("lost", parts=sorted(tp.partition for tp in lost))

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=args.group,
        group_instance_id=args.instance_id,
        session_timeout_ms=args.session_ms, heartbeat_interval_ms=args.heartbeat_ms,
        auto_offset_reset="earliest", enable_auto_commit=False,
        request_timeout_ms=max(CLIENT_TIMEOUT_MS, args.session_ms + 5000),
        fetch_max_wait_ms=100, metadata_max_age_ms=2000,
    )
    # Know the topic before joining: a kafka-python 3.0 leader that assigns with no
    # partition metadata rejoins at once, and in that path the client can hang after its
    # SyncGroup response (seen against Strom; the broker had answered correctly).
    deadline = time.monotonic() + 30
    while not consumer.partitions_for_topic(args.topic) and time.monotonic() < deadline:
        time.sleep(0.1)
    consumer.subscribe([args.topic], listener=Listener())
    try:
        while not stopping():
            done = _poll_kafka_python(consumer, args, log)
            if done:
                try:
                    consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in done.items()})
                    log("commit", offsets={tp.partition: o for tp, o in done.items()})
                except Exception as exc:  # noqa: BLE001 - a client's commit error is an event the test reads
                    log("commit_failed", error=repr(exc))
    finally:
        consumer.close(autocommit=False)


def _poll_kafka_python(consumer: Any, args: argparse.Namespace, log: _Log) -> dict[Any, int]:
    """One poll: each record logged; the next offset to commit per partition."""
    # A poll that times out in the middle of a join makes kafka-python 3.0 join
    # again (for a static leader that means a rebalance): give it time to finish.
    batches = consumer.poll(timeout_ms=1000, max_records=100)
    done = {}
    for tp, msgs in batches.items():
        for m in msgs:
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            log("rec", p=m.partition, o=m.offset)
            done[tp] = m.offset + 1
    return done


def _run_aiokafka(args: argparse.Namespace, log: _Log, stopping: Callable[[], bool]) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            log("revoke", parts=sorted(tp.partition for tp in revoked))

        async def on_partitions_assigned(self, assigned: Any) -> None:
            log("assign", parts=sorted(tp.partition for tp in assigned))

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=args.bootstrap, group_id=args.group,
            group_instance_id=args.instance_id,
            session_timeout_ms=args.session_ms, heartbeat_interval_ms=args.heartbeat_ms,
            auto_offset_reset="earliest", enable_auto_commit=False,
            request_timeout_ms=max(CLIENT_TIMEOUT_MS, args.session_ms + 5000),
            fetch_max_wait_ms=100, metadata_max_age_ms=2000,
        )
        await consumer.start()
        consumer.subscribe([args.topic], listener=Listener())
        try:
            while not stopping():
                batches = await consumer.getmany(timeout_ms=200, max_records=100)
                done = {}
                for tp, msgs in batches.items():
                    for m in msgs:
                        if args.delay_ms:
                            await asyncio.sleep(args.delay_ms / 1000)
                        log("rec", p=m.partition, o=m.offset)
                        done[tp] = m.offset + 1
                if done:
                    try:
                        await consumer.commit(done)
                        log("commit", offsets={tp.partition: o for tp, o in done.items()})
                    except Exception as exc:  # noqa: BLE001 - a client's commit error is an event the test reads
                        log("commit_failed", error=repr(exc))
        finally:
            await consumer.stop()

    asyncio.run(run())


# --- one in-process group consumer, read up to given offsets --------------------------------


def consume_in_group(client: str, bootstrap: str, group: str, topic: str,
                     until: Mapping[int, int], timeout: float = 60) -> list[tuple[int, int]]:
    """Join `group` with one consumer of `client`, process records of each partition in
    `until` up to (not including) offset `until[p]`, committing after every batch exactly
    what was processed, then close. Records at or past `until[p]` are neither processed
    nor committed. Returns (partition, offset) in processing order.

    Every partition in `until` must have at least one record left to read for the group.
    """
    fn = {"confluent": _consume_confluent, "kafka-python": _consume_kafka_python,
          "aiokafka": _consume_aiokafka}[client]
    return fn(bootstrap, group, topic, dict(until), timeout)  # type: ignore[no-any-return]


class _Tracker:
    def __init__(self, until: dict[int, int], timeout: float) -> None:
        self.until = until
        self.next: dict[int, int] = {}
        self.processed: list[tuple[int, int]] = []
        self.deadline = time.monotonic() + timeout

    def take(self, partition: int, offset: int) -> bool:
        if offset >= self.until.get(partition, -1):
            return False
        self.processed.append((partition, offset))
        self.next[partition] = offset + 1
        return True

    def done(self) -> bool:
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"read up to {self.until}, reached {self.next}")
        return all(self.next.get(p, -1) >= end for p, end in self.until.items())


def _consume_confluent(bootstrap: str, group: str, topic: str, until: dict[int, int],
                       timeout: float) -> list[tuple[int, int]]:
    from confluent_kafka import Consumer, TopicPartition

    tracker = _Tracker(until, timeout)
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "socket.timeout.ms": CLIENT_TIMEOUT_MS,
        "fetch.wait.max.ms": 100,
    })
    try:
        consumer.subscribe([topic])
        while not tracker.done():
            done = {}
            for m in consumer.consume(num_messages=100, timeout=0.2):
                if m.error() is not None:
                    raise RuntimeError(f"consumer error: {m.error()}")
                if tracker.take(m.partition(), m.offset()):
                    done[m.partition()] = m.offset() + 1
            if done:
                consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in done.items()],
                                asynchronous=False)
    finally:
        consumer.close()
    return tracker.processed


def _consume_kafka_python(bootstrap: str, group: str, topic: str, until: dict[int, int],
                          timeout: float) -> list[tuple[int, int]]:
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    tracker = _Tracker(until, timeout)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, session_timeout_ms=10000,
        heartbeat_interval_ms=1000, auto_offset_reset="earliest", enable_auto_commit=False,
        request_timeout_ms=15000, fetch_max_wait_ms=100,
    )
    try:
        consumer.subscribe([topic])
        while not tracker.done():
            done = {}
            for tp, msgs in consumer.poll(timeout_ms=1000, max_records=100).items():
                for m in msgs:
                    if tracker.take(m.partition, m.offset):
                        done[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
            if done:
                consumer.commit(done)
    finally:
        consumer.close(autocommit=False)
    return tracker.processed


def _consume_aiokafka(bootstrap: str, group: str, topic: str, until: dict[int, int],
                      timeout: float) -> list[tuple[int, int]]:
    from aiokafka import AIOKafkaConsumer

    tracker = _Tracker(until, timeout)

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, session_timeout_ms=10000,
            heartbeat_interval_ms=1000, auto_offset_reset="earliest", enable_auto_commit=False,
            request_timeout_ms=15000, fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            while not tracker.done():
                done = {}
                batches = await consumer.getmany(timeout_ms=200, max_records=100)
                for tp, msgs in batches.items():
                    for m in msgs:
                        if tracker.take(m.partition, m.offset):
                            done[tp] = m.offset + 1
                if done:
                    await consumer.commit(done)
        finally:
            await consumer.stop()

    asyncio.run(run())
    return tracker.processed


# --- ConsumerProtocol payloads, from the spec ------------------------------------------


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def subscription(topics: Sequence[str], user_data: bytes | None = None) -> bytes:
    """ConsumerProtocolSubscription v0: version, topics, user data."""
    out = struct.pack(">hi", 0, len(topics)) + b"".join(_str(t) for t in topics)
    return out + (struct.pack(">i", -1) if user_data is None
                  else struct.pack(">i", len(user_data)) + user_data)


def assignment(partitions: Mapping[str, Sequence[int]]) -> bytes:
    """ConsumerProtocolAssignment v0: version, [topic, [partition]], user data (null)."""
    out = struct.pack(">hi", 0, len(partitions))
    for topic, parts in partitions.items():
        out += _str(topic) + struct.pack(">i", len(parts))
        out += b"".join(struct.pack(">i", p) for p in parts)
    return out + struct.pack(">i", -1)


def parse_assignment(data: bytes) -> dict[str, list[int]]:
    """Decode a ConsumerProtocolAssignment (any version; trailing fields ignored)."""
    pos = 2
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = {}
    for _ in range(n):
        (length,) = struct.unpack_from(">h", data, pos)
        pos += 2
        topic = data[pos:pos + length].decode()
        pos += length
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out[topic] = list(struct.unpack_from(f">{count}i", data, pos))
        pos += 4 * count
    return out


# --- groups through the admin client ------------------------------------------------------


def new_group(prefix: str) -> str:
    """A group id no other test uses."""
    return f"g-{prefix}-{uuid.uuid4().hex[:6]}"


def committed_offsets(bootstrap: str, group: str, partitions: Sequence[Any] | None = None, *,
                      check_errors: bool = True) -> dict[tuple[str, int], int]:
    """The group's committed offsets per (topic, partition) as confluent-kafka's
    AdminClient lists them (-1001 where nothing is committed); `partitions` are
    TopicPartitions, None for all the group has. `check_errors` fails on a partition
    answered with an error."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    from support.clients import admin

    client = admin(bootstrap)  # must outlive the future
    result = client.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=15)[group].result(30)
    if check_errors:
        for tp in result.topic_partitions:
            assert tp.error is None, tp
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def committed_by_partition(bootstrap: str, group: str, topic: str, partitions: int, *,
                           check_errors: bool = True) -> dict[int, int]:
    """`committed_offsets` of partitions 0..partitions-1 of one topic, by partition."""
    from confluent_kafka import TopicPartition

    offsets = committed_offsets(bootstrap, group, [TopicPartition(topic, p) for p in range(partitions)],
                                check_errors=check_errors)
    return {p: offset for (_, p), offset in offsets.items()}


# --- raw group protocol -------------------------------------------------------------------


def raw(bootstrap: str) -> Any:
    from support.raw_client import RawClient

    return RawClient(bootstrap, timeout=20)


def find_coordinator(client: Any, group: str, timeout: float = 20) -> None:
    """Wait until the broker coordinates `group` (creates __consumer_offsets on first use)."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.request(10, 4, key_type=0, coordinator_keys=[group]).body
        code = body.coordinators[0].error_code
        if code == 0:
            # Loading the group's partition follows the metadata image; a cheap probe.
            fetched = offset_fetch(client, group, None)
            if fetched.error_code == 0:
                return
            code = fetched.error_code
        if time.monotonic() > deadline:
            raise TimeoutError(f"no coordinator for {group}: error {code}")
        time.sleep(0.1)


JOIN_VERSION = 9


def join(client: Any, group: str, *, member_id: str = "", instance_id: str | None = None,
         topics: Sequence[str] = ("t",), protocols: Sequence[tuple[str, bytes]] | None = None,
         session_ms: int = 10_000, rebalance_ms: int = 10_000, version: int = JOIN_VERSION,
         protocol_type: str = "consumer") -> Any:
    if protocols is None:
        protocols = [("range", subscription(topics))]
    return client.request(
        11, version, group_id=group, session_timeout=session_ms, rebalance_timeout=rebalance_ms,
        member_id=member_id, group_instance_id=instance_id, protocol_type=protocol_type,
        protocols=[{"name": n, "metadata": m} for n, m in protocols], reason=None,
    ).body


def join_new(client: Any, group: str, **kwargs: Any) -> Any:
    """JoinGroup v4+ as a new dynamic member: MEMBER_ID_REQUIRED, then join with the id."""
    first = join(client, group, **kwargs)
    if first.error_code != 79:  # member_id_required
        return first
    return join(client, group, member_id=first.member_id, **kwargs)


def sync(client: Any, group: str, generation: int, member_id: str,
         assignments: Mapping[str, bytes] | None = None, *, instance_id: str | None = None,
         protocol_name: str | None = "range", version: int = 5) -> Any:
    return client.request(
        14, version, group_id=group, generation_id=generation, member_id=member_id,
        group_instance_id=instance_id, protocol_type="consumer", protocol_name=protocol_name,
        assignments=[{"member_id": m, "assignment": a} for m, a in (assignments or {}).items()],
    ).body


def heartbeat(client: Any, group: str, generation: int, member_id: str,
              instance_id: str | None = None) -> int:
    return int(client.request(12, 4, group_id=group, generation_id=generation,
                              member_id=member_id, group_instance_id=instance_id).body.error_code)


def leave(client: Any, group: str, member_id: str, instance_id: str | None = None) -> Any:
    return client.request(13, 5, group_id=group, members=[
        {"member_id": member_id, "group_instance_id": instance_id, "reason": None}]).body


@dataclass(frozen=True)
class Commit:
    topic: str
    partition: int
    offset: int
    metadata: str | None = ""
    leader_epoch: int = -1


def commit(client: Any, group: str, commits: Sequence[Commit], *, generation: int = -1,
           member_id: str = "", instance_id: str | None = None, version: int = 9,
           ) -> dict[tuple[str, int], int]:
    """OffsetCommit; returns the error code per (topic, partition)."""
    by_topic: dict[str, list[Commit]] = defaultdict(list)
    for c in commits:
        by_topic[c.topic].append(c)
    fields: dict[str, Any] = {
        "group_id": group, "member_id": member_id, "group_instance_id": instance_id,
        "retention_time": -1,
        "topics": [{"name": t, "partitions": [
            {"partition_index": c.partition, "committed_offset": c.offset,
             "committed_leader_epoch": c.leader_epoch, "committed_metadata": c.metadata,
             "commit_timestamp": -1}
            for c in cs]} for t, cs in by_topic.items()],
    }
    fields["generation_id_or_member_epoch" if version >= 9 else "generation_id"] = generation
    body = client.request(8, version, **fields).body
    return {(t.name, int(p.partition_index)): int(p.error_code)
            for t in body.topics for p in t.partitions}


def offset_fetch(client: Any, group: str, topics: Mapping[str, Sequence[int]] | None,
                 version: int = 7) -> Any:
    """OffsetFetch v1-v7 for one group; `topics` None means all committed offsets."""
    wanted = None if topics is None else [
        {"name": t, "partition_indexes": list(ps)} for t, ps in topics.items()]
    return client.request(9, version, group_id=group, topics=wanted, require_stable=False).body


def fetched_offsets(body: Any) -> dict[tuple[str, int], tuple[int, int, str | None, int]]:
    """(offset, leader epoch, metadata, error) per partition of an OffsetFetch answer (or
    of one group's entry in a v8+ answer)."""
    return {
        (t.name, int(p.partition_index)): (
            int(p.committed_offset), int(getattr(p, "committed_leader_epoch", -1)), p.metadata,
            int(p.error_code))
        for t in body.topics for p in t.partitions
    }


def describe_group(client: Any, group: str) -> Any:
    return client.request(15, 5, groups=[group], include_authorized_operations=False).body.groups[0]


def current_generation(client: Any, group: str, member_id: str, limit: int = 200) -> int:
    """The group's generation as the coordinator sees it: the one generation id a heartbeat
    of an existing member is accepted with (classic DescribeGroups does not report it)."""
    for generation in range(limit):
        code = heartbeat(client, group, generation, member_id)
        if code in (0, 27):  # none, rebalance_in_progress
            return generation
        assert code == 22, f"heartbeat of {member_id} at generation {generation}: error {code}"
    raise AssertionError(f"no generation below {limit} accepted for {member_id}")


# --- raw members of a group ------------------------------------------------------------------


@dataclass
class RawMember:
    client: Any
    member_id: str
    generation: int
    assignment: bytes = b""
    instance_id: str | None = None


def form_group(bootstrap: str, group: str, topic: str, *, n: int = 2,
               assignments: Callable[[list[str]], dict[str, bytes]] | None = None,
               instance_ids: list[str | None] | None = None,
               protocols: list[list[tuple[str, bytes]]] | None = None,
               session_ms: int = 10_000, rebalance_ms: int = 10_000) -> list[RawMember]:
    """`n` raw members join one by one (each join rebalances), the first one leads and
    hands out `assignments(member_ids)` (default: partitions round-robin). Returns the
    members, Stable, all at the final generation."""
    timeouts = {"session_ms": session_ms, "rebalance_ms": rebalance_ms}
    ids = instance_ids or [None] * n
    protos = protocols or [[("range", subscription([topic]))]] * n
    members: list[RawMember] = []
    pool = ThreadPoolExecutor(max_workers=n)
    try:
        for i in range(n):
            client = raw(bootstrap)
            if i == 0:
                find_coordinator(client, group)
            pending = pool.submit(join_new, client, group, instance_id=ids[i], protocols=protos[i],
                                  **timeouts)
            for m in members:  # the others learn of the rebalance by heartbeat and rejoin
                wait_until(lambda m=m: heartbeat(m.client, group, m.generation, m.member_id,
                                                 m.instance_id) == ErrorCode.rebalance_in_progress,
                           10, "the group starts rebalancing")
            rejoins = [pool.submit(join, m.client, group, member_id=m.member_id,
                                   instance_id=m.instance_id, protocols=protos[k], **timeouts)
                       for k, m in enumerate(members)]
            joined = [f.result(20) for f in rejoins] + [pending.result(20)]
            for j in joined:
                assert j.error_code == ErrorCode.none, j
            members.append(RawMember(client, joined[-1].member_id, joined[-1].generation_id,
                                     instance_id=ids[i]))
            for m, j in zip(members, joined, strict=True):
                m.generation = j.generation_id
                m.member_id = j.member_id
            leader = members[0]
            assert joined[0].leader == leader.member_id
            assert sorted(x.member_id for x in joined[0].members) == sorted(
                m.member_id for m in members)
            member_ids = [m.member_id for m in members]
            plan = assignments(member_ids) if assignments else {
                mid: assignment({topic: [p for p in range(3) if p % len(member_ids) == k]})
                for k, mid in enumerate(member_ids)}
            followers = [pool.submit(sync, m.client, group, m.generation, m.member_id,
                                     instance_id=m.instance_id) for m in members[1:]]
            synced = [sync(leader.client, group, leader.generation, leader.member_id, plan,
                           instance_id=leader.instance_id)] + [f.result(20) for f in followers]
            for m, s in zip(members, synced, strict=True):
                assert s.error_code == ErrorCode.none, s
                m.assignment = bytes(s.assignment)
                assert m.assignment == plan.get(m.member_id, b"")
    finally:
        pool.shutdown(wait=False)
    return members


def assert_intact(broker: BrokerProcess, group: str, members: list[RawMember]) -> None:
    """The broker is up, the group is Stable with exactly these members and assignments,
    and every member's heartbeat is accepted at its generation."""
    assert broker.is_alive()
    with raw(broker.bootstrap) as c:
        described = describe_group(c, group)
        assert described.group_state == "Stable"
        assert {m.member_id: bytes(m.member_assignment) for m in described.members} == {
            m.member_id: m.assignment for m in members}
        for m in members:
            assert heartbeat(c, group, m.generation, m.member_id, m.instance_id) == ErrorCode.none
            assert current_generation(c, group, m.member_id) == m.generation


def close_members(group: str, members: list[RawMember]) -> None:
    for m in members:
        leave(m.client, group, m.member_id, m.instance_id)
        m.client.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "member":
        sys.exit(_member_main(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} member ...")

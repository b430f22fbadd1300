"""A share consumer SIGKILLed mid-batch hands its records back at once, on Strom and on
Apache Kafka 4.4 alike: its connections close, and the broker ends the share sessions
opened on them and releases what they held (Kafka's ShareSessionCache disconnect
listener), long before the acquisition lock (60 s here, a group config) would expire.

The killed consumer is a child process with confluent-kafka's `ShareConsumer` in
explicit acknowledgement mode that never acknowledges; a second consumer in the group
then receives every record, each for the second time, within 30 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer

from support.clients import create_topic
from support.interop import Target
from support.raw_client import RawClient

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(300)]
HOLDER = """
import sys
from confluent_kafka import ShareConsumer
consumer = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                          "share.acknowledgement.mode": "explicit"})
consumer.subscribe([sys.argv[3]])
while True:
    got = [m.offset() for m in consumer.poll(0.5) if m.error() is None]
    if got:
        print("GOT", *got, flush=True)
"""


@pytest.fixture
def target(share_target: Target) -> Target:
    return share_target


def _configure(bootstrap: str, group: str) -> None:
    """Earliest start and a 60 s lock, as group configs (GROUP resources, type 32)."""
    with RawClient(bootstrap) as raw:
        body = raw.request(44, 1, resources=[{
            "resource_type": 32, "resource_name": group, "configs": [
                {"name": "share.auto.offset.reset", "config_operation": 0,
                 "value": "earliest"},
                {"name": "share.record.lock.duration.ms", "config_operation": 0,
                 "value": "60000"}]}], validate_only=False).body
    assert body.responses[0].error_code == 0, body


def _hold(bootstrap: str, group: str, topic: str) -> subprocess.Popen[str]:
    """A consumer process holding the records it got; returns once it got all five."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, bootstrap, group, topic],
                             stdout=subprocess.PIPE, text=True)
    held: set[int] = set()
    assert child.stdout is not None
    while len(held) < 5:
        line = child.stdout.readline()
        assert line, "the holding consumer exited"
        held.update(int(o) for o in line.split()[1:])
    return child


def test_a_killed_share_consumer_releases_its_records_at_once(target: Target) -> None:
    topic = create_topic(target.bootstrap, f"sdc-{uuid.uuid4().hex[:8]}", partitions=1)
    group = f"sdc-{uuid.uuid4().hex[:8]}"
    _configure(target.bootstrap, group)
    producer = Producer({"bootstrap.servers": target.bootstrap})
    for i in range(5):
        producer.produce(topic, value=f"r{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    child = _hold(target.bootstrap, group, topic)
    child.kill()
    child.wait(30)
    other = ShareConsumer({"bootstrap.servers": target.bootstrap, "group.id": group,
                           "share.acknowledgement.mode": "explicit"})
    other.subscribe([topic])
    got: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 30  # half the lock: only a release brings them back
        while len(got) < 5 and time.monotonic() < deadline:
            for message in other.poll(0.5):
                if message.error() is None:
                    got[message.offset()] = message.delivery_count()
                    other.acknowledge(message, AcknowledgeType.ACCEPT)
    finally:
        other.close()
    assert got == dict.fromkeys(range(5), 2), got

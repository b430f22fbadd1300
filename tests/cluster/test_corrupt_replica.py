"""A follower whose segment was damaged while it was down gets the lost records back.

Recovery cuts out only the damaged batch and keeps the batches after it (Kafka would cut
everything after it). On a single broker that leaves a gap; on a replica the gap would
never be fetched again, since the follower fetches from its log end. So a follower
truncates to the first offset recovery lost and replicates from there: afterwards every
broker holds the same complete log, record for record.
"""

from __future__ import annotations

import pytest

from strom.protocol.records import scan_batches
from support import chaos
from support.cluster import Cluster, read_log

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "damaged-replica"


def test_follower_refetches_what_recovery_cut_out(cluster: Cluster) -> None:
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "2"})
    leader = cluster.wait_for_leader(TOPIC, 0)
    values = [b"v-%05d" % i for i in range(400)]
    chaos.produce_values(cluster.bootstrap, TOPIC, values, acks="all", batches=20)
    follower = next(b for b in cluster.brokers if b != leader)
    cluster.kill(follower)

    segment = sorted((cluster.data_dir(follower) / f"{TOPIC}-0").glob("*.log"))[-1]
    raw = segment.read_bytes()
    batches = list(scan_batches(raw))
    assert len(batches) >= 10
    position, header = batches[len(batches) // 2]
    with open(segment, "r+b") as f:  # flip a record byte: the CRC no longer holds
        f.seek(position + header.size - 2)
        f.write(bytes([raw[position + header.size - 2] ^ 0xFF]))

    cluster.start_broker(follower)
    cluster.wait_for_isr(TOPIC, [0], cluster.brokers)
    more = [b"after-%03d" % i for i in range(50)]
    chaos.produce_values(cluster.bootstrap, TOPIC, more, acks="all")
    cluster.wait_for_isr(TOPIC, [0], cluster.brokers)
    logs = cluster.logs()
    assert f"truncating to {header.base_offset}, where recovery lost records" in logs
    cluster.shutdown()

    expected = [(offset, value) for offset, value in enumerate(values + more)]
    for broker in cluster.brokers:
        records = [(r.offset, r.value) for r in read_log(cluster.data_dir(broker), TOPIC, 0)]
        assert records == expected, f"broker {broker} differs"

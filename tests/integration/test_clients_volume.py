"""100,000 records per client through one broker: nothing lost, reordered or duplicated.

Each value carries its partition and its sequence number within that partition; the
consumer must see, in every partition, sequence 0..n-1 in order at offsets 0..n-1.
Each client uses a different codec so volume also runs through compression.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.clients import (
    BEGINNING,
    CLIENTS,
    assert_sequenced,
    consume,
    create_topic,
    end_offsets,
    produce,
    sequenced_msgs,
    unique_topic,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TOTAL = 100_000
PARTITIONS = 4
CODEC_FOR = {"confluent": "zstd", "kafka-python": "gzip", "aiokafka": "lz4", "kcat": "snappy"}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("client", CLIENTS)
def test_100k_records_exactly_once_in_order(broker: Any, client: str) -> None:
    topic = create_topic(broker.bootstrap, unique_topic(f"volume-{client}"), PARTITIONS)
    msgs = sequenced_msgs(TOTAL, PARTITIONS)
    if client == "kcat":  # one kcat run per partition (kcat -p); order within each is kept
        msgs = sorted(msgs, key=lambda m: m.partition)

    acks = produce(client, broker.bootstrap, topic, msgs, CODEC_FOR[client],
                   linger_ms=20, timeout=240)

    if client != "kcat":  # every acknowledged offset is the record's sequence number
        for m, ack in zip(msgs, acks, strict=True):
            assert ack is not None and ack.partition == m.partition
            assert m.value is not None
            seq = int(m.value.split(b":")[1])
            assert ack.offset == seq, f"record {seq} of partition {m.partition} got {ack}"
    end = end_offsets(broker.bootstrap, topic, range(PARTITIONS))
    assert sum(end.values()) == TOTAL, f"high watermarks {end}"

    records = consume(client, broker.bootstrap, topic,
                      dict.fromkeys(range(PARTITIONS), BEGINNING), end, timeout=240)
    assert_sequenced(records, TOTAL, PARTITIONS)

"""Which `__consumer_offsets` / `__transaction_state` partition owns an id: the values
Kafka's own formula gives (Utils.abs(String.hashCode) % 50, printed by a JVM), including
a negative hash — where the partitioner's `& 0x7fffffff` would answer differently — and
the one string whose hash is Integer.MIN_VALUE."""

from __future__ import annotations

import pytest

from strom.coordinator.group.config import java_string_hash, partition_for
from strom.coordinator.transaction.config import txn_partition_for

# (id, String.hashCode, partition of 50) as a JVM computed them
KAFKA = [
    ("my-group", -1906497762, 12),
    ("connect-cluster", 1440343063, 13),
    ("word-count-app", 1086522720, 20),
    ("grüße-组", 426823438, 38),
    ("polygenelubricants", -2147483648, 0),
    ("txn-0", 110810509, 9),
]


@pytest.mark.parametrize(("ident", "hash_code", "partition"), KAFKA)
def test_ids_land_on_kafkas_partitions(ident: str, hash_code: int, partition: int) -> None:
    assert java_string_hash(ident) == hash_code
    assert partition_for(ident, 50) == partition
    assert txn_partition_for(ident, 50) == partition


def test_a_negative_hash_is_not_masked() -> None:
    """The partitioner's mask gives 36 for my-group; Kafka's coordinators use 12."""
    assert (java_string_hash("my-group") & 0x7FFFFFFF) % 50 == 36
    assert partition_for("my-group", 50) == 12

"""Admin limits Strom shares with Apache Kafka 4, proved on both brokers.

Kafka's controller refuses one operation that would write more than 10,000 metadata
records (a topic record, one per partition, one per config): every topic of such a
CreateTopics gets POLICY_VIOLATION "Unable to perform excessively large batch
operation.", validate-only requests included, and nothing is created.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from support.interop import Target
from support.raw_client import RawClient, make_request

pytestmark = pytest.mark.interop

EXCESSIVE = "Unable to perform excessively large batch operation."


@pytest.fixture
def raw(target: Target) -> Iterator[RawClient]:
    with RawClient(target.bootstrap, timeout=120) as client:
        yield client


def _create(raw: RawClient, names: list[str], partitions: int, validate_only: bool) -> list[
        tuple[str, int, str | None]]:
    request = make_request(19, 7, {
        "topics": [{"name": n, "num_partitions": partitions, "replication_factor": 1,
                    "assignments": [], "configs": []} for n in names],
        "timeout_ms": 60_000, "validate_only": validate_only,
    })
    raw.send(19, 7, request)
    return [(t.name, t.error_code, t.error_message) for t in raw.read_response(19, 7).body.topics]


def test_a_create_over_10000_records_is_refused_whole(raw: RawClient, target: Target) -> None:
    names = [f"limit-a-{target.name}", f"limit-b-{target.name}"]
    for validate_only in (True, False):
        assert _create(raw, names, 5000, validate_only) == [
            (name, ErrorCode.policy_violation, EXCESSIVE) for name in names]
    assert {code for _, code, _ in _create(raw, names, 4998, True)} == {ErrorCode.none}
    metadata = raw.request(3, 12, topics=[{"name": n} for n in names],
                           allow_auto_topic_creation=False).body
    assert {t.error_code for t in metadata.topics} == {ErrorCode.unknown_topic_or_partition}

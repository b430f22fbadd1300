"""The corpus of hostile produce payloads against Strom and Apache Kafka alike.

Each case of tests/support/corrupt_batches.py names the error Strom answers and, where it
differs, what Kafka 4.x answers; this suite proves the Kafka column on a real Kafka broker
(`[kafka]`) and holds Strom to its own (`[strom]`). Nothing refused may move the high
watermark on either broker. Where they differ Strom is the stricter or the clearer: it
names undecodable payloads CORRUPT_MESSAGE/INVALID_RECORD (Kafka: UNKNOWN_SERVER_ERROR)
and refuses records whose offset deltas skip (Kafka stores them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from support.corrupt_batches import corrupt_cases
from support.interop import Target
from support.raw_client import RawClient, create_topic, high_watermark, produce

pytestmark = pytest.mark.interop


@pytest.fixture
def raw(target: Target) -> Iterator[RawClient]:
    with RawClient(target.bootstrap) as client:
        yield client


def test_every_corrupt_batch_gets_kafkas_error(raw: RawClient, target: Target) -> None:
    topics = {"plain": f"hostile-plain-{target.name}",
              "compacted": f"hostile-compacted-{target.name}"}
    create_topic(raw, topics["plain"])
    create_topic(raw, topics["compacted"], configs={"cleanup.policy": "compact"})
    wrong = []
    for case in corrupt_cases():
        expected = case.kafka if target.name == "kafka" and case.kafka else case.errors
        topic = topics[case.topic_config]
        before = high_watermark(raw, topic)
        entry = produce(raw, topic, case.payload)
        answer = ErrorCode(entry.error_code).name
        moved = answer != "none" and high_watermark(raw, topic) != before
        if answer not in expected or moved:
            wrong.append(f"{case.name}: {answer} (expected one of {sorted(expected)}; "
                         f"high watermark {before} -> {high_watermark(raw, topic)})")
    assert not wrong, f"{target.name}:\n" + "\n".join(wrong)

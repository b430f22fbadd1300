"""ElectLeaders and AlterPartitionReassignments through a real broker: the handlers
translate the request and the answers that `strom.cluster` decides (the decisions
themselves are unit-tested in tests/unit/cluster/test_requested_elections.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from strom.protocol.api_keys import ApiKey
from support.broker_process import BrokerProcess
from support.raw_client import RawClient, create_topic

PREFERRED, UNCLEAN = 0, 1


@pytest.fixture
def raw(broker: BrokerProcess) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap) as client:
        yield client


def _elect(raw: RawClient, kind: int, topic: str, partitions: list[int]) -> dict[int, ErrorCode]:
    body = raw.request(ApiKey.ELECT_LEADERS, 2, election_type=kind,
                       topic_partitions=[{"topic": topic, "partitions": partitions}]).body
    assert body.error_code == ErrorCode.none
    [result] = body.replica_election_results
    return {int(p.partition_id): p.error_code for p in result.partition_result}


@pytest.mark.parametrize("kind", [PREFERRED, UNCLEAN])
def test_an_election_where_the_preferred_leader_leads_is_not_needed(raw: RawClient,
                                                                     kind: int) -> None:
    name = f"elect-{kind}"
    assert create_topic(raw, name, partitions=2).error_code == ErrorCode.none
    assert _elect(raw, kind, name, [0, 1, 5]) == {
        0: ErrorCode.election_not_needed, 1: ErrorCode.election_not_needed,
        5: ErrorCode.unknown_topic_or_partition}
    assert _elect(raw, kind, "elect-no-such-topic", [0]) == {
        0: ErrorCode.unknown_topic_or_partition}


def test_an_unknown_election_type_is_an_invalid_request(raw: RawClient) -> None:
    body = raw.request(ApiKey.ELECT_LEADERS, 2, election_type=7,
                       topic_partitions=None).body
    assert body.error_code == ErrorCode.invalid_request


def test_reassignments_are_validated_and_listed(raw: RawClient) -> None:
    name = "reassign-me"
    assert create_topic(raw, name, partitions=1).error_code == ErrorCode.none

    def alter(replicas: list[int] | None, index: int = 0) -> tuple[ErrorCode, str | None]:
        body = raw.request(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, topics=[
            {"name": name, "partitions": [{"partition_index": index, "replicas": replicas}]}],
        ).body
        [part] = body.responses[0].partitions
        return part.error_code, part.error_message

    assert alter([0]) == (ErrorCode.none, None)  # already the assignment: nothing to move
    error, message = alter([0, 42])
    assert error == ErrorCode.invalid_replica_assignment and message
    assert alter(None)[0] == ErrorCode.no_reassignment_in_progress
    assert alter([0], index=3) == (ErrorCode.unknown_topic_or_partition, None)
    listed = raw.request(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0,
                         topics=None).body
    assert listed.error_code == ErrorCode.none and list(listed.topics) == []

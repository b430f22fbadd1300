"""Share group APIs under the authorizer (`strom.broker.security.api_authorization`), as
Kafka 4.4's KafkaApis checks them: Read on the group, then Read on each topic fetched,
acknowledged or altered; Delete on the group to delete offsets; Describe on groups and
topics to describe offsets. A recording handler shows what reaches it."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.security.api_authorization import handle
from strom.cluster.acls import Ace, AclTable, Resource
from strom.cluster.image import MetadataImage, PartitionInfo, TopicInfo
from strom.protocol.api_keys import ApiKey
from support.handler_context import broker_config, call, context, request

ON = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}
MINE, THEIRS = uuid.uuid4(), uuid.uuid4()
TOPIC_DENIED, GROUP_DENIED = ErrorCode.topic_authorization_failed, ErrorCode.group_authorization_failed


class Metadata:
    def __init__(self, acls: AclTable) -> None:
        topics = {name: TopicInfo(name, tid, {0: PartitionInfo(0, 1, 0, (1,), (1,))})
                  for name, tid in (("mine", MINE), ("theirs", THEIRS))}
        self._image = MetadataImage("c", 1, {}, topics, acls=acls)

    def image(self) -> MetadataImage:
        return self._image


def _ctx(api_key: int, version: int, acls: AclTable) -> RequestContext:
    ctx = context(api_key, version, config=broker_config(**ON), metadata=Metadata(acls))
    return dataclasses.replace(ctx, principal="User:alice")


def _allow(*grants: tuple[str, str, str]) -> AclTable:
    table: dict[Resource, set[Ace]] = {}
    for resource_type, name, operation in grants:
        table.setdefault(Resource(resource_type, "LITERAL", name), set()).add(
            Ace("User:alice", "*", operation, "Allow"))
    return {r: frozenset(aces) for r, aces in table.items()}


class Recorder:
    def __init__(self, answer: Any) -> None:
        self.seen: list[Any] = []
        self.answer = answer

    async def __call__(self, ctx: RequestContext, body: Any) -> Any:
        self.seen.append(body)
        return self.answer(ctx, body)


def _fetch_body(api_key: int) -> Any:
    acks = [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [1]}]
    topics = [{"topic_id": t, "partitions": [{"partition_index": 0,
                                              "acknowledgement_batches": acks}]}
              for t in (MINE, THEIRS)]
    if api_key == ApiKey.SHARE_FETCH:
        return request(api_key, 1, group_id="g", member_id="m", share_session_epoch=1,
                       max_wait=0, min_bytes=1, max_bytes=1024, max_records=10,
                       batch_size=10, topics=topics, forgotten_topics_data=[])
    return request(api_key, 1, group_id="g", member_id="m", share_session_epoch=1,
                   topics=topics)


def _echo_partitions(ctx: RequestContext, body: Any) -> Any:
    return ctx.respond(throttle_time=0, error_code=ErrorCode.none, responses=[
        {"topic_id": t.topic_id, "partitions": [
            {"partition_index": p.partition_index, "error_code": ErrorCode.none,
             "current_leader": {"leader_id": 1, "leader_epoch": 0}, "records": b"",
             "acquired_records": []} for p in t.partitions]} for t in body.topics])


def _answered(answer: Any) -> dict[uuid.UUID, tuple[int, int]]:
    return {t.topic_id: (t.partitions[0].error_code,
                         getattr(t.partitions[0], "acknowledge_error_code", 0))
            for t in answer.responses}


def test_share_fetch_and_acknowledge_need_read_on_each_topic() -> None:
    for api_key in (ApiKey.SHARE_FETCH, ApiKey.SHARE_ACKNOWLEDGE):
        handler = Recorder(_echo_partitions)
        ctx = _ctx(api_key, 1, _allow(("Group", "g", "Read"), ("Topic", "mine", "Read")))
        answer = call(lambda c, b, h=handler: handle(c, h, b), ctx, _fetch_body(api_key))
        assert [t.topic_id for t in handler.seen[0].topics] == [MINE]
        answered = _answered(answer)
        assert answered[MINE][0] == ErrorCode.none
        assert answered[THEIRS][0] == TOPIC_DENIED
        if api_key == ApiKey.SHARE_FETCH:  # its acknowledgements refused the same way
            assert answered[THEIRS][1] == TOPIC_DENIED


def test_share_fetch_runs_its_session_even_when_every_topic_is_refused() -> None:
    """The handler still runs (with no topics): the session's epoch moves on, as Kafka's
    share session does for a request whose topics are all unauthorized."""
    handler = Recorder(_echo_partitions)
    ctx = _ctx(ApiKey.SHARE_FETCH, 1, _allow(("Group", "g", "Read")))
    answer = call(lambda c, b: handle(c, handler, b), ctx, _fetch_body(ApiKey.SHARE_FETCH))
    assert len(handler.seen) == 1 and handler.seen[0].topics == ()
    assert {e for e, _ in _answered(answer).values()} == {TOPIC_DENIED}


def test_share_fetch_without_read_on_the_group_is_refused_whole() -> None:
    handler = Recorder(_echo_partitions)
    ctx = _ctx(ApiKey.SHARE_FETCH, 1, _allow(("Topic", "mine", "Read")))
    answer = call(lambda c, b: handle(c, handler, b), ctx, _fetch_body(ApiKey.SHARE_FETCH))
    assert handler.seen == [] and answer.error_code == GROUP_DENIED


def _describe_answer(ctx: RequestContext, body: Any) -> Any:
    return ctx.respond(throttle_time=0, groups=[
        {"group_id": g.group_id, "error_code": ErrorCode.none, "topics": [
            {"topic_name": name, "topic_id": None, "partitions": [
                {"partition_index": 0, "start_offset": 5, "leader_epoch": 0, "lag": 0,
                 "error_code": ErrorCode.none}]}
            for name in ([t.topic_name for t in g.topics] if g.topics is not None
                         else ["mine", "theirs"])]}
        for g in body.groups])


def test_describe_share_group_offsets_per_group_and_topic() -> None:
    body = request(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, groups=[
        {"group_id": "g", "topics": [{"topic_name": "mine", "partitions": [0]},
                                     {"topic_name": "theirs", "partitions": [0]}]},
        {"group_id": "all", "topics": None},
        {"group_id": "other", "topics": None}])
    handler = Recorder(_describe_answer)
    ctx = _ctx(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, _allow(
        ("Group", "g", "Describe"), ("Group", "all", "Describe"), ("Topic", "mine", "Describe")))
    answer = call(lambda c, b: handle(c, handler, b), ctx, body)
    assert [g.group_id for g in handler.seen[0].groups] == ["g", "all"]
    assert [t.topic_name for t in handler.seen[0].groups[0].topics] == ["mine"]
    groups = {g.group_id: g for g in answer.groups}
    assert groups["other"].error_code == GROUP_DENIED
    assert {t.topic_name: t.partitions[0].error_code for t in groups["g"].topics} == {
        "mine": ErrorCode.none, "theirs": TOPIC_DENIED}
    assert [t.topic_name for t in groups["all"].topics] == ["mine"]  # listing: Describe only


def test_alter_and_delete_share_group_offsets() -> None:
    alter = request(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, group_id="g", topics=[
        {"topic_name": n, "partitions": [{"partition_index": 0, "start_offset": 0}]}
        for n in ("mine", "theirs")])
    handler = Recorder(lambda ctx, b: ctx.respond(throttle_time=0, error_code=0, responses=[
        {"topic_name": t.topic_name, "topic_id": None,
         "partitions": [{"partition_index": 0, "error_code": 0}]} for t in b.topics]))
    ctx = _ctx(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0,
               _allow(("Group", "g", "Read"), ("Topic", "mine", "Read")))
    answer = call(lambda c, b: handle(c, handler, b), ctx, alter)
    assert {t.topic_name: t.partitions[0].error_code for t in answer.responses} == {
        "mine": ErrorCode.none, "theirs": TOPIC_DENIED}
    delete = request(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, group_id="g",
                     topics=[{"topic_name": "mine"}, {"topic_name": "theirs"}])
    deleter = Recorder(lambda ctx, b: ctx.respond(throttle_time=0, error_code=0, responses=[
        {"topic_name": t.topic_name, "topic_id": None, "error_code": 0} for t in b.topics]))
    read_only = _ctx(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0,
                     _allow(("Group", "g", "Read"), ("Topic", "mine", "Read")))
    refused = call(lambda c, b: handle(c, deleter, b), read_only, delete)
    assert deleter.seen == [] and refused.error_code == GROUP_DENIED  # Delete, not Read
    allowed = _ctx(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0,
                   _allow(("Group", "g", "Delete"), ("Topic", "mine", "Read")))
    answer = call(lambda c, b: handle(c, deleter, b), allowed, delete)
    assert {t.topic_name: t.error_code for t in answer.responses} == {
        "mine": ErrorCode.none, "theirs": TOPIC_DENIED}

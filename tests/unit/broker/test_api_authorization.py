"""The per-API authorization table (`strom.broker.security.api_authorization`) around a
recording handler: what reaches the handler, and what refused items are answered with,
as Kafka 4.4's request handlers answer them."""

from __future__ import annotations

import dataclasses
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.security.api_authorization import handle
from strom.cluster.acls import Ace, AclTable, Resource
from strom.cluster.image import MetadataImage
from strom.protocol.api_keys import ApiKey
from support.handler_context import broker_config, call, context, request

ON = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}


class Metadata:
    def __init__(self, acls: AclTable) -> None:
        self._image = MetadataImage("c", 1, {}, {}, acls=acls)

    def image(self) -> MetadataImage:
        return self._image


def _ctx(api_key: int, version: int, acls: AclTable, *, on: bool = True) -> RequestContext:
    ctx = context(api_key, version, config=broker_config(**(ON if on else {})),
                  metadata=Metadata(acls))
    return dataclasses.replace(ctx, principal="User:alice")


def _allow(resource_type: str, name: str, *operations: str,
           pattern: str = "LITERAL") -> AclTable:
    return {Resource(resource_type, pattern, name):
            frozenset(Ace("User:alice", "*", op, "Allow") for op in operations)}


class Recorder:
    """A handler that keeps what it was given and answers `answer(ctx, request)`."""

    def __init__(self, answer: Any = None) -> None:
        self.seen: list[Any] = []
        self.answer = answer or (lambda ctx, _r: ctx.respond(throttle_time=0))

    async def __call__(self, ctx: RequestContext, body: Any) -> Any:
        self.seen.append(body)
        return self.answer(ctx, body)


def test_without_an_authorizer_the_handler_sees_the_request_as_is() -> None:
    body = request(ApiKey.DELETE_TOPICS, 6, topics=[{"name": "a"}], timeout=1000)
    handler = Recorder()
    call(lambda c, b: handle(c, handler, b), _ctx(ApiKey.DELETE_TOPICS, 6, {}, on=False), body)
    assert handler.seen == [body]


def test_delete_topics_passes_the_allowed_and_answers_the_refused() -> None:
    body = request(ApiKey.DELETE_TOPICS, 6, topics=[{"name": "mine"}, {"name": "theirs"}],
                   timeout=1000)
    handler = Recorder(lambda ctx, r: ctx.respond(throttle_time=0, responses=[
        {"name": t.name, "error_code": ErrorCode.none} for t in r.topics]))
    ctx = _ctx(ApiKey.DELETE_TOPICS, 6, _allow("Topic", "mine", "Delete"))
    answer = call(lambda c, b: handle(c, handler, b), ctx, body)
    assert [t.name for t in handler.seen[0].topics] == ["mine"]
    assert [(r.name, r.error_code) for r in answer.responses] == [
        ("mine", ErrorCode.none), ("theirs", ErrorCode.topic_authorization_failed)]


def test_describe_configs_needs_the_cluster_for_brokers_and_alter_implies_describe() -> None:
    body = request(ApiKey.DESCRIBE_CONFIGS, 4, resources=[
        {"resource_type": 2, "resource_name": "t", "configuration_keys": None},
        {"resource_type": 4, "resource_name": "1", "configuration_keys": None}])
    handler = Recorder(lambda ctx, r: ctx.respond(throttle_time=0, results=[
        {"resource_type": x.resource_type, "resource_name": x.resource_name,
         "error_code": ErrorCode.none, "configs": []} for x in r.resources]))
    ctx = _ctx(ApiKey.DESCRIBE_CONFIGS, 4, _allow("Topic", "t", "AlterConfigs"))
    answer = call(lambda c, b: handle(c, handler, b), ctx, body)
    assert [(r.resource_name, r.error_code) for r in answer.results] == [
        ("t", ErrorCode.none), ("1", ErrorCode.cluster_authorization_failed)]


def test_init_producer_id_idempotent_and_transactional() -> None:
    def ask(acls: AclTable, txn: str | None) -> Any:
        body = request(ApiKey.INIT_PRODUCER_ID, 5, transactional_id=txn,
                       transaction_timeout=60000, producer_id=-1, producer_epoch=-1)
        return call(lambda c, b: handle(c, Recorder(), b),
                    _ctx(ApiKey.INIT_PRODUCER_ID, 5, acls), body).error_code

    write_some = _allow("Topic", "orders-", "Write", pattern="PREFIXED")
    assert ask(write_some, None) == ErrorCode.none
    assert ask(_allow("Cluster", "kafka-cluster", "IdempotentWrite"), None) == ErrorCode.none
    assert ask({}, None) == ErrorCode.cluster_authorization_failed
    assert ask(write_some, "tx") == ErrorCode.transactional_id_authorization_failed
    assert ask(_allow("TransactionalId", "tx", "Write"), "tx") == ErrorCode.none


def test_group_protocol_and_find_coordinator_need_the_group() -> None:
    handler = Recorder()
    join = request(ApiKey.JOIN_GROUP, 9, group_id="g", session_timeout=10000,
                   rebalance_timeout=10000, member_id="", protocol_type="consumer",
                   protocols=[])
    answer = call(lambda c, b: handle(c, handler, b), _ctx(ApiKey.JOIN_GROUP, 9, {}), join)
    assert (answer.error_code, answer.generation_id, handler.seen) == (
        ErrorCode.group_authorization_failed, -1, [])
    find = request(ApiKey.FIND_COORDINATOR, 6, key_type=0, coordinator_keys=["mine", "other"])
    handler = Recorder(lambda ctx, r: ctx.respond(throttle_time=0, coordinators=[
        {"key": k, "node_id": 1, "host": "h", "port": 1} for k in r.coordinator_keys]))
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.FIND_COORDINATOR, 6, _allow("Group", "mine", "Read")), find)
    assert [(c.key, c.error_code) for c in answer.coordinators] == [
        ("mine", ErrorCode.none), ("other", ErrorCode.group_authorization_failed)]


def test_list_groups_lists_what_may_be_described() -> None:
    handler = Recorder(lambda ctx, _r: ctx.respond(throttle_time=0, groups=[
        {"group_id": "mine", "protocol_type": "consumer"},
        {"group_id": "other", "protocol_type": "consumer"}]))
    body = request(ApiKey.LIST_GROUPS, 5)
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.LIST_GROUPS, 5, _allow("Group", "mine", "Describe")), body)
    assert [g.group_id for g in answer.groups] == ["mine"]
    everything = _allow("Cluster", "kafka-cluster", "Describe")
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.LIST_GROUPS, 5, everything), body)
    assert [g.group_id for g in answer.groups] == ["mine", "other"]


def test_add_partitions_to_txn_v3_fails_whole_when_a_topic_is_refused() -> None:
    body = request(ApiKey.ADD_PARTITIONS_TO_TXN, 3, v3_and_below_transactional_id="tx",
                   v3_and_below_producer_id=1, v3_and_below_producer_epoch=0,
                   v3_and_below_topics=[{"name": "ok", "partitions": [0]},
                                        {"name": "no", "partitions": [0, 1]}])
    acls = {**_allow("TransactionalId", "tx", "Write"), **_allow("Topic", "ok", "Write")}
    handler = Recorder()
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.ADD_PARTITIONS_TO_TXN, 3, acls), body)
    assert handler.seen == []
    assert {(t.name, p.partition_index, p.partition_error_code)
            for t in answer.results_by_topic_v3_and_below for p in t.results_by_partition} == {
        ("ok", 0, ErrorCode.operation_not_attempted),
        ("no", 0, ErrorCode.topic_authorization_failed),
        ("no", 1, ErrorCode.topic_authorization_failed)}


def test_write_txn_markers_need_cluster_action() -> None:
    body = request(ApiKey.WRITE_TXN_MARKERS, 1, markers=[{
        "producer_id": 5, "producer_epoch": 0, "transaction_result": True,
        "topics": [{"name": "t", "partition_indexes": [0, 1]}], "coordinator_epoch": 0}])
    answer = call(lambda c, b: handle(c, Recorder(), b),
                  _ctx(ApiKey.WRITE_TXN_MARKERS, 1, {}), body)
    assert [p.error_code for m in answer.markers for t in m.topics for p in t.partitions] == \
        [ErrorCode.cluster_authorization_failed] * 2


def test_produce_refusals_and_acks_zero() -> None:
    def produce(acks: int) -> tuple[Any, Recorder]:
        body = request(ApiKey.PRODUCE, 9, acks=acks, timeout=1000, topic_data=[
            {"name": "mine", "partition_data": [{"index": 0, "records": None}]},
            {"name": "theirs", "partition_data": [{"index": 2, "records": None}]}])
        handler = Recorder(lambda ctx, r: None if acks == 0 else ctx.respond(responses=[
            {"name": t.name, "partition_responses": [{"index": 0}]} for t in r.topic_data]))
        answer = call(lambda c, b: handle(c, handler, b),
                      _ctx(ApiKey.PRODUCE, 9, _allow("Topic", "mine", "Write")), body)
        return answer, handler

    answer, handler = produce(1)
    assert [t.name for t in handler.seen[0].topic_data] == ["mine"]
    assert [(t.name, [(p.index, p.error_code, p.base_offset) for p in t.partition_responses])
            for t in answer.responses] == [
        ("mine", [(0, ErrorCode.none, 0)]),
        ("theirs", [(2, ErrorCode.topic_authorization_failed, -1)])]
    answer, handler = produce(0)
    assert answer is None and [t.name for t in handler.seen[0].topic_data] == ["mine"]


def test_offset_for_leader_epoch_replica_needs_cluster_action() -> None:
    body = request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, replica_id=2, topics=[
        {"topic": "t", "partitions": [{"partition": 0, "current_leader_epoch": 0,
                                       "leader_epoch": 0}]}])
    handler = Recorder()
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, _allow("Topic", "t", "All")), body)
    assert handler.seen == []
    assert [(t.topic, p.error_code, p.end_offset) for t in answer.topics
            for p in t.partitions] == [("t", ErrorCode.topic_authorization_failed, -1)]


def test_describe_transactions_per_id() -> None:
    body = request(ApiKey.DESCRIBE_TRANSACTIONS, 0, transactional_ids=["mine", "other"])
    handler = Recorder(lambda ctx, r: ctx.respond(throttle_time=0, transaction_states=[
        {"transactional_id": t, "transaction_state": "Empty"} for t in r.transactional_ids]))
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.DESCRIBE_TRANSACTIONS, 0,
                       _allow("TransactionalId", "mine", "Describe")), body)
    assert [(t.transactional_id, t.error_code) for t in answer.transaction_states] == [
        ("mine", ErrorCode.none), ("other", ErrorCode.transactional_id_authorization_failed)]


def test_alter_scram_credentials_answers_every_user() -> None:
    body = request(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, deletions=[
        {"name": "a", "mechanism": 1}], upsertions=[])
    handler = Recorder()
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, {}), body)
    assert handler.seen == []
    assert [(r.user, r.error_code) for r in answer.results] == [
        ("a", ErrorCode.cluster_authorization_failed)]


def test_group_configs_need_the_group() -> None:
    body = request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, validate_only=False, resources=[
        {"resource_type": 32, "resource_name": "g", "configs": []}])
    handler = Recorder()
    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, _allow("Group", "g", "Read")), body)
    assert handler.seen == []
    assert [(r.resource_name, r.error_code) for r in answer.responses] == [
        ("g", ErrorCode.group_authorization_failed)]


def test_the_consumer_group_protocol_needs_the_group() -> None:
    beat = request(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, group_id="g", member_id="m",
                   member_epoch=0, rebalance_timeout=1000, topic_partitions=[])
    answer = call(lambda c, b: handle(c, Recorder(), b),
                  _ctx(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {}), beat)
    assert (answer.error_code, answer.member_epoch) == (ErrorCode.group_authorization_failed, -1)
    body = request(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, group_ids=["g"])
    answer = call(lambda c, b: handle(c, Recorder(), b),
                  _ctx(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {}), body)
    assert [(g.group_id, g.error_code) for g in answer.groups] == [
        ("g", ErrorCode.group_authorization_failed)]

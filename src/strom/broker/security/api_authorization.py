"""Which operation on which resource each API needs, in one table: Kafka's authorization
of requests, applied around the handlers.

`handle` is the one entry point (the connection calls it instead of the handler). With
no authorizer it is the handler itself. Otherwise the API's entry in `CHECKS` decides,
as Kafka 4.4's request handlers do:

- a request-wide check answers the whole request with the API's error
  (GROUP_/TRANSACTIONAL_ID_/CLUSTER_AUTHORIZATION_FAILED) without calling the handler;
- a per-item check (topics of Produce, Fetch, ListOffsets, OffsetCommit, CreateTopics,
  ...; groups of DescribeGroups; configs resources) passes the authorized items to the
  handler and answers the others with TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED beside
  its answer;
- listings (Metadata for all topics, ListGroups, OffsetFetch for all topics) drop what
  the principal may not Describe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial import entity_reader

from strom.broker.context import RequestContext
from strom.broker.security.authorizer import Authorizer, for_request, host_of
from strom.cluster.acls import CLUSTER_NAME, CODE
from strom.protocol.api_keys import ApiKey
from strom.protocol.framing import EncodedBody
from strom.protocol.metadata_response import AUTHORIZED_OPERATIONS_UNKNOWN
from strom.protocol.schema import build

Handler = Callable[[RequestContext, Any], Awaitable[Any]]
TOPIC_DENIED = ErrorCode.topic_authorization_failed
GROUP_DENIED = ErrorCode.group_authorization_failed
CLUSTER_DENIED = ErrorCode.cluster_authorization_failed
TXN_DENIED = ErrorCode.transactional_id_authorization_failed


@dataclass(frozen=True)
class Check:
    """One request under one authorizer: `allowed(op, type, name)` for this principal."""

    ctx: RequestContext
    authorizer: Authorizer
    handler: Handler

    def allowed(self, operation: str, resource_type: str, name: str) -> bool:
        return self.authorizer.authorize(self.ctx.principal, host_of(self.ctx.peer),
                                         operation, resource_type, name)

    def cluster(self, operation: str) -> bool:
        return self.allowed(operation, "Cluster", CLUSTER_NAME)

    def topic_name(self, item: Any) -> str | None:
        """A request topic's name, from its name or (newer versions) its id."""
        name = getattr(item, "name", None) or getattr(item, "topic", None)
        if isinstance(name, str) and name:
            return name
        topic_id = getattr(item, "topic_id", None)
        topic = None if topic_id is None else self.ctx.metadata.image().topic_by_id(topic_id)
        return None if topic is None else topic.name


Rule = Callable[[Check, Any], Awaitable[Any]]

OPERATIONS: ContextVar[Callable[[str, str], int] | None] = ContextVar("operations",
                                                                      default=None)
"""While a Metadata request that asks for authorized operations (KIP-430) is answered:
the bit field for ("Topic" or "Cluster", name)."""
LISTED: ContextVar[Callable[[str], bool] | None] = ContextVar("listed", default=None)
"""While a Metadata request for every topic is answered under an authorizer: whether a
topic may be listed (Describe). The Metadata handler writes its answer as bytes, so it
asks this rather than being filtered afterwards."""


async def handle(ctx: RequestContext, handler: Handler, request: Any) -> Any:
    """Answer `request`: through the handler, as far as the principal may; with the
    authorized operations (KIP-430) where the client asks for them."""
    rule = CHECKS.get(ctx.api_key)
    report = REPORTS.get(ctx.api_key)
    if rule is None and report is None:
        return await handler(ctx, request)
    authorizer = for_request(ctx)
    token = _report_metadata_operations(ctx, authorizer, request)
    try:
        if authorizer is None or rule is None:
            response = await handler(ctx, request)
        else:
            response = await rule(Check(ctx, authorizer, handler), request)
    finally:
        if token is not None:
            OPERATIONS.reset(token)
    return response if report is None else report(ctx, authorizer, request, response)


def _report_metadata_operations(ctx: RequestContext, authorizer: Authorizer | None,
                                request: Any) -> Token[Any] | None:
    """Metadata writes its answer as bytes: the operations it is to report are handed
    to it through OPERATIONS, for the resource types the request asks about."""
    if ctx.api_key != ApiKey.METADATA:
        return None
    asked = {"Topic": bool(getattr(request, "include_topic_authorized_operations", False)),
             "Cluster": bool(getattr(request, "include_cluster_authorized_operations", False))}
    if not any(asked.values()):
        return None

    def ops(resource_type: str, name: str) -> int:
        if not asked[resource_type]:
            return AUTHORIZED_OPERATIONS_UNKNOWN
        return authorized_operations(ctx, authorizer, resource_type, name)

    return OPERATIONS.set(ops)


# --- authorized operations (KIP-430) ---------------------------------------------------

SUPPORTED = {
    "Topic": ("Read", "Write", "Create", "Describe", "Delete", "Alter", "DescribeConfigs",
              "AlterConfigs"),
    "Group": ("Read", "Describe", "Delete", "DescribeConfigs", "AlterConfigs"),
    "Cluster": ("Create", "ClusterAction", "DescribeConfigs", "AlterConfigs",
                "IdempotentWrite", "Alter", "Describe"),
}
"""The operations each resource type reports (Kafka's AclEntry.supportedOperations)."""


def authorized_operations(ctx: RequestContext, authorizer: Authorizer | None,
                          resource_type: str, name: str) -> int:
    """Kafka's bit field (1 << operation code) of what the principal may do; without an
    authorizer every supported operation."""
    ops = SUPPORTED[resource_type]
    if authorizer is not None:
        host = host_of(ctx.peer)
        ops = tuple(op for op in ops
                    if authorizer.authorize(ctx.principal, host, op, resource_type, name))
    return sum(1 << CODE[op] for op in ops)


Report = Callable[[RequestContext, Authorizer | None, Any, Any], Any]


def _cluster_operations(ctx: RequestContext, authorizer: Authorizer | None, request: Any,
                        response: Any) -> Any:
    if not getattr(request, "include_cluster_authorized_operations", False) or \
            response.error_code != ErrorCode.none:
        return response
    return dataclasses.replace(response, cluster_authorized_operations=authorized_operations(
        ctx, authorizer, "Cluster", CLUSTER_NAME))


def _group_operations(ctx: RequestContext, authorizer: Authorizer | None, request: Any,
                      response: Any) -> Any:
    if not getattr(request, "include_authorized_operations", False):
        return response
    groups = tuple(g if g.error_code == GROUP_DENIED else dataclasses.replace(
        g, authorized_operations=authorized_operations(ctx, authorizer, "Group", g.group_id))
        for g in response.groups)
    return dataclasses.replace(response, groups=groups)


def _no_report(_ctx: RequestContext, _authorizer: Authorizer | None, _request: Any,
               response: Any) -> Any:
    return response  # Metadata: reported through OPERATIONS while it answers


REPORTS: dict[int, Report] = {
    ApiKey.METADATA: _no_report,
    ApiKey.DESCRIBE_CLUSTER: _cluster_operations,
    ApiKey.DESCRIBE_GROUPS: _group_operations,
}


# --- building blocks ------------------------------------------------------------------


def requires(operation: str, resource_type: str, name_of: Callable[[Any], str | None],
             error: ErrorCode, **refused: Any) -> Rule:
    """A request-wide check; refused, the answer is the response with `error` as its
    top-level error code, the `refused` fields, and every other field zero."""

    async def rule(check: Check, request: Any) -> Any:
        name = name_of(request)
        allowed = (check.cluster(operation) if resource_type == "Cluster"
                   else name is None or check.allowed(operation, resource_type, name))
        if not allowed:
            return check.ctx.respond(throttle_time=0, error_code=error, **refused)
        return await check.handler(check.ctx, request)

    return rule


@dataclass(frozen=True)
class Items:
    """Where a per-item API keeps its items in the request and its answers in the
    response, and what a refused item's answer looks like."""

    request_field: str
    response_field: str
    entry_class: str
    denied_entry: Callable[[Check, Any, ErrorCode], dict[str, Any]]


async def split(check: Check, request: Any, items: Items,
                verdict: Callable[[Any], ErrorCode | None], *, always: bool = False) -> Any:
    """Pass the allowed items to the handler; answer the refused ones beside it. With
    `always` the handler answers even when every item is refused (Metadata: its brokers
    and cluster id are needed whatever the topics)."""
    allowed, refused = [], []
    for item in getattr(request, items.request_field) or ():
        error = verdict(item)
        if error is None:
            allowed.append(item)
        else:
            refused.append((item, error))
    if not refused:
        return await check.handler(check.ctx, request)
    if allowed or always:
        response = await check.handler(
            check.ctx, dataclasses.replace(request, **{items.request_field: tuple(allowed)}))
        if response is None:  # acks=0
            return None
        response = _entity(check.ctx, response)
    else:
        response = check.ctx.respond(throttle_time=0)
    entry = check.ctx.response_class(items.entry_class)
    extra = tuple(build(entry, items.denied_entry(check, item, error)) for item, error in refused)
    return dataclasses.replace(
        response, **{items.response_field: tuple(getattr(response, items.response_field)) + extra})


def _entity(ctx: RequestContext, response: Any) -> Any:
    """A response as an entity: one a hot path (Fetch) wrote as bytes is read back (only
    when some of its topics were refused, so rarely)."""
    if not isinstance(response, EncodedBody):
        return response
    data = b"".join(bytes(part) for part in response.parts)
    entity: Any
    entity, _ = entity_reader(ctx.response_type())(data, 0)
    return entity


def partitions_entry(partitions_field: str, index_field: str, out_partitions: str,
                     out_index: str, **extra: Any) -> Callable[[Check, Any, ErrorCode],
                                                                dict[str, Any]]:
    """A refused topic's answer: every partition it asked for, with the error."""

    def entry(check: Check, item: Any, error: ErrorCode) -> dict[str, Any]:
        partitions = [{out_index: getattr(p, index_field), "error_code": error,
                       "partition_error_code": error, **extra}
                      for p in getattr(item, partitions_field)]
        return {"name": getattr(item, "name", None), "topic_id": getattr(item, "topic_id", None),
                out_partitions: partitions}

    return entry


def topic_verdict(check: Check, operation: str) -> Callable[[Any], ErrorCode | None]:
    def verdict(item: Any) -> ErrorCode | None:
        name = check.topic_name(item)
        if name is None or check.allowed(operation, "Topic", name):
            return None  # an unknown topic id: the handler's UNKNOWN_TOPIC_ID
        return TOPIC_DENIED

    return verdict


# --- the APIs -------------------------------------------------------------------------

_PRODUCE = Items("topic_data", "responses", "TopicProduceResponse",
                 partitions_entry("partition_data", "index", "partition_responses", "index",
                                  base_offset=-1, log_append_time=-1, log_start_offset=-1))


async def _produce(check: Check, request: Any) -> Any:
    """Write on the transactional id (a transactional produce), Write on each topic;
    acks=0 is never answered, refusals included (as the handler does with its errors)."""
    txn = getattr(request, "transactional_id", None)
    if txn is not None and not check.allowed("Write", "TransactionalId", txn):
        answer = await split(check, request, _PRODUCE, lambda _item: TXN_DENIED)
    else:
        answer = await split(check, request, _PRODUCE, topic_verdict(check, "Write"))
    return None if int(request.acks) == 0 else answer


_FETCH = Items("topics", "responses", "FetchableTopicResponse",
               partitions_entry("partitions", "partition", "partitions", "partition_index",
                                high_watermark=-1, last_stable_offset=-1,
                                log_start_offset=-1, preferred_read_replica=-1,
                                records=b""))  # empty, not null: clients read its size


async def _fetch(check: Check, request: Any) -> Any:
    """ClusterAction for a replica's fetch, Read on each topic for a consumer's."""
    state = getattr(request, "replica_state", None)
    replica = getattr(state, "replica_id", None) if state is not None \
        else getattr(request, "replica_id", -1)
    if replica is not None and replica >= 0:
        if check.cluster("ClusterAction"):
            return await check.handler(check.ctx, request)
        return await split(check, request, _FETCH, lambda _item: TOPIC_DENIED)
    return await split(check, request, _FETCH, topic_verdict(check, "Read"))


_LIST_OFFSETS = Items("topics", "topics", "ListOffsetsTopicResponse",
                      partitions_entry("partitions", "partition_index", "partitions",
                                       "partition_index", timestamp=-1, offset=-1,
                                       leader_epoch=-1))


async def _list_offsets(check: Check, request: Any) -> Any:
    return await split(check, request, _LIST_OFFSETS, topic_verdict(check, "Describe"))


def _commit_items(entry_class: str) -> Items:
    return Items("topics", "topics", entry_class,
                 partitions_entry("partitions", "partition_index", "partitions",
                                  "partition_index"))


async def _offset_commit(check: Check, request: Any) -> Any:
    """Read on the group (else every partition GROUP_AUTHORIZATION_FAILED) and on each
    topic."""
    items = _commit_items("OffsetCommitResponseTopic")
    if not check.allowed("Read", "Group", request.group_id):
        return await split(check, request, items, lambda _item: GROUP_DENIED)
    return await split(check, request, items, topic_verdict(check, "Read"))


async def _txn_offset_commit(check: Check, request: Any) -> Any:
    """Write on the transactional id, Read on the group and on each topic."""
    items = _commit_items("TxnOffsetCommitResponseTopic")
    if not check.allowed("Write", "TransactionalId", request.transactional_id):
        return await split(check, request, items, lambda _item: TXN_DENIED)
    if not check.allowed("Read", "Group", request.group_id):
        return await split(check, request, items, lambda _item: GROUP_DENIED)
    return await split(check, request, items, topic_verdict(check, "Read"))


async def _metadata(check: Check, request: Any) -> Any:
    """Requested topics need Describe (and, to be auto-created, Create on the cluster or
    the topic); an all-topics answer lists only those the principal may Describe."""
    if request.topics is None or (check.ctx.api_version == 0 and not request.topics):
        token = LISTED.set(lambda name: check.allowed("Describe", "Topic", name))
        try:
            return await check.handler(check.ctx, request)
        finally:
            LISTED.reset(token)
    image = check.ctx.metadata.image()
    creating = bool(getattr(request, "allow_auto_topic_creation", False)) and \
        check.ctx.config.get_bool("auto.create.topics.enable")

    def verdict(item: Any) -> ErrorCode | None:
        name = check.topic_name(item)
        if name is None:
            return None
        if not check.allowed("Describe", "Topic", name):
            return TOPIC_DENIED
        if creating and name not in image.topics and not (
                check.cluster("Create") or check.allowed("Create", "Topic", name)):
            return TOPIC_DENIED
        return None

    items = Items("topics", "topics", "MetadataResponseTopic",
                  lambda _c, item, error: {"name": item.name, "error_code": error,
                                           "topic_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN})
    token = LISTED.set(lambda _name: False)  # v0 reads no topics as all topics: none
    try:
        return await split(check, request, items, verdict, always=True)
    finally:
        LISTED.reset(token)


async def _offset_fetch(check: Check, request: Any) -> Any:
    """Describe on each group, and on the topics: ones asked for by name are refused
    with TOPIC_AUTHORIZATION_FAILED, an all-topics answer drops them."""
    if getattr(request, "groups", None) is None:  # v0-7: one group
        if not check.allowed("Describe", "Group", request.group_id):
            return check.ctx.respond(throttle_time=0, error_code=GROUP_DENIED, topics=[])
        response = await check.handler(check.ctx, request)
        topics = _fetched_topics(check, response.topics, named=request.topics is not None)
        return dataclasses.replace(response, topics=topics)
    items = Items("groups", "groups", "OffsetFetchResponseGroup",
                  lambda _c, item, error: {"group_id": item.group_id, "error_code": error})
    response = await split(check, request, items, lambda g: None if check.allowed(
        "Describe", "Group", g.group_id) else GROUP_DENIED)
    asked = {g.group_id: g.topics is not None for g in request.groups}
    groups = tuple(dataclasses.replace(g, topics=_fetched_topics(check, g.topics,
                                                                 asked.get(g.group_id, True)))
                   for g in response.groups)
    return dataclasses.replace(response, groups=groups)


def _fetched_topics(check: Check, topics: Any, named: bool) -> tuple[Any, ...]:
    kept = []
    for topic in topics or ():
        if check.allowed("Describe", "Topic", topic.name):
            kept.append(topic)
        elif named:
            kept.append(dataclasses.replace(topic, partitions=tuple(
                dataclasses.replace(p, committed_offset=-1, metadata="", error_code=TOPIC_DENIED)
                for p in topic.partitions)))
    return tuple(kept)


def _group_id(request: Any) -> str | None:
    return str(request.group_id)


async def _consumer_group_describe(check: Check, request: Any) -> Any:
    items = Items("group_ids", "groups", "DescribedGroup",
                  lambda _c, group, error: {"group_id": group, "error_code": error,
                                            "authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN})
    return await split(check, request, items, lambda g: None if check.allowed(
        "Describe", "Group", g) else GROUP_DENIED)


async def _list_groups(check: Check, request: Any) -> Any:
    """Every group with Describe on the cluster, else those the principal may Describe."""
    response = await check.handler(check.ctx, request)
    if check.cluster("Describe"):
        return response
    kept = tuple(g for g in response.groups if check.allowed("Describe", "Group", g.group_id))
    return dataclasses.replace(response, groups=kept)


async def _describe_groups(check: Check, request: Any) -> Any:
    items = Items("groups", "groups", "DescribedGroup",
                  lambda _c, group, error: {"group_id": group, "error_code": error,
                                            "authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN})
    return await split(check, request, items, lambda g: None if check.allowed(
        "Describe", "Group", g) else GROUP_DENIED)


async def _delete_groups(check: Check, request: Any) -> Any:
    items = Items("groups_names", "results", "DeletableGroupResult",
                  lambda _c, group, error: {"group_id": group, "error_code": error})
    return await split(check, request, items, lambda g: None if check.allowed(
        "Delete", "Group", g) else GROUP_DENIED)


_COORDINATOR_KINDS = {0: ("Group", GROUP_DENIED), 1: ("TransactionalId", TXN_DENIED)}


async def _find_coordinator(check: Check, request: Any) -> Any:
    """Describe on the group or the transactional id whose coordinator is asked for;
    ClusterAction for a share coordinator (key type 2: only brokers ask)."""
    if int(request.key_type) == 2 and not check.cluster("ClusterAction"):
        if getattr(request, "coordinator_keys", None) is None:
            return check.ctx.respond(throttle_time=0, error_code=CLUSTER_DENIED, node_id=-1,
                                     host="", port=-1)
        return check.ctx.respond(throttle_time=0, coordinators=[
            {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": CLUSTER_DENIED}
            for key in request.coordinator_keys])
    kind = _COORDINATOR_KINDS.get(int(request.key_type))
    if kind is None:
        return await check.handler(check.ctx, request)
    resource_type, error = kind
    if getattr(request, "coordinator_keys", None) is None:  # v0-3: one key
        if check.allowed("Describe", resource_type, request.key):
            return await check.handler(check.ctx, request)
        return check.ctx.respond(throttle_time=0, error_code=error, node_id=-1, host="",
                                 port=-1)
    items = Items("coordinator_keys", "coordinators", "Coordinator",
                  lambda _c, key, e: {"key": key, "node_id": -1, "host": "", "port": -1,
                                      "error_code": e})
    return await split(check, request, items, lambda key: None if check.allowed(
        "Describe", resource_type, key) else error)


def _named_topics(operation: str, request_field: str, response_field: str, entry_class: str,
                  *, cluster_too: bool = False) -> Rule:
    """A per-topic admin API: `operation` on each topic (or, `cluster_too`, on the
    cluster, as CreateTopics accepts)."""
    items = Items(request_field, response_field, entry_class,
                  lambda _c, item, error: {"name": item.name,
                                           "topic_id": getattr(item, "topic_id", None),
                                           "error_code": error,
                                           "error_message": "Authorization failed.",
                                           "num_partitions": -1, "replication_factor": -1,
                                           "topic_config_error_code": error})

    async def rule(check: Check, request: Any) -> Any:
        if cluster_too and check.cluster(operation):
            return await check.handler(check.ctx, request)
        return await split(check, request, items, topic_verdict(check, operation))

    return rule


def _delete_topics() -> Rule:
    """DeleteTopics: Delete on each topic; v0-5 carry bare names (`topic_names`)."""
    named = _named_topics("Delete", "topics", "responses", "DeletableTopicResult")
    by_name = Items("topic_names", "responses", "DeletableTopicResult",
                    lambda _c, name, error: {"name": name, "error_code": error,
                                             "error_message": "Authorization failed."})

    async def rule(check: Check, request: Any) -> Any:
        if getattr(request, "topics", None) is None:
            return await split(check, request, by_name, lambda name: None if check.allowed(
                "Delete", "Topic", name) else TOPIC_DENIED)
        return await named(check, request)

    return rule


# topic, broker, broker logger, client metrics, group
_CONFIG_RESOURCES = {2: "Topic", 4: "Cluster", 8: "Cluster", 16: "Cluster", 32: "Group"}


def _configs(operation: str, response_field: str, entry_class: str) -> Rule:
    """DescribeConfigs/AlterConfigs: on the topic, or on the cluster for brokers."""
    items = Items("resources", response_field, entry_class,
                  lambda _c, r, error: {"resource_type": r.resource_type,
                                        "resource_name": r.resource_name,
                                        "error_code": error, "configs": [],
                                        "error_message": "Authorization failed."})

    async def rule(check: Check, request: Any) -> Any:
        def verdict(resource: Any) -> ErrorCode | None:
            kind = _CONFIG_RESOURCES.get(int(resource.resource_type))
            if kind == "Topic" and not check.allowed(operation, "Topic",
                                                     resource.resource_name):
                return TOPIC_DENIED
            if kind == "Cluster" and not check.cluster(operation):
                return CLUSTER_DENIED
            if kind == "Group" and not check.allowed(operation, "Group",
                                                     resource.resource_name):
                return GROUP_DENIED
            return None

        return await split(check, request, items, verdict)

    return rule


async def _init_producer_id(check: Check, request: Any) -> Any:
    """Write on the transactional id; an idempotent producer needs IdempotentWrite on
    the cluster or Write on some topic."""
    txn = request.transactional_id
    if txn is not None:
        if not check.allowed("Write", "TransactionalId", txn):
            return check.ctx.respond(throttle_time=0, error_code=TXN_DENIED, producer_id=-1,
                                     producer_epoch=-1)
    elif not (check.cluster("IdempotentWrite") or check.authorizer.authorize_any(
            check.ctx.principal, host_of(check.ctx.peer), "Write", "Topic")):
        return check.ctx.respond(throttle_time=0, error_code=CLUSTER_DENIED, producer_id=-1,
                                 producer_epoch=-1)
    return await check.handler(check.ctx, request)


async def _add_offsets_to_txn(check: Check, request: Any) -> Any:
    if not check.allowed("Write", "TransactionalId", request.transactional_id):
        return check.ctx.respond(throttle_time=0, error_code=TXN_DENIED)
    if not check.allowed("Read", "Group", request.group_id):
        return check.ctx.respond(throttle_time=0, error_code=GROUP_DENIED)
    return await check.handler(check.ctx, request)


async def _add_partitions_to_txn(check: Check, request: Any) -> Any:
    """v0-3: Write on the transactional id, then on every topic; a refused topic fails
    the request, its partitions TOPIC_AUTHORIZATION_FAILED and the others
    OPERATION_NOT_ATTEMPTED. v4+ (brokers' verification): ClusterAction."""
    txn = getattr(request, "v3_and_below_transactional_id", None)
    if txn is None:
        if check.cluster("ClusterAction"):
            return await check.handler(check.ctx, request)
        return check.ctx.respond(throttle_time=0, error_code=CLUSTER_DENIED)
    topics = request.v3_and_below_topics
    if not check.allowed("Write", "TransactionalId", txn):
        errors = {t.name: TXN_DENIED for t in topics}
    else:
        errors = {t.name: TOPIC_DENIED for t in topics
                  if not check.allowed("Write", "Topic", t.name)}
        if not errors:
            return await check.handler(check.ctx, request)
    results = [{"name": t.name, "results_by_partition": [
        {"partition_index": p, "partition_error_code":
         errors.get(t.name, ErrorCode.operation_not_attempted)} for p in t.partitions]}
        for t in topics]
    return check.ctx.respond(throttle_time=0, results_by_topic_v3_and_below=results)


def _cluster(operation: str) -> Rule:
    return requires(operation, "Cluster", lambda _r: CLUSTER_NAME, CLUSTER_DENIED)


def _txn_id(request: Any) -> str | None:
    return str(request.transactional_id)


async def _write_txn_markers(check: Check, request: Any) -> Any:
    """ClusterAction: only brokers write transaction markers."""
    if check.cluster("ClusterAction"):
        return await check.handler(check.ctx, request)
    markers = [{"producer_id": m.producer_id, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p, "error_code": CLUSTER_DENIED}
                                        for p in t.partition_indexes]} for t in m.topics]}
        for m in request.markers]
    return check.ctx.respond(markers=markers)


_DELETE_RECORDS = Items("topics", "topics", "DeleteRecordsTopicResult",
                        partitions_entry("partitions", "partition_index", "partitions",
                                         "partition_index", low_watermark=-1))


async def _delete_records(check: Check, request: Any) -> Any:
    return await split(check, request, _DELETE_RECORDS, topic_verdict(check, "Delete"))


def _epoch_entry(_check: Check, item: Any, error: ErrorCode) -> dict[str, Any]:
    return {"topic": item.topic, "partitions": [
        {"partition": p.partition, "error_code": error, "leader_epoch": -1, "end_offset": -1}
        for p in item.partitions]}


async def _offset_for_leader_epoch(check: Check, request: Any) -> Any:
    """A replica's question needs ClusterAction, a consumer's Describe on the topic."""
    items = Items("topics", "topics", "OffsetForLeaderTopicResult", _epoch_entry)
    if getattr(request, "replica_id", -1) >= 0:
        if check.cluster("ClusterAction"):
            return await check.handler(check.ctx, request)
        return await split(check, request, items, lambda _item: TOPIC_DENIED)
    return await split(check, request, items, topic_verdict(check, "Describe"))


async def _offset_delete(check: Check, request: Any) -> Any:
    """Delete on the group, then Read on each topic."""
    if not check.allowed("Delete", "Group", request.group_id):
        return check.ctx.respond(throttle_time=0, error_code=GROUP_DENIED, topics=[])
    items = Items("topics", "topics", "OffsetDeleteResponseTopic",
                  partitions_entry("partitions", "partition_index", "partitions",
                                   "partition_index"))
    return await split(check, request, items, topic_verdict(check, "Read"))


async def _describe_producers(check: Check, request: Any) -> Any:
    items = Items("topics", "topics", "TopicResponse",
                  lambda _c, item, error: {"name": item.name, "partitions": [
                      {"partition_index": p, "error_code": error, "active_producers": []}
                      for p in item.partition_indexes]})
    return await split(check, request, items, topic_verdict(check, "Read"))


async def _describe_transactions(check: Check, request: Any) -> Any:
    items = Items("transactional_ids", "transaction_states", "TransactionState",
                  lambda _c, txn, error: {"transactional_id": txn, "error_code": error,
                                          "transaction_state": "", "producer_id": -1,
                                          "producer_epoch": -1, "topics": []})
    return await split(check, request, items, lambda txn: None if check.allowed(
        "Describe", "TransactionalId", txn) else TXN_DENIED)


async def _list_transactions(check: Check, request: Any) -> Any:
    """Only the transactional ids the principal may Describe."""
    response = await check.handler(check.ctx, request)
    kept = tuple(t for t in response.transaction_states
                 if check.allowed("Describe", "TransactionalId", t.transactional_id))
    return dataclasses.replace(response, transaction_states=kept)


async def _describe_topic_partitions(check: Check, request: Any) -> Any:
    """Named topics need Describe; a listing of all drops those the principal may not."""
    if request.topics:
        items = Items("topics", "topics", "DescribeTopicPartitionsResponseTopic",
                      lambda _c, item, error: {"name": item.name, "error_code": error,
                                               "partitions": [],
                                               "topic_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN})
        return await split(check, request, items, topic_verdict(check, "Describe"))
    response = await check.handler(check.ctx, request)
    kept = tuple(t for t in response.topics if check.allowed("Describe", "Topic", t.name))
    return dataclasses.replace(response, topics=kept)


async def _alter_client_quotas(check: Check, request: Any) -> Any:
    """AlterConfigs on the cluster, else every entity is answered
    CLUSTER_AUTHORIZATION_FAILED."""
    if check.cluster("AlterConfigs"):
        return await check.handler(check.ctx, request)
    return check.ctx.respond(throttle_time=0, entries=[
        {"error_code": CLUSTER_DENIED, "error_message": None, "entity": [
            {"entity_type": e.entity_type, "entity_name": e.entity_name} for e in entry.entity]}
        for entry in request.entries])


async def _alter_scram(check: Check, request: Any) -> Any:
    """Alter on the cluster, else every user named is answered
    CLUSTER_AUTHORIZATION_FAILED."""
    if check.cluster("Alter"):
        return await check.handler(check.ctx, request)
    names = dict.fromkeys([d.name for d in request.deletions]
                          + [u.name for u in request.upsertions])
    return check.ctx.respond(throttle_time=0, results=[
        {"user": name, "error_code": CLUSTER_DENIED, "error_message": None} for name in names])


# --- share groups (KIP-932) -----------------------------------------------------------


def _share_entry(_check: Check, item: Any, error: ErrorCode) -> dict[str, Any]:
    """A refused topic of ShareFetch/ShareAcknowledge: each partition with the error, its
    acknowledgements (if it carried any) refused the same way."""
    return {"topic_id": item.topic_id, "partitions": [
        {"partition_index": p.partition_index, "error_code": error,
         "acknowledge_error_code": error if getattr(p, "acknowledgement_batches", None) else 0,
         "current_leader": {"leader_id": -1, "leader_epoch": -1}, "records": b"",
         "acquired_records": []} for p in item.partitions]}


def _share_fetching(entry_class: str) -> Rule:
    """ShareFetch/ShareAcknowledge: Read on the group (else the whole request), then Read
    on each topic. The handler always runs, so the share session's epoch moves on even
    when every topic is refused."""
    items = Items("topics", "responses", entry_class, _share_entry)

    async def rule(check: Check, request: Any) -> Any:
        if not check.allowed("Read", "Group", request.group_id):
            return check.ctx.respond(throttle_time=0, error_code=GROUP_DENIED)
        return await split(check, request, items, topic_verdict(check, "Read"), always=True)

    return rule


def _named_verdict(check: Check, operation: str) -> Callable[[Any], ErrorCode | None]:
    """Topics named by `topic_name` (the share group offsets APIs)."""
    return lambda item: None if check.allowed(operation, "Topic", item.topic_name) \
        else TOPIC_DENIED


def _share_offsets(group_operation: str, entry_class: str,
                   entry: Callable[[Check, Any, ErrorCode], dict[str, Any]]) -> Rule:
    """Alter/DeleteShareGroupOffsets: the group operation (else the whole request), then
    Read on each topic."""
    items = Items("topics", "responses", entry_class, entry)

    async def rule(check: Check, request: Any) -> Any:
        if not check.allowed(group_operation, "Group", request.group_id):
            return check.ctx.respond(throttle_time=0, error_code=GROUP_DENIED, responses=[])
        return await split(check, request, items, _named_verdict(check, "Read"))

    return rule


def _altered_entry(_check: Check, item: Any, error: ErrorCode) -> dict[str, Any]:
    return {"topic_name": item.topic_name, "topic_id": None, "partitions": [
        {"partition_index": p.partition_index, "error_code": error} for p in item.partitions]}


def _deleted_entry(_check: Check, item: Any, error: ErrorCode) -> dict[str, Any]:
    return {"topic_name": item.topic_name, "topic_id": None, "error_code": error}


def _described_offsets_group(check: Check, group: Any) -> tuple[Any, list[Any]]:
    """A group of DescribeShareGroupOffsets narrowed to the topics it may Describe, and
    the refused ones."""
    if group.topics is None:
        return group, []
    kept = [t for t in group.topics if check.allowed("Describe", "Topic", t.topic_name)]
    refused = [t for t in group.topics if t not in kept]
    return dataclasses.replace(group, topics=tuple(kept)), refused


async def _describe_share_group_offsets(check: Check, request: Any) -> Any:
    """Describe on each group (else that group GROUP_AUTHORIZATION_FAILED), Describe on
    each named topic (else its partitions TOPIC_AUTHORIZATION_FAILED); a group's listing
    of all its topics keeps those it may Describe."""
    allowed = [g for g in request.groups if check.allowed("Describe", "Group", g.group_id)]
    narrowed = [_described_offsets_group(check, g) for g in allowed]
    response = await check.handler(check.ctx, dataclasses.replace(
        request, groups=tuple(g for g, _ in narrowed)))
    refused = {g.group_id: r for g, r in narrowed}
    group_class = check.ctx.response_class("DescribeShareGroupOffsetsResponseGroup")
    topic_class = check.ctx.response_class("DescribeShareGroupOffsetsResponseTopic")
    groups = []
    for answered in response.groups:
        topics = [t for t in answered.topics
                  if check.allowed("Describe", "Topic", t.topic_name)]
        topics += [build(topic_class, {"topic_name": t.topic_name, "topic_id": None,
                                       "partitions": [{"partition_index": p, "start_offset": -1,
                                                       "leader_epoch": -1, "lag": -1,
                                                       "error_code": TOPIC_DENIED}
                                                      for p in t.partitions]})
                   for t in refused.get(answered.group_id, ())]
        groups.append(dataclasses.replace(answered, topics=tuple(topics)))
    groups += [build(group_class, {"group_id": g.group_id, "topics": [],
                                   "error_code": GROUP_DENIED})
               for g in request.groups if g not in allowed]
    return dataclasses.replace(response, groups=tuple(groups))


async def _share_state(check: Check, request: Any) -> Any:
    """The share coordinator's APIs (83-87): ClusterAction, else every share-partition
    CLUSTER_AUTHORIZATION_FAILED."""
    if check.cluster("ClusterAction"):
        return await check.handler(check.ctx, request)
    return check.ctx.respond(results=[
        {"topic_id": t.topic_id, "partitions": [
            {"partition": p.partition, "error_code": CLUSTER_DENIED, "start_offset": -1,
             "leader_epoch": -1, "state_batches": []} for p in t.partitions]}
        for t in request.topics])


CHECKS: dict[int, Rule] = {
    ApiKey.PRODUCE: _produce,
    ApiKey.FETCH: _fetch,
    ApiKey.LIST_OFFSETS: _list_offsets,
    ApiKey.METADATA: _metadata,
    ApiKey.OFFSET_COMMIT: _offset_commit,
    ApiKey.OFFSET_FETCH: _offset_fetch,
    ApiKey.FIND_COORDINATOR: _find_coordinator,
    ApiKey.JOIN_GROUP: requires("Read", "Group", _group_id, GROUP_DENIED, generation_id=-1),
    ApiKey.HEARTBEAT: requires("Read", "Group", _group_id, GROUP_DENIED),
    ApiKey.LEAVE_GROUP: requires("Read", "Group", _group_id, GROUP_DENIED),
    ApiKey.SYNC_GROUP: requires("Read", "Group", _group_id, GROUP_DENIED),
    ApiKey.CONSUMER_GROUP_HEARTBEAT: requires("Read", "Group", _group_id, GROUP_DENIED,
                                              member_epoch=-1),
    ApiKey.CONSUMER_GROUP_DESCRIBE: _consumer_group_describe,
    # KIP-932 share groups, as Kafka 4.4: Read on the group and on each topic fetched,
    # acknowledged or altered; Delete on the group and Read on the topics to delete
    # offsets; Describe on groups and topics to describe them
    ApiKey.SHARE_GROUP_HEARTBEAT: requires("Read", "Group", _group_id, GROUP_DENIED,
                                           member_epoch=-1),
    ApiKey.SHARE_GROUP_DESCRIBE: _consumer_group_describe,  # the same shape of answer
    ApiKey.SHARE_FETCH: _share_fetching("ShareFetchableTopicResponse"),
    ApiKey.SHARE_ACKNOWLEDGE: _share_fetching("ShareAcknowledgeTopicResponse"),
    ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS: _describe_share_group_offsets,
    ApiKey.ALTER_SHARE_GROUP_OFFSETS: _share_offsets("Read", "AlterShareGroupOffsetsResponseTopic",
                                                     _altered_entry),
    ApiKey.DELETE_SHARE_GROUP_OFFSETS: _share_offsets(
        "Delete", "DeleteShareGroupOffsetsResponseTopic", _deleted_entry),
    ApiKey.INITIALIZE_SHARE_GROUP_STATE: _share_state,
    ApiKey.READ_SHARE_GROUP_STATE: _share_state,
    ApiKey.WRITE_SHARE_GROUP_STATE: _share_state,
    ApiKey.DELETE_SHARE_GROUP_STATE: _share_state,
    ApiKey.READ_SHARE_GROUP_STATE_SUMMARY: _share_state,
    ApiKey.DESCRIBE_GROUPS: _describe_groups,
    ApiKey.LIST_GROUPS: _list_groups,
    ApiKey.DELETE_GROUPS: _delete_groups,
    ApiKey.CREATE_TOPICS: _named_topics("Create", "topics", "topics", "CreatableTopicResult",
                                        cluster_too=True),
    ApiKey.DELETE_TOPICS: _delete_topics(),
    ApiKey.CREATE_PARTITIONS: _named_topics("Alter", "topics", "results",
                                            "CreatePartitionsTopicResult"),
    ApiKey.DESCRIBE_CONFIGS: _configs("DescribeConfigs", "results", "DescribeConfigsResult"),
    ApiKey.ALTER_CONFIGS: _configs("AlterConfigs", "responses",
                                   "AlterConfigsResourceResponse"),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: _configs("AlterConfigs", "responses",
                                               "AlterConfigsResourceResponse"),
    ApiKey.INIT_PRODUCER_ID: _init_producer_id,
    ApiKey.ADD_PARTITIONS_TO_TXN: _add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: _add_offsets_to_txn,
    ApiKey.END_TXN: requires("Write", "TransactionalId", _txn_id, TXN_DENIED, producer_id=-1,
                             producer_epoch=-1),
    ApiKey.TXN_OFFSET_COMMIT: _txn_offset_commit,
    ApiKey.WRITE_TXN_MARKERS: _write_txn_markers,
    ApiKey.DESCRIBE_LOG_DIRS: _cluster("Describe"),
    ApiKey.DELETE_RECORDS: _delete_records,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: _offset_for_leader_epoch,
    ApiKey.OFFSET_DELETE: _offset_delete,
    ApiKey.DESCRIBE_PRODUCERS: _describe_producers,
    ApiKey.DESCRIBE_TRANSACTIONS: _describe_transactions,
    ApiKey.LIST_TRANSACTIONS: _list_transactions,
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: _describe_topic_partitions,
    ApiKey.DESCRIBE_CLIENT_QUOTAS: _cluster("DescribeConfigs"),
    ApiKey.ALTER_CLIENT_QUOTAS: _alter_client_quotas,
    ApiKey.LIST_CONFIG_RESOURCES: _cluster("DescribeConfigs"),
    ApiKey.ELECT_LEADERS: _cluster("Alter"),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: _cluster("Alter"),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: _cluster("Describe"),
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: _cluster("Describe"),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: _alter_scram,
}
"""Kafka's authorization per API; an API absent here is not checked (ApiVersions, the
SASL exchange, and those whose handler checks itself: the ACL APIs)."""

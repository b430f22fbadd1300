"""DeleteTopics v0-5 name their topics as bare strings (`topic_names`), as librdkafka
sends them: the authorizer splits them like v6's entries instead of failing the
connection (found by `strom topic delete` over SASL_SSL with the authorizer on)."""

from __future__ import annotations

import dataclasses

from kio.schema.errors import ErrorCode

from strom.broker.security.api_authorization import handle
from strom.cluster.acls import Ace, Resource
from strom.cluster.image import MetadataImage
from strom.protocol.api_keys import ApiKey
from support.handler_context import broker_config, call, context, request

ON = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}


class _Metadata:
    def __init__(self) -> None:
        acls = {Resource("Topic", "LITERAL", "mine"):
                frozenset({Ace("User:alice", "*", "Delete", "Allow")})}
        self._image = MetadataImage("c", 1, {}, {}, acls=acls)

    def image(self) -> MetadataImage:
        return self._image


def test_delete_topics_v4_passes_the_allowed_names_and_answers_the_refused() -> None:
    body = request(ApiKey.DELETE_TOPICS, 4, topic_names=["mine", "theirs"], timeout_ms=1000)
    seen: list[object] = []

    async def handler(ctx, request_body):  # type: ignore[no-untyped-def]
        seen.append(request_body)
        return ctx.respond(throttle_time=0, responses=[
            {"name": n, "error_code": ErrorCode.none} for n in request_body.topic_names])

    ctx = dataclasses.replace(context(ApiKey.DELETE_TOPICS, 4, config=broker_config(**ON),
                                      metadata=_Metadata()), principal="User:alice")
    answer = call(lambda c, b: handle(c, handler, b), ctx, body)
    assert [tuple(b.topic_names) for b in seen] == [("mine",)]  # type: ignore[attr-defined]
    assert [(r.name, r.error_code) for r in answer.responses] == [
        ("mine", ErrorCode.none), ("theirs", ErrorCode.topic_authorization_failed)]

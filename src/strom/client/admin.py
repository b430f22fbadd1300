"""AdminClient results per resource: waited for together, failures named by resource.

AdminClient calls return one future per resource (topic, group, config resource,
partition). `results` gives all their values or raises for the first failure, `outcomes`
gives each value or each failure (for tools that report every resource), `list_offsets`
turns ListOffsets answers into plain `{(topic, partition): offset}`. `ensure_topic` is
the create-if-missing that benchmarks, Streams' internal topics and tests need.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from strom.client.clients import KafkaClients
from strom.client.errors import KafkaClientError, as_client_error

if TYPE_CHECKING:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

R = TypeVar("R", bound=Hashable)
T = TypeVar("T")


def resource_name(resource: object) -> str:
    """How a message names a resource: a ConfigResource by its name, a TopicPartition as
    `topic-partition` (Kafka's spelling), a topic or group id as it is."""
    topic, partition = getattr(resource, "topic", None), getattr(resource, "partition", None)
    if isinstance(topic, str) and isinstance(partition, int):
        return f"{topic}-{partition}"
    return str(getattr(resource, "name", resource))


def outcomes(clients: KafkaClients, futures: Mapping[R, concurrent.futures.Future[T]]
             ) -> dict[R, T | KafkaClientError]:
    """Each resource's result, or its failure as a KafkaClientError naming the resource."""
    clients.wait(futures.values())
    found: dict[R, T | KafkaClientError] = {}
    for resource, future in futures.items():
        try:
            found[resource] = future.result()
        except Exception as exc:  # an admin future fails with KafkaException
            error = as_client_error(exc, resource_name(resource), clients.bootstrap_servers)
            if error is None:
                raise
            found[resource] = error
    return found


def results(clients: KafkaClients, futures: Mapping[R, concurrent.futures.Future[T]]
            ) -> dict[R, T]:
    """Every resource's result; the first failure (in the futures' order) raises."""
    found: dict[R, T] = {}
    for resource, outcome in outcomes(clients, futures).items():
        if isinstance(outcome, KafkaClientError):
            raise outcome
        found[resource] = outcome
    return found


def list_offsets(clients: KafkaClients, specs: Mapping[TopicPartition, OffsetSpec], *,
                 skip_errors: bool = False) -> dict[tuple[str, int], int]:
    """Offsets by (topic, partition) for OffsetSpec.earliest/latest/for_timestamp.

    With `skip_errors` a partition whose answer failed (its topic was deleted) is left
    out; otherwise the first failure raises. A timestamp with no record at or after it
    answers -1, as Kafka does.
    """
    if not specs:
        return {}
    futures = clients.admin().list_offsets(dict(specs), request_timeout=clients.timeout)
    answered = outcomes(clients, futures)
    found: dict[tuple[str, int], int] = {}
    for tp, outcome in answered.items():
        if isinstance(outcome, KafkaClientError):
            if skip_errors:
                continue
            raise outcome
        found[(tp.topic, tp.partition)] = outcome.offset
    return found


def config_source(entry: Any) -> str:
    """DEFAULT, DYNAMIC_TOPIC, STATIC_BROKER, ... (Kafka's names without `_CONFIG`)."""
    from confluent_kafka.admin import ConfigSource

    source = entry.source
    with contextlib.suppress(ValueError, TypeError):
        source = ConfigSource(int(source))
    name = getattr(source, "name", str(source))
    return str(name).removesuffix("_CONFIG")


def ensure_topic(clients: KafkaClients, topic: str, partitions: int = -1,
                 replication_factor: int = -1, config: Mapping[str, str] | None = None) -> bool:
    """Create `topic` unless it exists (-1: the broker's defaults); True if created here.

    An existing topic is accepted as it is: its partitions and configs are not compared.
    """
    from confluent_kafka.admin import NewTopic

    new = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                   config=dict(config or {}))
    futures = clients.admin().create_topics([new], request_timeout=clients.timeout,
                                            operation_timeout=clients.timeout)
    outcome = outcomes(clients, futures)[topic]
    if not isinstance(outcome, KafkaClientError):
        return True
    if outcome.name == "TOPIC_ALREADY_EXISTS":
        return False
    raise outcome

"""Resetting an application so it reprocesses its input from the beginning (what Kafka's
`kafka-streams-application-reset` tool does; `strom streams reset APP` is to call this).

1. The group `application_id` must have no active members (stop every instance first).
2. Its committed offsets on input topics go back to the earliest offsets, and those on
   its internal topics to 0 (the topics come back empty).
3. Its internal topics are deleted: every topic named `<application_id>-...` ending in
   `-changelog`, `-repartition`, `-subscription-registration-topic` or
   `-subscription-response-topic` (Kafka's resetter finds them by the same names).
4. Optionally, the instance's local state directory is removed (each machine's own).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from strom.client import KafkaClients
from strom.client.admin import list_offsets, results
from strom.streams.errors import StreamsError

INTERNAL_SUFFIXES = ("-changelog", "-repartition", "-subscription-registration-topic",
                     "-subscription-response-topic")


@dataclass
class ResetReport:
    input_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    deleted_topics: list[str] = field(default_factory=list)
    removed_state_dir: Path | None = None


def internal_topics(clients: KafkaClients, application_id: str) -> list[str]:
    prefix = f"{application_id}-"
    return sorted(t for t in clients.list_topics().topics
                  if t.startswith(prefix) and t.endswith(INTERNAL_SUFFIXES))


def reset_application(clients: KafkaClients, application_id: str, input_topics: list[str],
                      state_dir: Path | None = None) -> ResetReport:
    """Reset `application_id` (see the module docstring); what was done."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    _require_inactive(clients, application_id)
    report = ResetReport()
    metadata = clients.topic_metadata(input_topics)
    specs = {TopicPartition(topic, p): OffsetSpec.earliest()
             for topic, info in metadata.items() for p in info.partitions}
    report.input_offsets = list_offsets(clients, specs)
    report.deleted_topics = internal_topics(clients, application_id)
    # the group's offsets on internal topics go to 0 too: the topics come back empty, and
    # an old offset left behind would skip the new records (or wait for them to catch up)
    internal = clients.topic_metadata(report.deleted_topics) if report.deleted_topics else {}
    reset_to = dict(report.input_offsets)
    reset_to.update({(topic, p): 0 for topic, info in internal.items() for p in info.partitions})
    if reset_to:
        request = ConsumerGroupTopicPartitions(application_id, [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in sorted(reset_to.items())])
        results(clients, clients.admin().alter_consumer_group_offsets(
            [request], request_timeout=clients.timeout))
    if report.deleted_topics:
        results(clients, clients.admin().delete_topics(
            report.deleted_topics, request_timeout=clients.timeout,
            operation_timeout=clients.timeout))
    if state_dir is not None:
        directory = Path(state_dir) / application_id
        if directory.exists():
            shutil.rmtree(directory)
            report.removed_state_dir = directory
    return report


def _require_inactive(clients: KafkaClients, application_id: str) -> None:
    futures = clients.admin().describe_consumer_groups([application_id],
                                                       request_timeout=clients.timeout)
    description = results(clients, futures)[application_id]
    if description.members:
        raise StreamsError(f"application {application_id!r} still has "
                           f"{len(description.members)} active member(s): stop them first")

"""Resetting an application so it reprocesses its input from the beginning (what Kafka's
`kafka-streams-application-reset` tool does; `strom streams reset APP` calls this).

1. The group `application_id` must have no active members (stop every instance first).
2. Its committed offsets on input topics go back to the earliest offsets (or to the latest,
   an offset or a time: `ResetTarget`), those on intermediate topics to their end, and
   those on its internal topics to 0 (the topics come back empty).
3. Its internal topics are deleted: every topic named `<application_id>-...` ending in
   `-changelog`, `-repartition`, `-subscription-registration-topic` or
   `-subscription-response-topic` (Kafka's resetter finds them by the same names).
4. Optionally, the instance's local state directory is removed (each machine's own).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strom.client import KafkaClients
from strom.client.admin import list_offsets, results
from strom.streams.errors import StreamsError

INTERNAL_SUFFIXES = ("-changelog", "-repartition", "-subscription-registration-topic",
                     "-subscription-response-topic")


@dataclass(frozen=True)
class ResetTarget:
    """Where input offsets go, as Kafka's reset tool's schemes: `earliest` (its default),
    `latest`, `offset` (`value`, clamped to the log as Kafka clamps it) or `timestamp`
    (`value` ms: the first record at or after it, the log end if none; `--by-duration` and
    `--to-datetime` both come down to this)."""

    kind: str = "earliest"
    value: int = 0


@dataclass
class ResetReport:
    input_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    intermediate_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    deleted_topics: list[str] = field(default_factory=list)
    removed_state_dir: Path | None = None
    dry_run: bool = False


def internal_topics(clients: KafkaClients, application_id: str) -> list[str]:
    prefix = f"{application_id}-"
    return sorted(t for t in clients.list_topics().topics
                  if t.startswith(prefix) and t.endswith(INTERNAL_SUFFIXES))


def reset_application(clients: KafkaClients, application_id: str, input_topics: list[str],
                      state_dir: Path | None = None, *,
                      intermediate_topics: Sequence[str] = (),
                      target: ResetTarget = ResetTarget(), dry_run: bool = False
                      ) -> ResetReport:
    """Reset `application_id` (see the module docstring); what was (or, with `dry_run`,
    would be) done. Intermediate topics (user topics the application writes and reads
    back) are skipped to their end, as Kafka's tool does: their old records were already
    processed."""
    _require_inactive(clients, application_id)
    report = ResetReport(dry_run=dry_run)
    report.input_offsets = input_offsets(clients, input_topics, target)
    report.intermediate_offsets = input_offsets(clients, list(intermediate_topics),
                                                ResetTarget("latest"))
    report.deleted_topics = internal_topics(clients, application_id)
    if dry_run:
        return report
    _move_offsets(clients, application_id, report)
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


def input_offsets(clients: KafkaClients, topics: list[str], target: ResetTarget
                  ) -> dict[tuple[str, int], int]:
    """The new offset of every partition of `topics` under `target`."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    if not topics:
        return {}
    metadata = clients.topic_metadata(topics)
    tps = [TopicPartition(topic, p) for topic, info in metadata.items() for p in info.partitions]
    lows = list_offsets(clients, dict.fromkeys(tps, OffsetSpec.earliest()))
    highs = list_offsets(clients, dict.fromkeys(tps, OffsetSpec.latest()))
    if target.kind == "earliest":
        return lows
    if target.kind == "latest":
        return highs
    if target.kind == "offset":
        return {key: min(max(target.value, lows[key]), highs[key]) for key in lows}
    found = list_offsets(clients, dict.fromkeys(tps, OffsetSpec.for_timestamp(target.value)))
    return {key: offset if offset >= 0 else highs[key] for key, offset in found.items()}


def _move_offsets(clients: KafkaClients, application_id: str, report: ResetReport) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    # the group's offsets on internal topics go to 0 too: the topics come back empty, and
    # an old offset left behind would skip the new records (or wait for them to catch up)
    internal = clients.topic_metadata(report.deleted_topics) if report.deleted_topics else {}
    reset_to = {**report.input_offsets, **report.intermediate_offsets}
    reset_to.update({(topic, p): 0 for topic, info in internal.items() for p in info.partitions})
    if reset_to:
        request = ConsumerGroupTopicPartitions(application_id, [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in sorted(reset_to.items())])
        results(clients, clients.admin().alter_consumer_group_offsets(
            [request], request_timeout=clients.timeout))


def _require_inactive(clients: KafkaClients, application_id: str) -> None:
    futures = clients.admin().describe_consumer_groups([application_id],
                                                       request_timeout=clients.timeout)
    description = results(clients, futures)[application_id]
    if description.members:
        raise StreamsError(f"application {application_id!r} still has "
                           f"{len(description.members)} active member(s): stop them first")

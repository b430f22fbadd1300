"""A sink connector's offsets are its consumer group's (`connect-<name>`): read, altered
and reset with the AdminClient, in KIP-875's JSON shape:

    {"partition": {"kafka_topic": "orders", "kafka_partition": 0}, "offset": {"kafka_offset": 42}}

Reset deletes the group, as Kafka does; altering a partition's offset to null needs
DeleteConsumerGroupOffsets, which confluent-kafka's AdminClient lacks, so it is refused.
"""

from __future__ import annotations

from typing import Any

from strom.client import KafkaClientError, KafkaClients
from strom.client.admin import results
from strom.connect.api.errors import BadRequestError

TOPIC, PARTITION, OFFSET = "kafka_topic", "kafka_partition", "kafka_offset"


def committed(clients: KafkaClients, group: str) -> list[dict[str, Any]]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = clients.admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                         request_timeout=clients.timeout)
    answer = results(clients, futures)[group]
    return [{"partition": {TOPIC: tp.topic, PARTITION: tp.partition}, "offset": {OFFSET: tp.offset}}
            for tp in sorted(answer.topic_partitions or [], key=lambda t: (t.topic, t.partition))
            if tp.offset >= 0]


def alter(clients: KafkaClients, group: str, entries: list[Any]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    partitions = []
    for item in entries:
        partition, offset = item.get("partition"), item.get("offset")
        if not isinstance(partition, dict) or not isinstance(partition.get(TOPIC), str) \
                or not isinstance(partition.get(PARTITION), int):
            raise BadRequestError(f"Partitions for sink connectors must contain the keys '{TOPIC}' and "
                                  f"'{PARTITION}'")
        if offset is None:
            raise BadRequestError("Removing a sink partition's offset (a null offset) is not supported "
                                  "yet; reset the connector's offsets instead")
        if not isinstance(offset, dict) or not isinstance(offset.get(OFFSET), int):
            raise BadRequestError(f"Offsets for sink connectors must contain the key '{OFFSET}'")
        partitions.append(TopicPartition(partition[TOPIC], partition[PARTITION], offset[OFFSET]))
    futures = clients.admin().alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=clients.timeout)
    results(clients, futures)


def reset(clients: KafkaClients, group: str) -> None:
    futures = clients.admin().delete_consumer_groups([group], request_timeout=clients.timeout)
    try:
        results(clients, futures)
    except KafkaClientError as exc:
        if exc.name not in ("GROUP_ID_NOT_FOUND",):
            raise

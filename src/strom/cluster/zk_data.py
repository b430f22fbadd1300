"""Every znode Strom uses, and the JSON in each (the role of Kafka's ZkData.scala).

    /cluster/id                       {"version": "1", "id": <cluster id>}
    /controller                       ephemeral {"version": 1, "brokerid": N}
    /controller_epoch                 "<int>"; its znode version fences controller writes
    /brokers/ids/<id>                 ephemeral {"version": 5, "host", "port", "rack"}
    /brokers/topics/<topic>           {"version": 1, "id", "internal", "partitions": {
                                         "<p>": {"replicas": [..], "leader": N,
                                                 "leader_epoch": E, "isr": [..],
                                                 "partition_epoch": P,
                                                 "controller_epoch": C}}}
    /config/topics/<topic>            {"version": 1, "config": {name: value}}
    /config/brokers/<default>         {"version": 1, "config": {name: value}}: dynamic
    /config/brokers/<id>                broker configs, cluster-wide and per broker
    /config/users/<user>              {"version": 1, "config": {"SCRAM-SHA-256":
                                        "salt=..,stored_key=..,server_key=..,iterations=N"}}
    /config/users/<user>/clients/<c>  client quotas (strom.cluster.zk_quotas); a user's
    /config/clients/<client-id>         quotas share its znode with SCRAM credentials
    /config/changes/config_change_N   sequential {"version": 2, "entity_path":
                                        "brokers/<default>"}: Kafka's change notice
    /latest_producer_id_block         {"version": 1, "broker": N, "block_start": S,
                                       "block_end": E}

Unlike Kafka, a topic's partition states live in its topic znode rather than one znode
per partition: one read per topic on startup, and one version-checked write covers any
change to the topic. Writers (the controller electing leaders, a leader changing its
ISR, an admin adding partitions) all read-modify-write with the znode's version, so a
write based on a stale read fails and is retried or refused.

Controller writes are fenced as in Kafka's ZooKeeper mode: winning the election
increments `/controller_epoch` in the same multi-op that creates `/controller`, and every
partition-state write the controller makes is a multi-op that also checks that znode's
version. A controller whose epoch was superseded (paused past its session, say) has its
writes refused by ZooKeeper itself. Each partition state carries the `controller_epoch`
of the controller that last decided it, as Kafka's partition state JSON does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote, unquote

from strom.cluster.image import BrokerInfo, PartitionInfo, TopicInfo

CLUSTER_ID = "/cluster/id"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
TOPIC_CONFIGS = "/config/topics"
BROKER_CONFIGS = "/config/brokers"
USER_CONFIGS = "/config/users"
CONFIG_CHANGES = "/config/changes"
CONFIG_CHANGE_PREFIX = "config_change_"
PRODUCER_ID_BLOCK = "/latest_producer_id_block"
GROUP_CONFIGS = "/config/groups"
"""Group configs (the GROUP resource): `/config/groups/<sanitized group id>`, Kafka's
config JSON. Kafka keeps them only in KRaft; the path follows its entity layout."""
PERSISTENT_PATHS = (BROKER_IDS, TOPICS, TOPIC_CONFIGS, BROKER_CONFIGS, CONFIG_CHANGES,
                    USER_CONFIGS, GROUP_CONFIGS, "/cluster")


def broker_path(broker_id: int) -> str:
    return f"{BROKER_IDS}/{broker_id}"


def topic_path(topic: str) -> str:
    return f"{TOPICS}/{topic}"


def topic_config_path(topic: str) -> str:
    return f"{TOPIC_CONFIGS}/{topic}"


def broker_config_path(entity: str) -> str:
    """`entity` is a broker id or `<default>` (strom.cluster.image.broker_entity)."""
    return f"{BROKER_CONFIGS}/{entity}"


def sanitize_user(user: str) -> str:
    """A user name as Kafka writes it in a znode name (its Sanitizer: URL encoding,
    `*` as %2A, `~` as %7E)."""
    return quote(user, safe="").replace("~", "%7E")


def desanitize_user(entity: str) -> str:
    return unquote(entity)


def group_config_path(group_id: str) -> str:
    """`/config/groups/<sanitized group id>`: one group's configs."""
    return f"{GROUP_CONFIGS}/{sanitize_user(group_id)}"


def user_config_path(user: str) -> str:
    """`/config/users/<sanitized user>`: the user entity's configs (SCRAM credentials)."""
    return f"{USER_CONFIGS}/{sanitize_user(user)}"


def encode_config_change(entity_path: str) -> bytes:
    """The notice Kafka's ZooKeeper-mode admin wrote after changing an entity's configs
    (version 2 names the entity by path, e.g. `brokers/<default>`)."""
    return dumps({"version": 2, "entity_path": entity_path})


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def loads(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    value = json.loads(data.decode())
    return value if isinstance(value, dict) else {}


def encode_broker(broker: BrokerInfo) -> bytes:
    doc: dict[str, Any] = {"version": 5, "host": broker.host, "port": broker.port,
                           "rack": broker.rack}
    if broker.endpoints:  # Kafka's registration lists every listener as NAME://host:port
        doc["endpoints"] = [f"{name}://{_bracketed(host)}:{port}"
                            for name, host, port in broker.endpoints]
    return dumps(doc)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def decode_broker(broker_id: int, data: bytes) -> BrokerInfo:
    doc = loads(data)
    endpoints = []
    for text in doc.get("endpoints") or ():
        name, _, rest = str(text).partition("://")
        host, _, port = rest.rpartition(":")
        if name and port.isdigit():
            endpoints.append((name.upper(), host.strip("[]"), int(port)))
    return BrokerInfo(broker_id, str(doc["host"]), int(doc["port"]), doc.get("rack"),
                      tuple(endpoints))


def encode_topic(topic: TopicInfo) -> bytes:
    return dumps({
        "version": 1,
        "id": str(topic.topic_id),
        "internal": topic.internal,
        "partitions": {
            str(p.partition): {
                "replicas": list(p.replicas),
                "leader": p.leader,
                "leader_epoch": p.leader_epoch,
                "isr": list(p.isr),
                "partition_epoch": p.partition_epoch,
                "controller_epoch": p.controller_epoch,
                **({"adding": list(p.adding), "removing": list(p.removing)}
                   if p.reassigning else {}),
            }
            for p in topic.partitions.values()
        },
    })


def decode_topic(name: str, data: bytes, configs: dict[str, str]) -> TopicInfo:
    doc = loads(data)
    partitions = {
        int(p): PartitionInfo(
            partition=int(p),
            leader=int(s["leader"]),
            leader_epoch=int(s["leader_epoch"]),
            replicas=tuple(int(r) for r in s["replicas"]),
            isr=tuple(int(r) for r in s["isr"]),
            partition_epoch=int(s.get("partition_epoch", 0)),
            adding=tuple(int(r) for r in s.get("adding", ())),
            removing=tuple(int(r) for r in s.get("removing", ())),
            controller_epoch=int(s.get("controller_epoch", 0)),
        )
        for p, s in doc.get("partitions", {}).items()
    }
    return TopicInfo(name=name, topic_id=uuid.UUID(doc["id"]), partitions=partitions,
                     configs=configs, internal=bool(doc.get("internal", False)))


def encode_controller_epoch(epoch: int) -> bytes:
    return str(epoch).encode()


def decode_controller_epoch(data: bytes | None) -> int:
    return int(data or b"0")


def encode_configs(configs: dict[str, str]) -> bytes:
    return dumps({"version": 1, "config": configs})


def decode_configs(data: bytes | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in loads(data).get("config", {}).items()}

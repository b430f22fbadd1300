"""MqttSink: records of Kafka topics published to MQTT topics, at least once.

`put` publishes every record of the batch with `mqtt.qos` and `mqtt.retain`, then waits
(up to `mqtt.publish.timeout.ms`) until the MQTT server has acknowledged each one (PUBACK
for QoS 1, PUBCOMP for QoS 2; written to the socket for QoS 0). Only then does `put`
return, so the runtime commits no offset past a message the server does not have. When
the server is unreachable, or slow, `put` raises RetriableError and the runtime delivers
the same batch again after `retry.backoff.ms`: a message can then arrive twice, never
zero times.

The MQTT topic is `mqtt.topic`, a template: `${topic}` (the record's Kafka topic),
`${partition}`, `${key}` (the key as text). The payload is the value: bytes as they are,
text as UTF-8, other values (structs, maps, numbers) as JSON without envelope; a null
value publishes an empty payload, which with `mqtt.retain=true` clears the topic's
retained message, as a Kafka tombstone deletes a key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from strom.connect.api.config import ConfigType, Importance, at_least
from strom.connect.api.connector import SinkConnector
from strom.connect.api.errors import ConfigError, RetriableError
from strom.connect.api.records import SinkRecord
from strom.connect.api.task import SinkTask
from strom.connect.connectors import mqtt_common
from strom.connect.connectors.base import PropsConnector
from strom.connect.connectors.mqtt_common import CLIENT_ID, QOS, Connection, placeholders, render
from strom.connect.converters.json_converter import value_to_json
from strom.connect.converters.jsontext import dumps
from strom.connect.version import VERSION

MQTT_TOPIC = "mqtt.topic"
_KNOWN = {"topic", "partition", "key"}


def _template(name: str, value: object) -> None:
    unknown = [p for p in placeholders(str(value or "")) if p not in _KNOWN]
    if unknown:
        raise ConfigError(name, value, f"Unknown placeholder ${{{unknown[0]}}}: use ${{topic}}, "
                          "${partition} or ${key}")


CONFIG = (
    mqtt_common.connection_config(clean_session_default=True)
    .define(MQTT_TOPIC, ConfigType.STRING, importance=Importance.HIGH, validator=_template,
            documentation="The MQTT topic, a template: ${topic}, ${partition}, ${key}.")
    .define("mqtt.retain", ConfigType.BOOLEAN, False, Importance.MEDIUM,
            "Publish retained messages (the server keeps the last one per topic).")
    .define("mqtt.publish.timeout.ms", ConfigType.INT, 30_000, Importance.LOW,
            "How long put waits for the server's acknowledgements before the batch is "
            "delivered again.", validator=at_least(1))
    .define("mqtt.max.inflight", ConfigType.INT, 100, Importance.LOW,
            "Most QoS 1/2 messages sent and not yet acknowledged.", validator=at_least(1))
    .define("retry.backoff.ms", ConfigType.INT, 1000, Importance.LOW,
            "Wait before a batch that failed is delivered again.", validator=at_least(0))
)


def payload(value: Any, schema: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return dumps(value_to_json(schema, value)).encode("utf-8")


class MqttSinkConnector(PropsConnector, SinkConnector):
    config_def = CONFIG

    def task_class(self) -> type[MqttSinkTask]:
        return MqttSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        ids = mqtt_common.task_client_ids(self.props, max_tasks)
        return [{**self.props, CLIENT_ID: ids[i]} for i in range(max_tasks)]


class MqttSinkTask(SinkTask):
    """Publishes a batch, then waits for the acknowledgement of every message in it."""

    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        parsed = CONFIG.parse(props)
        self.template: str = parsed[MQTT_TOPIC]
        self.qos: int = parsed[QOS]
        self.retain = bool(parsed["mqtt.retain"])
        self.timeout = parsed["mqtt.publish.timeout.ms"] / 1000
        self.backoff_ms = int(parsed["retry.backoff.ms"])
        self.acked: set[int] = set()
        self.condition = threading.Condition()
        self.connection: Connection | None = None
        client_id = parsed[CLIENT_ID] or mqtt_common.task_client_ids(props, 1)[0]
        self.connection = mqtt_common.connect(parsed, client_id, lambda client: None, {
            "on_publish": self._published, "max_inflight_messages": parsed["mqtt.max.inflight"]})

    def _published(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self.condition:
            self.acked.add(mid)
            self.condition.notify_all()

    def put(self, records: Sequence[SinkRecord]) -> None:
        if not records or self.connection is None:
            return
        client = self.connection.client
        with self.condition:
            self.acked.clear()  # late acknowledgements of an earlier, failed batch
        mids = []
        for record in records:
            topic = render(self.template, {"topic": record.topic, "partition": str(record.kafka_partition),
                                           "key": "" if record.key is None else _text(record.key)})
            info = client.publish(topic, payload(record.value, record.value_schema), self.qos, self.retain)
            mids.append(info.mid)
        self._await(mids)

    def _await(self, mids: list[int]) -> None:
        deadline = time.monotonic() + self.timeout
        waiting = set(mids)
        with self.condition:
            while True:
                waiting -= self.acked
                if not waiting:
                    self.acked.difference_update(mids)
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.condition.wait(min(left, 1.0))
        self.acked.difference_update(mids)
        self.context.timeout(self.backoff_ms)
        raise RetriableError(f"The MQTT server did not acknowledge {len(waiting)} of {len(mids)} "
                             f"messages within {self.timeout:g} s")

    def stop(self) -> None:
        if self.connection is not None:
            mqtt_common.close(self.connection)
            self.connection = None


def _text(key: Any) -> str:
    if isinstance(key, bytes | bytearray):
        return bytes(key).decode("utf-8", errors="replace")
    return key if isinstance(key, str) else dumps(value_to_json(None, key))

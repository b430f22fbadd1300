"""MqttSource: messages of MQTT topic filters (IoT devices) into Kafka topics, at least once.

Each task subscribes to its share of `mqtt.topics` (wildcards `+` and `#` allowed; the
filters are divided among at most `tasks.max` tasks) with `mqtt.qos`. QoS 1 and 2
messages are acknowledged to the MQTT server only once Kafka has acknowledged the record
made of them (paho's manual acks, from `commit_record`): a message the task received but
had not yet written is sent again by the server after a crash or a restart. With
`mqtt.clean.session=false` (the default) and the task's stable client id, the server also
keeps the subscription and queues the QoS 1/2 messages published while the task is down;
Mosquitto keeps such sessions across its own restarts when `persistence` is on. Duplicates
are possible (a message written whose acknowledgement did not reach the server), losses
are not: at-least-once.

The Kafka topic is `kafka.topic`, a template: `${mqtt.topic}` is the MQTT topic with `/`
turned into `.` (and any other character Kafka refuses into `_`), `${mqtt.topic.N}` its
N-th level from 0. The key is the MQTT topic (`mqtt.key=topic`, the default), so one
device's messages share a partition and keep their order; headers `mqtt.topic`,
`mqtt.qos`, `mqtt.retained` and `mqtt.duplicate` are added unless `mqtt.headers.enable=false`.
The value is the payload as BYTES or, with `mqtt.payload.format=string`, as UTF-8 text.

MQTT has no offsets to store: the MQTT server's session is the position.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from strom.connect.api.config import ConfigType, Importance, at_least, one_of
from strom.connect.api.connector import SourceConnector
from strom.connect.api.records import SourceRecord
from strom.connect.api.task import RecordMetadata, SourceTask
from strom.connect.connectors import mqtt_common
from strom.connect.connectors.base import PropsConnector
from strom.connect.connectors.mqtt_common import CLIENT_ID, QOS, Connection, placeholders, render
from strom.connect.data.headers import Headers
from strom.connect.data.schema import BOOLEAN_SCHEMA, BYTES_SCHEMA, INT32_SCHEMA, STRING_SCHEMA
from strom.connect.version import VERSION

TOPICS = "mqtt.topics"
KAFKA_TOPIC = "kafka.topic"
_INVALID = re.compile(r"[^A-Za-z0-9._-]")


def _template(name: str, value: object) -> None:
    if value is None:
        return
    for key in placeholders(str(value)):
        if key != "mqtt.topic" and not re.fullmatch(r"mqtt\.topic\.\d+", key):
            from strom.connect.api.errors import ConfigError

            raise ConfigError(name, value, f"Unknown placeholder ${{{key}}}: use ${{mqtt.topic}} "
                              "or ${mqtt.topic.N}")


CONFIG = (
    mqtt_common.connection_config(clean_session_default=False)
    .define(TOPICS, ConfigType.LIST, importance=Importance.HIGH,
            documentation="MQTT topic filters to subscribe to (+ and # wildcards).")
    .define(KAFKA_TOPIC, ConfigType.STRING, importance=Importance.HIGH, validator=_template,
            documentation="The Kafka topic, a template: ${mqtt.topic} (levels joined by '.'), "
                          "${mqtt.topic.N} (level N).")
    .define("mqtt.key", ConfigType.STRING, "topic", Importance.MEDIUM,
            "topic: the MQTT topic is the record key; none: no key.", validator=one_of("topic", "none"))
    .define("mqtt.headers.enable", ConfigType.BOOLEAN, True, Importance.LOW,
            "Add headers mqtt.topic, mqtt.qos, mqtt.retained and mqtt.duplicate.")
    .define("mqtt.payload.format", ConfigType.STRING, "bytes", Importance.MEDIUM,
            "bytes: the value is the payload (BYTES); string: the payload decoded as UTF-8.",
            validator=one_of("bytes", "string"))
    .define("max.batch.size", ConfigType.INT, 1000, Importance.LOW,
            "Most messages one poll returns.", validator=at_least(1))
)


def kafka_topic_values(mqtt_topic: str) -> dict[str, str]:
    """The template values of one MQTT topic."""
    levels = [_INVALID.sub("_", level) for level in mqtt_topic.split("/")]
    values = {"mqtt.topic": ".".join(levels)}
    values.update({f"mqtt.topic.{i}": level for i, level in enumerate(levels)})
    return values


class MqttSourceConnector(PropsConnector, SourceConnector):
    """Divides the topic filters among up to `tasks.max` tasks, each with its client id."""
    config_def = CONFIG

    def task_class(self) -> type[MqttSourceTask]:
        return MqttSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        filters = CONFIG.parse(self.props)[TOPICS]
        count = max(1, min(max_tasks, len(filters)))
        ids = mqtt_common.task_client_ids(self.props, count)
        return [{**self.props, TOPICS: ",".join(filters[i::count]), CLIENT_ID: ids[i]}
                for i in range(count)]


class MqttSourceTask(SourceTask):
    """Queues messages from paho's thread; `poll` turns them into records; `commit_record`
    acknowledges each to the MQTT server once Kafka has it."""

    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        parsed = CONFIG.parse(props)
        self.filters: list[str] = parsed[TOPICS]
        self.qos: int = parsed[QOS]
        self.template: str = parsed[KAFKA_TOPIC]
        self.keyed = parsed["mqtt.key"] == "topic"
        self.headers = bool(parsed["mqtt.headers.enable"])
        self.as_text = parsed["mqtt.payload.format"] == "string"
        self.batch = int(parsed["max.batch.size"])
        self.inbox: queue.Queue[tuple[Any, int]] = queue.Queue()
        # id(record) -> (record, mid, qos, connection generation), until Kafka acknowledges it
        self.unacked: dict[int, tuple[SourceRecord, int, int, int]] = {}
        self.lock = threading.Lock()
        self.connection: Connection | None = None
        client_id = parsed[CLIENT_ID] or mqtt_common.task_client_ids(props, 1)[0]
        self.generation = 0  # of the connection the last message came on
        self.connection = mqtt_common.connect(parsed, client_id, self._subscribe,
                                              {"on_message": self._received}, manual_ack=True)

    def _subscribe(self, client: Any) -> None:
        """After each connect (paho's thread): subscribe, and date what arrives from now on."""
        self.generation += 1
        client.subscribe([(f, self.qos) for f in self.filters])

    def _received(self, client: Any, userdata: Any, message: Any) -> None:
        self.inbox.put((message, self.generation))

    def poll(self) -> list[SourceRecord] | None:
        try:
            first = self.inbox.get(timeout=0.1)
        except queue.Empty:
            return None
        records = [self._record(*first)]
        while len(records) < self.batch:
            try:
                records.append(self._record(*self.inbox.get_nowait()))
            except queue.Empty:
                break
        return records

    def _record(self, message: Any, generation: int) -> SourceRecord:
        topic = message.topic
        payload = bytes(message.payload)
        value: Any = payload.decode("utf-8", errors="replace") if self.as_text else payload
        headers = Headers()
        if self.headers:
            headers.add("mqtt.topic", topic, STRING_SCHEMA).add("mqtt.qos", message.qos, INT32_SCHEMA)
            headers.add("mqtt.retained", bool(message.retain), BOOLEAN_SCHEMA)
            headers.add("mqtt.duplicate", bool(message.dup), BOOLEAN_SCHEMA)
        record = SourceRecord(render(self.template, kafka_topic_values(topic)), None,
                              STRING_SCHEMA if self.keyed else None, topic if self.keyed else None,
                              STRING_SCHEMA if self.as_text else BYTES_SCHEMA, value,
                              int(time.time() * 1000), headers)
        if message.qos > 0:
            with self.lock:
                self.unacked[id(record)] = (record, message.mid, message.qos, generation)
        return record

    def commit_record(self, record: SourceRecord, metadata: RecordMetadata | None) -> None:
        """Kafka has the record (or a transform dropped it): acknowledge the message, unless
        it came on an earlier connection, whose message ids mean nothing now (the server
        sends such a message again)."""
        with self.lock:
            entry = self.unacked.pop(id(record), None)
        connection = self.connection
        if entry is None or connection is None:
            return
        _, mid, qos, generation = entry
        if generation == self.generation and connection.connected.is_set():
            connection.client.ack(mid, qos)

    def stop(self) -> None:
        """Disconnect: messages not yet acknowledged stay with the MQTT server's session."""
        connection, self.connection = self.connection, None
        if connection is not None:
            mqtt_common.close(connection)

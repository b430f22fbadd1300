"""MQTT source and sink against a real Mosquitto and a real Strom broker.

Devices are paho clients publishing with QoS 1. The source keeps a persistent session
(clean session off, stable client id) and acknowledges a message only once Kafka has the
record: messages published while its task is down, across a Mosquitto restart, and
messages the task had received but could not write, all reach the topic.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from connect_support import read_topic, wait_for

from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.standalone import build
from strom.testing import StromBroker, free_port
from support.mosquitto import Mosquitto, mosquitto, mosquitto_available
from support.tls_certs import make_pki

__all__ = ["mosquitto"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")
STRINGS = {"key.converter": "org.apache.kafka.connect.storage.StringConverter",
           "value.converter": "org.apache.kafka.connect.storage.StringConverter"}
_ids = itertools.count()


@pytest.fixture
def herder(tmp_path: Path, strom_broker: StromBroker) -> Iterator[StandaloneHerder]:
    standalone = build({"bootstrap.servers": strom_broker.bootstrap_servers, **STRINGS,
                        "offset.storage.file.filename": str(tmp_path / "offsets"),
                        "offset.flush.interval.ms": "200", "offset.flush.timeout.ms": "1000",
                        "listeners": "http://127.0.0.1:0"})
    yield standalone.herder
    standalone.herder.stop()


def client(broker: Mosquitto, clean_session: bool = True, **tls: Any) -> mqtt.Client:
    """A connected paho client with its network thread running (reconnecting by itself)."""
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{next(_ids)}",
                         clean_session=clean_session)
    device.reconnect_delay_set(0.2, 1)
    if "user" in tls:
        device.username_pw_set(tls.pop("user"), tls.pop("password"))
    if tls:
        device.tls_set(**tls)
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    return device


def publish(broker: Mosquitto, messages: list[tuple[str, str]], **kwargs: Any) -> None:
    """Publish with QoS 1 and wait for every PUBACK: Mosquitto has them all."""
    device = client(broker, **kwargs)
    try:
        for info in [device.publish(topic, text, qos=1) for topic, text in messages]:
            info.wait_for_publish(30)
    finally:
        device.disconnect()
        device.loop_stop()


def telemetry(devices: int, numbers: range) -> list[tuple[str, str]]:
    return [(f"devices/d{d}/telemetry", f"d{d}:{n}") for n in numbers for d in range(devices)]


class Subscriber:
    """Collects (topic, payload, retained) of what arrives on `pattern`."""

    def __init__(self, broker: Mosquitto, pattern: str, clean_session: bool = True, **kwargs: Any) -> None:
        self.received: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.client = client(broker, clean_session, **kwargs)
        self.client.on_message = self._message
        self.client.subscribe(pattern, qos=1)

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.received.append((message.topic, message.payload.decode(), bool(message.retain)))

    def payloads(self) -> list[str]:
        with self.lock:
            return [payload for _, payload, _ in self.received]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def source(mqtt_broker: Mosquitto, topic: str, **extra: str) -> dict[str, str]:
    return {"connector.class": "MqttSource", "mqtt.server.uri": mqtt_broker.uri,
            "mqtt.topics": "devices/+/telemetry", "kafka.topic": topic,
            "mqtt.payload.format": "string", **extra}


def arrived(strom_broker: StromBroker, topic: str, expected: int) -> list[Any]:
    return read_topic(strom_broker.bootstrap_servers, topic, expected, timeout=5)


def check_per_device_order(messages: list[Any], devices: int, count: int) -> None:
    """Every (device, n) is there; first occurrences come in publishing order per device;
    each is keyed by its MQTT topic."""
    seen: dict[str, list[int]] = {}
    for m in messages:
        device, n = m.value().decode().split(":")
        assert m.key().decode() == f"devices/{device}/telemetry"
        numbers = seen.setdefault(device, [])
        if int(n) not in numbers:
            numbers.append(int(n))
    assert seen == {f"d{d}": list(range(count)) for d in range(devices)}


@pytest.mark.slow
def test_devices_to_topic_across_a_task_stop_and_a_mosquitto_restart(
        strom_broker: StromBroker, herder: StandaloneHerder, mosquitto: Mosquitto) -> None:
    topic = "connect-mqtt-telemetry"
    strom_broker.create_topic(topic, partitions=3)
    herder.put_config("iot", source(mosquitto, topic), allow_replace=False)
    wait_for(lambda: herder.status("iot")["tasks"][0]["state"] == "RUNNING", "the source task")
    publish(mosquitto, telemetry(3, range(40)))
    wait_for(lambda: len(arrived(strom_broker, topic, 120)) >= 120, "120 records")

    herder.stop_connector("iot")  # the task disconnects; its session stays with Mosquitto
    publish(mosquitto, telemetry(3, range(40, 80)))  # queued for the offline session
    mosquitto.restart()  # persistence keeps the session and the queued messages
    herder.resume("iot")
    messages = wait_for(lambda: (m := arrived(strom_broker, topic, 240)) and len(
        {x.value() for x in m}) >= 240 and m, "all 240 records")
    check_per_device_order(messages, 3, 80)
    header = dict(messages[0].headers())
    assert header["mqtt.topic"].decode().startswith("devices/d") and header["mqtt.qos"] == b"1"


def test_messages_received_but_not_written_are_sent_again(
        strom_broker: StromBroker, herder: StandaloneHerder, mosquitto: Mosquitto) -> None:
    """The first task cannot reach Kafka (its producer points at a closed port): it holds
    the messages without acknowledging them. Its replacement gets them again from
    Mosquitto and writes them; with acknowledgement on receipt they would be lost."""
    topic = "connect-mqtt-redelivered"
    strom_broker.create_topic(topic)
    dead = source(mosquitto, topic, **{"producer.override.bootstrap.servers": f"127.0.0.1:{free_port()}"})
    herder.put_config("iot-held", dead, allow_replace=False)
    wait_for(lambda: herder.status("iot-held")["tasks"][0]["state"] == "RUNNING", "the source task")
    publish(mosquitto, telemetry(2, range(25)))
    held = herder.connectors["iot-held"].tasks[0].parts.task
    wait_for(lambda: len(held.unacked) == 50, "the task to hold 50 messages")
    herder.put_config("iot-held", source(mosquitto, topic), allow_replace=True)
    messages = wait_for(lambda: (m := arrived(strom_broker, topic, 50)) and len(
        {x.value() for x in m}) >= 50 and m, "all 50 records")
    check_per_device_order(messages, 2, 25)
    assert any(dict(m.headers())["mqtt.duplicate"] == b"true" for m in messages)


def produce_lines(strom_broker: StromBroker, topic: str, items: list[tuple[str, str]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": strom_broker.bootstrap_servers})
    for key, value in items:
        producer.produce(topic, key=key.encode(), value=value.encode())
    assert producer.flush(30) == 0


def test_topic_to_mqtt_with_qos_and_retained(strom_broker: StromBroker, herder: StandaloneHerder,
                                             mosquitto: Mosquitto) -> None:
    topic = "connect-mqtt-commands"
    strom_broker.create_topic(topic, partitions=2)
    items = [(f"valve{i % 4}", f"set:{i}") for i in range(100)]
    produce_lines(strom_broker, topic, items)
    listener = Subscriber(mosquitto, "actuators/#")
    try:
        herder.put_config("actuators", {
            "connector.class": "MqttSink", "topics": topic, "mqtt.server.uri": mosquitto.uri,
            "mqtt.topic": "actuators/${topic}/${key}", "mqtt.qos": "2", "mqtt.retain": "true"},
            allow_replace=False)
        wait_for(lambda: len(listener.payloads()) >= 100, "100 messages at the subscriber")
        assert sorted(listener.payloads()) == sorted(v for _, v in items)
        for valve in range(4):  # per key, the Kafka order
            got = [p for t, p, _ in listener.received if t == f"actuators/{topic}/valve{valve}"]
            assert got == [v for k, v in items if k == f"valve{valve}"]
    finally:
        listener.close()
    late = Subscriber(mosquitto, "actuators/#")  # retained: the last command per valve
    try:
        wait_for(lambda: len(late.received) >= 4, "four retained messages")
        assert {(t, p, r) for t, p, r in late.received} == {
            (f"actuators/{topic}/valve{v}", f"set:{96 + v}", True) for v in range(4)}
    finally:
        late.close()


def committed(strom_broker: StromBroker, group: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": strom_broker.bootstrap_servers, "group.id": group})
    try:
        return max(consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset, 0)
    finally:
        consumer.close()


@pytest.mark.slow
def test_sink_commits_nothing_the_mqtt_server_has_not_acknowledged(
        strom_broker: StromBroker, herder: StandaloneHerder, mosquitto: Mosquitto,
        caplog: pytest.LogCaptureFixture) -> None:
    """Mosquitto stops: the sink's puts time out and are retried, the group's committed
    offset stays where the acknowledged messages end; Mosquitto returns: all arrive."""
    topic = "connect-mqtt-acked"
    strom_broker.create_topic(topic)
    listener = Subscriber(mosquitto, "acked/#", clean_session=False)  # survives the restart
    try:
        produce_lines(strom_broker, topic, [("k", f"m{i}") for i in range(30)])
        herder.put_config("acked", {
            "connector.class": "MqttSink", "topics": topic, "mqtt.server.uri": mosquitto.uri,
            "mqtt.topic": "acked/${topic}", "mqtt.publish.timeout.ms": "1000",
            "retry.backoff.ms": "200"}, allow_replace=False)
        wait_for(lambda: len(listener.payloads()) >= 30, "30 messages")
        wait_for(lambda: committed(strom_broker, "connect-acked", topic) == 30, "offset 30 committed")
        mosquitto.stop()
        produce_lines(strom_broker, topic, [("k", f"m{i}") for i in range(30, 60)])
        wait_for(lambda: "RetriableException from SinkTask" in caplog.text, "a put that timed out")
        assert committed(strom_broker, "connect-acked", topic) == 30
        mosquitto.start()
        wait_for(lambda: set(listener.payloads()) >= {f"m{i}" for i in range(60)}, "all 60 messages")
        wait_for(lambda: committed(strom_broker, "connect-acked", topic) == 60, "offset 60 committed")
    finally:
        listener.close()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    pki = make_pki(tmp_path / "pki")
    cert, key = pki.client_files(pki.broker, "mosquitto")
    with Mosquitto(tmp_path / "secured", users={"device": "d-secret", "connect": "c-secret"},
                   tls=(pki.ca_file, cert, key)) as broker:
        yield broker, pki.ca_file


def test_round_trip_over_tls_with_passwords(strom_broker: StromBroker, herder: StandaloneHerder,
                                            secured: tuple[Mosquitto, Path]) -> None:
    """devices → MQTT (TLS, login) → source → topic → sink → MQTT → a subscriber."""
    broker, ca = secured
    login = {"mqtt.username": "connect", "mqtt.password": "c-secret", "mqtt.ssl.ca.file": str(ca)}
    topic = "connect-mqtt-roundtrip"
    strom_broker.create_topic(topic)
    answer = herder.validate({"name": "in", **source(broker, topic), **login})
    assert answer["error_count"] == 0
    password = next(c["value"] for c in answer["configs"] if c["value"]["name"] == "mqtt.password")
    assert password["value"] == "[hidden]"
    listener = Subscriber(broker, "mirror/#", user="device", password="d-secret", ca_certs=str(ca))
    try:
        herder.put_config("in", {**source(broker, topic), **login}, allow_replace=False)
        herder.put_config("out", {"connector.class": "MqttSink", "topics": topic,
                                  "mqtt.server.uri": broker.uri, "mqtt.topic": "mirror/${key}",
                                  **login}, allow_replace=False)
        wait_for(lambda: all(herder.status(n)["tasks"][0]["state"] == "RUNNING" for n in ("in", "out")),
                 "both tasks")
        publish(broker, telemetry(2, range(30)), user="device", password="d-secret", ca_certs=str(ca))
        wait_for(lambda: len(set(listener.payloads())) >= 60, "60 mirrored messages")
        by_topic: dict[str, list[str]] = {}
        for t, p, _ in listener.received:
            by_topic.setdefault(t, []).append(p)
        assert {t: list(dict.fromkeys(p)) for t, p in by_topic.items()} == {
            f"mirror/devices/d{d}/telemetry": [f"d{d}:{n}" for n in range(30)] for d in range(2)}
    finally:
        listener.close()


def test_wrong_password_fails_the_task_with_the_reason(strom_broker: StromBroker, herder: StandaloneHerder,
                                                       secured: tuple[Mosquitto, Path]) -> None:
    broker, ca = secured
    herder.put_config("bad", {**source(broker, "connect-mqtt-never"), "mqtt.username": "connect",
                              "mqtt.password": "wrong", "mqtt.ssl.ca.file": str(ca),
                              "mqtt.connect.timeout.ms": "3000"}, allow_replace=False)
    status = wait_for(lambda: (s := herder.status("bad"))["tasks"] and s["tasks"][0]["state"] == "FAILED"
                      and s, "a failed task")
    assert "Could not connect to MQTT server" in status["tasks"][0]["trace"]
    assert "wrong" not in status["tasks"][0]["trace"]

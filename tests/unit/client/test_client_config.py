"""strom.client.config: the base every client gets, the role's defaults over it, the
caller's properties over both; and the package's import costs nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from strom.client import ClientSettings, KafkaClients, build_config
from strom.client.config import ADMIN_DEFAULTS
from strom.client.logs import LIBRDKAFKA_LOGGER


def test_the_base_config_fails_fast_and_routes_logs() -> None:
    conf = build_config(ClientSettings("b1:9092,b2:9092", timeout=7.5, client_id="app"))
    assert conf == {
        "bootstrap.servers": "b1:9092,b2:9092",
        "client.id": "app",
        "socket.connection.setup.timeout.ms": 5000,
        "socket.timeout.ms": 7500,
        "logger": LIBRDKAFKA_LOGGER,
    }


def test_role_defaults_override_the_base_and_properties_override_both() -> None:
    settings = ClientSettings("b:1", properties={"acks": "1", "socket.timeout.ms": "900"})
    conf = build_config(settings, {"acks": "all", "linger.ms": 10, "client.id": "role"})
    assert conf["acks"] == "1"  # the caller's property wins over the role's default
    assert conf["socket.timeout.ms"] == "900"  # and over the base
    assert conf["linger.ms"] == 10
    assert conf["client.id"] == "role"  # a role default wins over the base


def test_error_callback_and_logger_are_optional() -> None:
    def on_error(error: object) -> None:
        pass

    conf = build_config(ClientSettings(), error_cb=on_error, logger=None)
    assert conf["error_cb"] is on_error and "logger" not in conf
    assert conf["bootstrap.servers"] == "localhost:9092"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bootstrap_servers": " "}, "bootstrap_servers is empty"),
    ({"timeout": 0}, "timeout must be positive"),
])
def test_settings_refuse_what_no_client_can_use(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientSettings(**kwargs)  # type: ignore[arg-type]


def test_kafka_clients_wire_their_health_into_every_config() -> None:
    clients = KafkaClients("b:1", {"x.y": "z"}, timeout=3, client_id="t")
    conf = clients.config({"group.id": "g"})
    assert conf["error_cb"] == clients.health.on_error
    assert conf["group.id"] == "g" and conf["x.y"] == "z" and conf["socket.timeout.ms"] == 3000
    assert clients.bootstrap_servers == "b:1" and clients.timeout == 3
    assert ADMIN_DEFAULTS["allow.auto.create.topics"] is False


def test_importing_the_package_does_not_load_confluent_kafka() -> None:
    code = ("import sys, strom.client, strom.client.admin; "
            "assert 'confluent_kafka' not in sys.modules, 'loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_property_is_refused_as_a_client_error() -> None:
    pytest.importorskip("confluent_kafka")
    from strom.client import KafkaClientError

    clients = KafkaClients("127.0.0.1:1", {"no.such.property": "1"})
    with pytest.raises(KafkaClientError) as caught:
        clients.producer()
    assert caught.value.name == "_INVALID_ARG"
    assert "no.such.property" in caught.value.message and caught.value.hint
    assert not caught.value.retriable

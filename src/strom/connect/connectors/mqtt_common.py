"""What the MQTT source and sink share: connection settings, the paho client, topic templates.

Both connectors speak MQTT 3.1.1 through paho-mqtt 2.x. The client runs paho's network
thread (`loop_start`), which reconnects by itself with a backoff after the MQTT server
goes away, so a restarted Mosquitto is picked up without failing the task; a task only
fails when the first connection cannot be made within `mqtt.connect.timeout.ms` (a bad
address, refused credentials, a TLS error), with the reason in its trace.

`mqtt.password` is a PASSWORD config: the validate answer and logs show `[hidden]`.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from strom.connect.api.config import ConfigDef, ConfigType, Importance, Password, at_least, between
from strom.connect.api.errors import ConfigError, ConnectError

SERVER_URI = "mqtt.server.uri"
CLIENT_ID = "mqtt.client.id"
QOS = "mqtt.qos"
CLEAN_SESSION = "mqtt.clean.session"
DEFAULT_PORTS = {"tcp": 1883, "mqtt": 1883, "ssl": 8883, "mqtts": 8883}
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def _server_uri(name: str, value: object) -> None:
    if value is None:
        return
    parts = urlsplit(str(value))
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(name, value, "must be tcp://host:port or ssl://host:port")


def connection_config(clean_session_default: bool) -> ConfigDef:
    """The keys of the connection, shared by source and sink."""
    return (
        ConfigDef()
        .define(SERVER_URI, ConfigType.STRING, importance=Importance.HIGH, validator=_server_uri,
                documentation="The MQTT server: tcp://host:port, or ssl://host:port for TLS.")
        .define(CLIENT_ID, ConfigType.STRING, None, Importance.MEDIUM,
                "MQTT client id prefix; each task appends -<task number>. A persistent session "
                "is found again by this id. Default strom-connect-<connector name>.")
        .define(CLEAN_SESSION, ConfigType.BOOLEAN, clean_session_default, Importance.MEDIUM,
                "Start a clean MQTT session at each connect. False keeps the session (its "
                "subscriptions and queued QoS 1/2 messages) while the task is down.")
        .define(QOS, ConfigType.INT, 1, Importance.MEDIUM, "MQTT QoS: 0, 1 or 2.",
                validator=between(0, 2))
        .define("mqtt.keepalive.interval.s", ConfigType.INT, 60, Importance.LOW,
                "MQTT keep-alive interval.", validator=at_least(1))
        .define("mqtt.connect.timeout.ms", ConfigType.INT, 30_000, Importance.LOW,
                "How long a starting task waits for its first connection.", validator=at_least(1))
        .define("mqtt.username", ConfigType.STRING, None, Importance.MEDIUM, "MQTT user name.")
        .define("mqtt.password", ConfigType.PASSWORD, None, Importance.MEDIUM, "MQTT password.")
        .define("mqtt.ssl.ca.file", ConfigType.STRING, None, Importance.LOW,
                "PEM file of the CAs that sign the server's certificate (ssl:// only; the "
                "system's CAs if unset).")
        .define("mqtt.ssl.cert.file", ConfigType.STRING, None, Importance.LOW,
                "PEM client certificate, for servers that require one.")
        .define("mqtt.ssl.key.file", ConfigType.STRING, None, Importance.LOW,
                "PEM key of the client certificate.")
        .define("mqtt.ssl.verify.hostname", ConfigType.BOOLEAN, True, Importance.LOW,
                "Check that the server's certificate names the host of mqtt.server.uri.")
    )


def task_client_ids(props: Mapping[str, str], count: int) -> list[str]:
    """A stable MQTT client id per task: the same task finds its session again."""
    base = props.get(CLIENT_ID) or f"strom-connect-{props.get('name', 'connector')}"
    return [f"{base}-{i}" for i in range(count)]


def render(template: str, values: Mapping[str, str]) -> str:
    """`${name}` replaced by values[name]; an unknown name is a ConnectError."""
    def one(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise ConnectError(f"Unknown placeholder ${{{match.group(1)}}} in '{template}'") from None

    return _PLACEHOLDER.sub(one, template)


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


@dataclass
class Connection:
    """A connected paho client and the state its callbacks share with the task thread."""

    client: Any
    connected: threading.Event
    generation: int = 0  # counts connects: message ids of an older connection are stale
    refused: str | None = None


def connect(parsed: Mapping[str, Any], client_id: str, on_connect: Callable[[Any], None],
            settings: Mapping[str, Any] | None = None, **client_options: Any
            ) -> Connection:
    """A paho client connected to `mqtt.server.uri`, its network thread running;
    `on_connect(client)` runs after every successful (re)connect; `settings` are paho
    client attributes (`on_message`, `max_inflight_messages`, ...) set before the first
    connect, so nothing that arrives early is missed."""
    import paho.mqtt.client as mqtt

    uri = urlsplit(parsed[SERVER_URI])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=parsed[CLEAN_SESSION], protocol=mqtt.MQTTv311, **client_options)
    connection = Connection(client, threading.Event())
    if parsed["mqtt.username"]:
        password = parsed["mqtt.password"]
        client.username_pw_set(parsed["mqtt.username"],
                               password.value if isinstance(password, Password) else password)
    if uri.scheme in ("ssl", "mqtts"):
        _tls(client, parsed)
    client.reconnect_delay_set(min_delay=1, max_delay=10)

    def connected(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            connection.refused = str(reason)
            return
        connection.generation += 1
        connection.refused = None
        on_connect(client)
        connection.connected.set()

    def disconnected(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        connection.connected.clear()

    client.on_connect, client.on_disconnect = connected, disconnected
    for name, setting in (settings or {}).items():
        setattr(client, name, setting)
    client.connect_async(uri.hostname, uri.port or DEFAULT_PORTS[uri.scheme],
                         keepalive=parsed["mqtt.keepalive.interval.s"])
    client.loop_start()
    if not connection.connected.wait(parsed["mqtt.connect.timeout.ms"] / 1000):
        close(connection)
        reason = connection.refused or "no answer"
        raise ConnectError(f"Could not connect to MQTT server {parsed[SERVER_URI]} as {client_id}: {reason}")
    return connection


def _tls(client: Any, parsed: Mapping[str, Any]) -> None:
    context = ssl.create_default_context(cafile=parsed["mqtt.ssl.ca.file"])
    if parsed["mqtt.ssl.cert.file"]:
        context.load_cert_chain(parsed["mqtt.ssl.cert.file"], parsed["mqtt.ssl.key.file"])
    context.check_hostname = bool(parsed["mqtt.ssl.verify.hostname"])
    client.tls_set_context(context)


def close(connection: Connection) -> None:
    """Disconnect (queued packets, acknowledgements included, go out first) and stop the
    network thread."""
    try:
        connection.client.disconnect()
    finally:
        connection.client.loop_stop()

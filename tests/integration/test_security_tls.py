"""TLS listeners with Kafka's `ssl.*` configs, through real clients.

One broker serves four listeners: PLAINTEXT; MTLS (SSL, `ssl.client.auth=required`, a
PEM keystore file with an encrypted key, `ssl.principal.mapping.rules` that accept only
certificates of OU=eng); EXTERNAL (SSL without client certificates, a PKCS12 keystore
given through listener-prefixed configs); MODERN (SSL limited to TLSv1.3 by
`listener.name.modern.ssl.enabled.protocols`). confluent-kafka, kcat and kafka-python
produce and consume over them; untrusted, expired and missing client certificates, a
certificate no mapping rule accepts, a TLS 1.2 client on a TLS 1.3 listener and a
plaintext client on a TLS port are refused without harming the broker.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from support.broker_process import BrokerProcess, free_port
from support.clients import unique_topic
from support.raw_client import ConnectionClosed, RawClient, make_request
from support.tls_certs import KEY_PASSWORD, STORE_PASSWORD, Pki, make_pki

API_VERSIONS = 18


class Tls:
    def __init__(self, pki: Pki, broker: BrokerProcess, ports: dict[str, int]) -> None:
        self.pki, self.broker, self.ports = pki, broker, ports

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    base = tmp_path_factory.mktemp("tls")
    pki = make_pki(base / "pki")
    ports = {name: free_port() for name in ("PLAINTEXT", "MTLS", "EXTERNAL", "MODERN")}
    broker = BrokerProcess(base / "data", port=ports["PLAINTEXT"], overrides={
        "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,MTLS:SSL,EXTERNAL:SSL,MODERN:SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker_pem_keystore()),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_file),
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=eng,.*$/$1/L",
        "listener.name.external.ssl.client.auth": "none",
        "listener.name.external.ssl.keystore.type": "PKCS12",
        "listener.name.external.ssl.keystore.location": str(pki.broker_p12_keystore()),
        "listener.name.external.ssl.keystore.password": STORE_PASSWORD,
        "listener.name.external.ssl.key.password": STORE_PASSWORD,
        "listener.name.modern.ssl.client.auth": "none",
        "listener.name.modern.ssl.enabled.protocols": "TLSv1.3",
        "strom.request.receive.timeout.ms": "2000",  # also bounds a TLS handshake
    }).start()
    yield Tls(pki, broker, ports)
    code = broker.stop()
    assert code == 0, f"broker exited with {code}; log:\n{broker.log_text()}"


def _librdkafka_ssl(tls: Tls, listener: str, who: str | None) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": tls.address(listener),
                            "security.protocol": "SSL",
                            "ssl.ca.location": str(tls.pki.ca_file)}
    if who is not None:
        cert, key = tls.pki.client_files(getattr(tls.pki, who), who)
        conf.update({"ssl.certificate.location": str(cert), "ssl.key.location": str(key)})
    return conf


def _roundtrip(conf: dict[str, Any], topic: str, count: int = 20) -> list[bytes]:
    producer = Producer({**conf, "linger.ms": 5})
    acked: list[Any] = []
    for i in range(count):
        producer.produce(topic, f"m{i}".encode(),
                         on_delivery=lambda err, msg: acked.append(err or msg.offset()))
    assert producer.flush(30) == 0
    assert all(isinstance(a, int) for a in acked), acked
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(200):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
            if len(values) >= count:
                break
    finally:
        consumer.close()
    return values


def test_confluent_kafka_over_mutual_tls(tls: Tls) -> None:
    topic = unique_topic("mtls")
    values = _roundtrip(_librdkafka_ssl(tls, "MTLS", "alice"), topic)
    assert values == [f"m{i}".encode() for i in range(20)]


def test_metadata_names_the_listener_the_client_came_in_on(tls: Tls) -> None:
    admin = AdminClient(_librdkafka_ssl(tls, "EXTERNAL", None))
    brokers = admin.list_topics(timeout=15).brokers
    assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", tls.ports["EXTERNAL"])]


def test_confluent_kafka_over_tls_with_a_pkcs12_keystore(tls: Tls) -> None:
    topic = unique_topic("p12")
    assert len(_roundtrip(_librdkafka_ssl(tls, "EXTERNAL", None), topic, 5)) == 5


def test_kcat_over_tls(tls: Tls) -> None:
    topic = unique_topic("kcat-tls")
    ssl_args = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={tls.pki.ca_file}"]
    cert, key = tls.pki.client_files(tls.pki.alice, "alice")
    mtls_args = [*ssl_args, "-X", f"ssl.certificate.location={cert}",
                 "-X", f"ssl.key.location={key}"]
    subprocess.run(["kcat", "-b", tls.address("MTLS"), *mtls_args, "-P", "-t", topic],
                   input=b"one\ntwo\n", check=True, timeout=60)
    out = subprocess.run(["kcat", "-b", tls.address("EXTERNAL"), *ssl_args, "-C", "-t", topic,
                          "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=60)
    assert out.stdout.split() == [b"one", b"two"]


def test_kafka_python_over_tls(tls: Tls) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = unique_topic("kp-tls")
    common: dict[str, Any] = {"bootstrap_servers": tls.address("EXTERNAL"),
                              "security_protocol": "SSL", "ssl_cafile": str(tls.pki.ca_file)}
    producer = KafkaProducer(**common)
    producer.send(topic, b"hello").get(timeout=30)
    producer.close()
    cert, key = tls.pki.client_files(tls.pki.alice, "alice")
    consumer = KafkaConsumer(topic, **{**common, "bootstrap_servers": tls.address("MTLS"),
                                       "ssl_certfile": str(cert), "ssl_keyfile": str(key)},
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    try:
        assert [m.value for m in consumer] == [b"hello"]
    finally:
        consumer.close()


def _tls_refusal(tls: Tls, listener: str, ctx: ssl.SSLContext) -> str | None:
    """None when an ApiVersions request over TLS is answered, else how the broker
    refused: the TLS alert it sent, or 'closed'."""
    client = RawClient(tls.address(listener), timeout=15)
    try:
        client.sock = ctx.wrap_socket(client.sock, server_hostname="localhost")
        client.request(API_VERSIONS, 3, make_request(API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}))
        return None
    except TimeoutError:
        return None  # a hang is not a clean refusal: the caller's assertion fails
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
    except (OSError, ConnectionClosed):
        return "closed"
    finally:
        client.close()


def _tls_api_versions(tls: Tls, listener: str, ctx: ssl.SSLContext) -> bool:
    return _tls_refusal(tls, listener, ctx) is None


def test_a_trusted_client_certificate_is_served(tls: Tls) -> None:
    assert _tls_api_versions(tls, "MTLS", tls.pki.client_context(tls.pki.alice, "alice"))


@pytest.mark.parametrize("who", ["rogue", "expired", None, "bob"])
def test_bad_client_certificates_are_refused(tls: Tls, who: str | None) -> None:
    """An unknown CA, an expired certificate, none at all, and a certificate the mapping
    rules do not accept (OU=sales): each connection is refused, the broker serves on."""
    ctx = tls.pki.client_context(getattr(tls.pki, who) if who else None, who or "none")
    refusal = _tls_refusal(tls, "MTLS", ctx)
    # the client learns why, as from Kafka: a TLS alert (its certificate is checked in
    # the handshake), or a close once the handshake is done (no mapping rule matched)
    expected = {"rogue": "ALERT_UNKNOWN_CA", "expired": "ALERT_CERTIFICATE_EXPIRED",
                None: "ALERT_CERTIFICATE_REQUIRED", "bob": "closed"}[who]
    assert refusal is not None and expected in refusal, refusal
    assert tls.broker.is_alive()
    assert _tls_api_versions(tls, "MTLS", tls.pki.client_context(tls.pki.alice, "alice"))


def test_tls12_client_is_refused_by_a_tls13_listener(tls: Tls) -> None:
    assert _tls_api_versions(tls, "MODERN", tls.pki.client_context(None))
    assert not _tls_api_versions(tls, "MODERN", tls.pki.client_context(
        None, maximum=ssl.TLSVersion.TLSv1_2))
    assert _tls_api_versions(tls, "EXTERNAL", tls.pki.client_context(
        None, maximum=ssl.TLSVersion.TLSv1_2))


def test_a_client_that_does_not_trust_the_broker_gives_up(tls: Tls) -> None:
    ctx = ssl.create_default_context()  # the system CAs: not our test CA
    assert not _tls_api_versions(tls, "EXTERNAL", ctx)


def test_plaintext_on_a_tls_port_is_closed_cleanly(tls: Tls) -> None:
    with RawClient(tls.address("EXTERNAL"), timeout=15) as client:
        client.send(API_VERSIONS, 3, make_request(API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}))
        assert client.is_closed_by_peer(timeout=10)
    with socket.create_connection(("127.0.0.1", tls.ports["MTLS"]), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a TLS record header, then garbage
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1024):  # a TimeoutError here: the broker hung
                received += chunk
        assert len(received) < 1024  # at most a TLS alert, then the close
    with RawClient(tls.broker.bootstrap) as client:  # the plaintext listener still serves
        client.request(API_VERSIONS, 3, make_request(API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}))


def test_secrets_are_masked_in_describe_configs(tls: Tls) -> None:
    admin = AdminClient({"bootstrap.servers": tls.broker.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0")
    entries = admin.describe_configs([resource])[resource].result(timeout=15)
    for name in ("ssl.key.password", "listener.name.external.ssl.keystore.password"):
        entry = entries[name]
        assert entry.is_sensitive and entry.value is None, (name, entry)
    assert entries["ssl.client.auth"].value == "required"
    assert KEY_PASSWORD not in Path(tls.broker.log_path).read_text()
    assert STORE_PASSWORD not in Path(tls.broker.log_path).read_text()


def test_a_client_that_never_finishes_its_handshake_is_dropped(tls: Tls) -> None:
    """A TLS handshake holds no connection slot until it is done, so one left hanging
    is closed after strom.request.receive.timeout.ms rather than kept."""
    with socket.create_connection(("127.0.0.1", tls.ports["EXTERNAL"]), timeout=30) as sock:
        sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1024):  # TimeoutError (30 s): kept open, the bug
                received += chunk

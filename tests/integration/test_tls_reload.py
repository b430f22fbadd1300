"""Certificate rotation without a restart (issue 15), as Kafka reloads a listener's SSL
factory: `listener.name.<l>.ssl.keystore.location` altered on this broker's BROKER
resource through IncrementalAlterConfigs (confluent-kafka's AdminClient).

New TLS connections get the new certificate; a connection opened before keeps working
on the session it negotiated; the change is validated first — a keystore whose subject
differs, one that does not load, an unprefixed name and a cluster-wide change are
refused with INVALID_REQUEST, and the listener keeps its certificate.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from cryptography import x509

from strom.client import KafkaClientError, KafkaClients
from strom.client.broker_configs import alter_broker_configs
from support.broker_process import BrokerProcess, free_port, wait_until
from support.raw_client import RawClient, make_request
from support.tls_certs import KEY_PASSWORD, Pki, _issue, make_pki

API_VERSIONS = 18
KEYSTORE = "listener.name.tls.ssl.keystore.location"


@dataclass
class Rotating:
    broker: BrokerProcess
    tls_port: int
    old: Pki
    new: Pki
    trust: ssl.SSLContext

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.broker.bootstrap})


def _renewed(pki: Pki, directory: Path) -> Pki:
    """The same PKI with the broker's certificate renewed: same CA, subject and SANs,
    a new key and serial number (what a rotation installs), written to `directory`."""
    san = pki.broker.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    renewed = _issue(pki.broker.cert.subject, pki.ca, sans=list(san.value))
    directory.mkdir()
    return dataclasses.replace(pki, dir=directory, broker=renewed)


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[Rotating]:
    old = make_pki(tmp_path / "old")
    new = _renewed(old, tmp_path / "new")
    trust = ssl.create_default_context(cafile=str(old.ca_file))
    plain, tls_port = free_port(), free_port()
    broker = BrokerProcess(tmp_path / "data", port=plain, overrides={
        "listeners": f"PLAINTEXT://127.0.0.1:{plain},TLS://127.0.0.1:{tls_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,TLS:SSL",
        "listener.name.tls.ssl.keystore.type": "PEM",
        KEYSTORE: str(old.broker_pem_keystore()),
        "listener.name.tls.ssl.key.password": KEY_PASSWORD,
    }).start()
    yield Rotating(broker, tls_port, old, new, trust)
    code = broker.stop()
    assert code == 0, f"broker exited with {code}; log:\n{broker.log_text()}"


def _connect(rotating: Rotating) -> RawClient:
    client = RawClient(f"127.0.0.1:{rotating.tls_port}", timeout=15)
    client.sock = rotating.trust.wrap_socket(client.sock, server_hostname="localhost")
    return client


def _answers(client: RawClient) -> bool:
    body = client.request(API_VERSIONS, 3, make_request(API_VERSIONS, 3, {
        "client_software_name": "t", "client_software_version": "1"})).body
    return int(body.error_code) == 0


def _serial(client: RawClient) -> int:
    der = client.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
    return int(x509.load_der_x509_certificate(der).serial_number)


def _served_serial(rotating: Rotating) -> int:
    with _connect(rotating) as client:
        return _serial(client)


def _alter(rotating: Rotating, name: str, value: str, broker: str = "0") -> None:
    resource = ConfigResource(ResourceType.BROKER, broker, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])
    admin = rotating.admin()  # held: futures fail once their client is destroyed
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def _refusal(rotating: Rotating, name: str, value: str, broker: str) -> str:
    with pytest.raises(KafkaException) as caught:
        _alter(rotating, name, value, broker)
    error = caught.value.args[0]
    assert error.code() == KafkaError.INVALID_REQUEST, error
    return str(error.str())


def _broker_id(rotating: Rotating) -> str:
    return str(next(iter(rotating.admin().list_topics(timeout=15).brokers)))


def test_a_rotated_certificate_serves_new_connections_and_old_ones_keep_working(
        rotating: Rotating) -> None:
    before = _connect(rotating)
    assert _answers(before) and _serial(before) == rotating.old.broker.cert.serial_number
    _alter(rotating, KEYSTORE, str(rotating.new.broker_pem_keystore()), _broker_id(rotating))
    wanted = rotating.new.broker.cert.serial_number
    wait_until(lambda: _served_serial(rotating) == wanted, 30, "the new certificate served")
    assert _answers(before), "a connection opened before the rotation stopped working"
    assert _serial(before) == rotating.old.broker.cert.serial_number
    before.close()
    assert "reloaded its keystore and truststore" in rotating.broker.log_text()


def test_invalid_rotations_are_refused_and_change_nothing(rotating: Rotating,
                                                          tmp_path: Path) -> None:
    broker_id = _broker_id(rotating)
    other = tmp_path / "alice-keystore.pem"  # CN=alice: another subject
    other.write_bytes(rotating.old.alice.key_pem(KEY_PASSWORD) + rotating.old.alice.cert_pem())
    assert "DistinguishedName does not match" in _refusal(rotating, KEYSTORE, str(other),
                                                          broker_id)
    assert "SSLFactory failed" in _refusal(rotating, KEYSTORE, str(tmp_path / "none.pem"),
                                           broker_id)
    assert "only per-listener using the listener prefix" in _refusal(
        rotating, "ssl.keystore.location", str(rotating.new.broker_pem_keystore()), broker_id)
    # the cluster-wide default ("" resource): librdkafka cannot name it, strom.client can
    with pytest.raises(KafkaClientError) as caught:
        alter_broker_configs(KafkaClients(rotating.broker.bootstrap), None,
                             {KEYSTORE: str(rotating.new.broker_pem_keystore())})
    assert caught.value.name == "INVALID_REQUEST"
    assert "broker id must be specified" in caught.value.message
    assert _served_serial(rotating) == rotating.old.broker.cert.serial_number

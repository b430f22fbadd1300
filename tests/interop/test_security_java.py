"""Kafka's Java clients over TLS, mutual TLS and SASL_SSL (PLAIN, SCRAM-SHA-512), against
Strom and against Apache Kafka 4.4 configured the same way.

Both brokers get the same listener settings under Kafka's names: a PLAINTEXT listener
for administration, SASL_SSL with PLAIN users from the listener's JAAS config and SCRAM
users created with AlterUserScramCredentials, and an SSL listener that requires client
certificates; the broker keystore is PKCS12, the truststore PEM. Kafka's own console
producer, console consumer and kafka-topics connect with client property files, as a
user would; a wrong password and an untrusted client certificate are refused by both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism
from confluent_kafka.admin import UserScramCredentialUpsertion as Upsertion

from support.broker_process import BrokerProcess, free_port
from support.interop import Target, kafka_dist
from support.tls_certs import STORE_PASSWORD, Pki, make_pki

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" user_admin="admin-secret" '
              'user_alice="alice-secret";')


@dataclass
class Secured:
    target: Target
    sasl_ssl: str
    mtls: str
    pki: Pki
    dir: Path

    def client_props(self, name: str, props: dict[str, str]) -> str:
        path = self.dir / f"{name}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return str(path)

    def sasl(self, mechanism: str, user: str, password: str) -> str:
        module = ("plain.PlainLoginModule" if mechanism == "PLAIN"
                  else "scram.ScramLoginModule")
        return self.client_props(f"sasl-{mechanism}-{user}-{password}", {
            "security.protocol": "SASL_SSL", "sasl.mechanism": mechanism,
            "sasl.jaas.config": f"org.apache.kafka.common.security.{module} required "
                                f'username="{user}" password="{password}";',
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.pki.ca_file)})

    def mtls_props(self, who: str) -> str:
        issued = getattr(self.pki, who)
        keystore = self.dir / f"{who}-keystore.pem"
        keystore.write_bytes(issued.key_pem() + issued.cert_pem())
        return self.client_props(f"mtls-{who}", {
            "security.protocol": "SSL", "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.pki.ca_file)})


def _security_props(pki: Pki, sasl_port: int, mtls_port: int) -> dict[str, str]:
    return {
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.broker_p12_keystore()),
        "ssl.keystore.password": STORE_PASSWORD,
        "ssl.key.password": STORE_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_file),
        "listener.name.mtls.ssl.client.auth": "required",
    }


def _add_scram_user(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.alter_user_scram_credentials([Upsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"carol-secret")])
    for future in futures.values():
        future.result(timeout=30)


@pytest.fixture(scope="module", params=["strom", "kafka"])
def secured(request: pytest.FixtureRequest, kafka_lib: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    base = tmp_path_factory.mktemp(f"security-{request.param}")
    pki = make_pki(base / "pki")
    plain, sasl_port, mtls_port = free_port(), free_port(), free_port()
    listeners = (f"PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl_port},"
                 f"MTLS://127.0.0.1:{mtls_port}")
    props = _security_props(pki, sasl_port, mtls_port)
    if request.param == "strom":
        broker = BrokerProcess(base / "data", port=plain, overrides={
            "listeners": listeners,
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL", **props}).start()
        stop = broker.stop
    else:
        controller = free_port()
        kafka = kafka_dist.KafkaBroker(base / "kafka", port=plain, controller_port=controller,
                                       overrides={
            "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": listeners,
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                              "SASL_SSL:SASL_SSL,MTLS:SSL", **props})
        kafka.start()
        stop = kafka.stop
    _add_scram_user(f"127.0.0.1:{plain}")
    yield Secured(Target(request.param, f"127.0.0.1:{plain}", 1), f"127.0.0.1:{sasl_port}",
                  f"127.0.0.1:{mtls_port}", pki, base)
    stop()


def test_java_producer_over_sasl_ssl_and_consumer_over_mtls(secured: Secured) -> None:
    topic = f"jsec-{uuid.uuid4().hex[:8]}"
    target = secured.target
    target.tool_ok("TopicCommand", "--bootstrap-server", secured.sasl_ssl, "--command-config",
                   secured.sasl("PLAIN", "alice", "alice-secret"), "--create", "--topic", topic,
                   "--partitions", "1", "--replication-factor", "1")
    target.tool_ok("ConsoleProducer", "--bootstrap-server", secured.sasl_ssl, "--topic", topic,
                   "--command-config", secured.sasl("SCRAM-SHA-512", "carol", "carol-secret"),
                   input="one\ntwo\nthree\n")
    out = target.tool_ok("consumer.ConsoleConsumer", "--bootstrap-server", secured.mtls,
                         "--topic", topic, "--from-beginning", "--max-messages", "3",
                         "--timeout-ms", "30000", "--command-config",
                         secured.mtls_props("alice"))
    assert out.split() == ["one", "two", "three"]


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "wrong"), ("SCRAM-SHA-512", "carol", "wrong"),
    ("SCRAM-SHA-512", "nobody", "wrong")])
def test_java_admin_with_a_wrong_password_is_refused(secured: Secured, mechanism: str,
                                                    user: str, password: str) -> None:
    result = secured.target.tool("TopicCommand", "--bootstrap-server", secured.sasl_ssl,
                                 "--command-config", secured.sasl(mechanism, user, password),
                                 "--list")
    assert result.returncode != 0
    assert "Authentication failed" in result.stdout + result.stderr


def test_java_client_with_an_untrusted_certificate_is_refused(secured: Secured) -> None:
    result = secured.target.tool("TopicCommand", "--bootstrap-server", secured.mtls,
                                 "--command-config", secured.mtls_props("rogue"), "--list",
                                 timeout=120)
    assert result.returncode != 0
    assert "SSL" in result.stdout + result.stderr


def test_kafka_configs_manages_scram_users(secured: Secured) -> None:
    """kafka-configs --entity-type users: add a SCRAM credential, describe it, log in
    with it from the Java client, delete it."""
    target = secured.target
    name = f"user-{uuid.uuid4().hex[:6]}"
    common = ["--bootstrap-server", target.bootstrap, "--entity-type", "users",
              "--entity-name", name]
    target.tool_ok("ConfigCommand", *common, "--alter", "--add-config",
                   "SCRAM-SHA-512=[iterations=8192,password=pw-secret]")
    described = target.tool_ok("ConfigCommand", *common, "--describe")
    assert "SCRAM-SHA-512=iterations=8192" in described, described
    target.tool_ok("TopicCommand", "--bootstrap-server", secured.sasl_ssl, "--command-config",
                   secured.sasl("SCRAM-SHA-512", name, "pw-secret"), "--list")
    target.tool_ok("ConfigCommand", *common, "--alter", "--delete-config", "SCRAM-SHA-512")
    refused = target.tool("TopicCommand", "--bootstrap-server", secured.sasl_ssl,
                          "--command-config", secured.sasl("SCRAM-SHA-512", name, "pw-secret"),
                          "--list")
    assert refused.returncode != 0 and "Authentication failed" in refused.stdout + refused.stderr

"""SASL (PLAIN, SCRAM-SHA-256/512) with Kafka's state machine, through real clients.

One broker: PLAINTEXT (administration), SASL_SSL (all three mechanisms; its key and
certificate chain given inline through listener-prefixed configs), SASL_PLAINTEXT
(PLAIN and SCRAM-SHA-256 only, by `listener.name.sasl_plaintext.sasl.enabled.mechanisms`)
and REAUTH (SASL_PLAINTEXT with `connections.max.reauth.ms`). SCRAM users are created
with AlterUserScramCredentials through confluent-kafka's AdminClient. confluent-kafka,
kcat and kafka-python authenticate; the raw-protocol tests pin what Kafka answers and
when it closes: requests before authentication, unknown mechanisms, wrong passwords and
unknown users (answered alike), a SCRAM nonce or proof that does not fit, raw v0 tokens,
re-authentication (KIP-368).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from support.broker_process import BrokerProcess, free_port
from support.clients import unique_topic
from support.raw_client import RawClient, make_request
from support.tls_certs import make_pki

API_VERSIONS, METADATA, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 3, 17, 36
DESCRIBE_SCRAM, ALTER_SCRAM = 50, 51
ILLEGAL_SASL_STATE, UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 34, 33, 58
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" user_admin="admin-secret" '
              'user_alice="alice-secret";')
REAUTH_MS = 2000
USERS = {"scram256": ("SCRAM-SHA-256", "s256-secret"), "scram512": ("SCRAM-SHA-512", "s512-secret")}


class Sasl:
    def __init__(self, broker: BrokerProcess, ports: dict[str, int], ca_file: Path) -> None:
        self.broker, self.ports, self.ca_file = broker, ports, ca_file

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def librdkafka(self, listener: str, mechanism: str, user: str, password: str
                   ) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.address(listener),
            "security.protocol": "SASL_SSL" if listener == "SASL_SSL" else "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
        if listener == "SASL_SSL":
            conf["ssl.ca.location"] = str(self.ca_file)
        return conf


@pytest.fixture(scope="module")
def sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sasl]:
    base = tmp_path_factory.mktemp("sasl")
    pki = make_pki(base / "pki")
    ports = {name: free_port() for name in ("PLAINTEXT", "SASL_SSL", "SASL_PLAINTEXT", "REAUTH",
                                            "OAUTH")}
    overrides = {
        "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "REAUTH:SASL_PLAINTEXT,OAUTH:SASL_PLAINTEXT",
        "listener.name.oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.oauth.connections.max.reauth.ms": "600000",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
        "listener.name.sasl_ssl.ssl.keystore.key": pki.broker.key_pem().decode(),
        "listener.name.sasl_ssl.ssl.keystore.certificate.chain":
            (pki.broker.cert_pem() + pki.ca.cert_pem()).decode(),
        "listener.name.reauth.connections.max.reauth.ms": str(REAUTH_MS),
        **{f"listener.name.{n}.plain.sasl.jaas.config": PLAIN_JAAS
           for n in ("sasl_ssl", "sasl_plaintext", "reauth")},
    }
    broker = BrokerProcess(base / "data", port=ports["PLAINTEXT"], overrides=overrides).start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, ScramCredentialInfo(
            getattr(ScramMechanism, mech.replace("-", "_")), 8192), password.encode())
        for user, (mech, password) in USERS.items()])
    for future in futures.values():
        future.result(timeout=15)
    yield Sasl(broker, ports, pki.ca_file)
    code = broker.stop()
    assert code == 0, f"broker exited with {code}; log:\n{broker.log_text()}"


def _roundtrip(conf: dict[str, Any], topic: str, count: int = 10) -> list[bytes]:
    producer = Producer({**conf, "linger.ms": 5})
    errors: list[Any] = []
    for i in range(count):
        producer.produce(topic, f"m{i}".encode(),
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert producer.flush(30) == 0 and not errors, errors
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


# --- real clients -----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "alice-secret"),
    ("SCRAM-SHA-256", "scram256", "s256-secret"),
    ("SCRAM-SHA-512", "scram512", "s512-secret"),
])
def test_confluent_kafka_over_sasl_ssl(sasl: Sasl, mechanism: str, user: str,
                                      password: str) -> None:
    topic = unique_topic("sasl-ssl")
    values = _roundtrip(sasl.librdkafka("SASL_SSL", mechanism, user, password), topic)
    assert values == [f"m{i}".encode() for i in range(10)]


def _kcat_sasl(sasl: Sasl, mechanism: str, user: str, password: str) -> list[str]:
    return ["-b", sasl.address("SASL_SSL"), "-X", "security.protocol=sasl_ssl",
            "-X", f"ssl.ca.location={sasl.ca_file}", "-X", f"sasl.mechanism={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]


def test_kcat_over_sasl_ssl_with_plain(sasl: Sasl) -> None:
    topic = unique_topic("kcat-sasl")
    args = _kcat_sasl(sasl, "PLAIN", "alice", "alice-secret")
    subprocess.run(["kcat", *args, "-P", "-t", topic], input=b"a\nb\n", check=True,
                   timeout=60)
    out = subprocess.run(["kcat", *args, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=60)
    assert out.stdout.split() == [b"a", b"b"]


def test_kcat_scram_is_refused_for_its_nonce_as_kafka_4_refuses_it(sasl: Sasl) -> None:
    """kcat 1.7.1 embeds librdkafka 2.0.2, whose SCRAM client-final message repeats the
    client nonce before the server's (fixed in librdkafka 2.6.1). Kafka 4.x compares the
    nonce strictly (RFC 5802, CVE-2024-56128) and refuses it; so does Strom. The newer
    librdkafka of confluent-kafka authenticates (test_confluent_kafka_over_sasl_ssl)."""
    out = subprocess.run(["kcat", *_kcat_sasl(sasl, "SCRAM-SHA-512", "scram512", "s512-secret"),
                          "-L", "-m", "10"], capture_output=True, timeout=60)
    assert out.returncode != 0
    assert b"invalid credentials with SASL mechanism SCRAM-SHA-512" in out.stderr
    assert sasl.broker.is_alive()


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "alice-secret"),
    ("SCRAM-SHA-256", "scram256", "s256-secret"),
])
def test_kafka_python_over_sasl_plaintext(sasl: Sasl, mechanism: str, user: str,
                                          password: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = unique_topic("kp-sasl")
    common: dict[str, Any] = {
        "bootstrap_servers": sasl.address("SASL_PLAINTEXT"),
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": user, "sasl_plain_password": password}
    producer = KafkaProducer(**common)
    producer.send(topic, b"hello").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, **common, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    try:
        assert [m.value for m in consumer] == [b"hello"]
    finally:
        consumer.close()


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "wrong"),
    ("PLAIN", "nobody", "alice-secret"),
    ("SCRAM-SHA-512", "scram512", "wrong"),
    ("SCRAM-SHA-512", "nobody", "wrong"),
])
def test_confluent_kafka_reports_failed_authentication(sasl: Sasl, mechanism: str, user: str,
                                                      password: str) -> None:
    errors: list[KafkaError] = []
    conf = {**sasl.librdkafka("SASL_SSL", mechanism, user, password),
            "error_cb": errors.append}
    admin = AdminClient(conf)
    deadline = time.monotonic() + 30
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        assert time.monotonic() < deadline, errors
        admin.poll(0.2)
    refused = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert "Authentication failed" in refused[0].str()
    assert sasl.broker.is_alive()


def test_scram_credentials_through_the_admin_api(sasl: Sasl) -> None:
    admin = AdminClient({"bootstrap.servers": sasl.broker.bootstrap})
    described = admin.describe_user_scram_credentials(["scram256", "scram512"])
    infos = {u: [(i.mechanism, i.iterations) for i in f.result(timeout=15).scram_credential_infos]
             for u, f in described.items()}
    assert infos == {"scram256": [(ScramMechanism.SCRAM_SHA_256, 8192)],
                     "scram512": [(ScramMechanism.SCRAM_SHA_512, 8192)]}
    creds = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "temp", creds, b"temp-secret")])["temp"].result(timeout=15)
    conf = sasl.librdkafka("SASL_SSL", "SCRAM-SHA-256", "temp", "temp-secret")
    assert AdminClient(conf).list_topics(timeout=15).brokers
    admin.alter_user_scram_credentials([UserScramCredentialDeletion(
        "temp", ScramMechanism.SCRAM_SHA_256)])["temp"].result(timeout=15)
    with pytest.raises(Exception, match="does not exist"):
        admin.describe_user_scram_credentials(["temp"])["temp"].result(timeout=15)


def test_scram_admin_errors_are_kafkas(sasl: Sasl) -> None:
    with RawClient(sasl.broker.bootstrap) as client:
        body = client.request(ALTER_SCRAM, 0, deletions=[
            {"name": "ghost", "mechanism": 1}, {"name": "twice", "mechanism": 1}],
            upsertions=[
                {"name": "twice", "mechanism": 1, "iterations": 4096, "salt": b"s",
                 "salted_password": b"p"},
                {"name": "few", "mechanism": 1, "iterations": 1000, "salt": b"s",
                 "salted_password": b"p"},
                {"name": "many", "mechanism": 2, "iterations": 20000, "salt": b"s",
                 "salted_password": b"p"},
                {"name": "odd", "mechanism": 9, "iterations": 4096, "salt": b"s",
                 "salted_password": b"p"}]).body
        results = {r.user: (int(r.error_code), r.error_message) for r in body.results}
        assert results == {
            "ghost": (91, "Attempt to delete a user credential that does not exist"),
            "twice": (92, "A user credential cannot be altered twice in the same request"),
            "few": (93, "Too few iterations"),
            "many": (93, "Too many iterations"),
            "odd": (UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
        }
        body = client.request(DESCRIBE_SCRAM, 0, users=[{"name": "ghost"}]).body
        assert [(r.user, int(r.error_code)) for r in body.results] == [("ghost", 91)]


# --- the state machine, on the wire ---------------------------------------------------


def _handshake(client: RawClient, mechanism: str, version: int = 1) -> Any:
    return client.request(SASL_HANDSHAKE, version, mechanism=mechanism).body


def _authenticate(client: RawClient, token: bytes, version: int = 2) -> Any:
    return client.request(SASL_AUTHENTICATE, version, auth_bytes=token).body


def _api_versions(client: RawClient) -> Any:
    return client.request(API_VERSIONS, 3, make_request(API_VERSIONS, 3, {
        "client_software_name": "t", "client_software_version": "1"})).body


def _metadata(client: RawClient) -> Any:
    return client.request(METADATA, 12, topics=[], allow_auto_topic_creation=False,
                          include_topic_authorized_operations=False).body


def test_requests_before_authentication_close_the_connection(sasl: Sasl) -> None:
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        client.send(METADATA, 12, make_request(METADATA, 12, topics=[],
                                               allow_auto_topic_creation=False,
                                               include_topic_authorized_operations=False))
        assert client.is_closed_by_peer()
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        assert int(_api_versions(client).error_code) == 0
        client.send(SASL_AUTHENTICATE, 2, make_request(SASL_AUTHENTICATE, 2,
                                                       auth_bytes=b"\0alice\0alice-secret"))
        assert client.is_closed_by_peer()


def test_an_unsupported_mechanism_is_answered_then_closed(sasl: Sasl) -> None:
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        body = _handshake(client, "SCRAM-SHA-512")
        assert int(body.error_code) == UNSUPPORTED_SASL_MECHANISM
        assert list(body.mechanisms) == ["PLAIN", "SCRAM-SHA-256"]
        assert client.is_closed_by_peer()


def test_plain_wrong_password_and_unknown_user_get_the_same_answer(sasl: Sasl) -> None:
    answers = []
    for token in (b"\0alice\0wrong", b"\0nobody\0alice-secret"):
        with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
            assert int(_handshake(client, "PLAIN").error_code) == 0
            body = _authenticate(client, token)
            answers.append((int(body.error_code), body.error_message))
            assert client.is_closed_by_peer()
    assert answers == [(SASL_AUTHENTICATION_FAILED,
                        "Authentication failed: Invalid username or password")] * 2


def test_plain_success_then_serves_and_refuses_another_authenticate(sasl: Sasl) -> None:
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        assert int(_api_versions(client).error_code) == 0
        assert int(_handshake(client, "PLAIN").error_code) == 0
        body = _authenticate(client, b"\0alice\0alice-secret")
        assert int(body.error_code) == 0 and body.session_lifetime.total_seconds() == 0
        assert _metadata(client).brokers
        again = _authenticate(client, b"\0alice\0alice-secret")
        assert int(again.error_code) == ILLEGAL_SASL_STATE


def test_sasl_requests_on_a_plaintext_listener_are_illegal_state(sasl: Sasl) -> None:
    with RawClient(sasl.broker.bootstrap) as client:
        assert int(_handshake(client, "PLAIN").error_code) == ILLEGAL_SASL_STATE
        assert int(_authenticate(client, b"x").error_code) == ILLEGAL_SASL_STATE


def test_handshake_v0_then_raw_tokens(sasl: Sasl) -> None:
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        assert int(_handshake(client, "PLAIN", version=0).error_code) == 0
        token = b"\0alice\0alice-secret"
        client.send_raw(len(token).to_bytes(4, "big") + token)
        assert client.recv_frame() == b""  # PLAIN's empty server token
        assert _metadata(client).brokers
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        assert int(_handshake(client, "PLAIN", version=0).error_code) == 0
        token = b"\0alice\0wrong"
        client.send_raw(len(token).to_bytes(4, "big") + token)
        assert client.is_closed_by_peer()


# --- SCRAM on the wire ------------------------------------------------------------------


class ScramClient:
    """The client half of RFC 5802, with hooks to send what a broken or hostile client
    would."""

    def __init__(self, mechanism: str, user: str, password: str) -> None:
        self.hash = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
        self.user, self.password = user, password
        self.nonce = base64.b64encode(b"client-nonce-0123456789").decode()
        self.first_bare = f"n={user},r={self.nonce}"

    def first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first: bytes, nonce: str | None = None,
              flip_proof: bool = False) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored_key = hashlib.new(self.hash, client_key).digest()
        without_proof = f"c=biws,r={nonce if nonce is not None else attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self.hash).digest()
        proof = bytearray(a ^ b for a, b in zip(client_key, signature, strict=True))
        if flip_proof:
            proof[0] ^= 1
        return f"{without_proof},p={base64.b64encode(bytes(proof)).decode()}".encode()


def _scram(sasl: Sasl, user: str, password: str, **tamper: Any) -> tuple[Any, Any, bool]:
    """(server-first answer, final answer, closed afterwards) of one SCRAM-SHA-256 run."""
    scram = ScramClient("SCRAM-SHA-256", user, password)
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        assert int(_handshake(client, "SCRAM-SHA-256").error_code) == 0
        first = _authenticate(client, scram.first())
        if int(first.error_code) != 0:
            return first, None, client.is_closed_by_peer()
        final = _authenticate(client, scram.final(first.auth_bytes, **tamper))
        closed = int(final.error_code) != 0 and client.is_closed_by_peer()
        if not closed:
            assert _metadata(client).brokers
        return first, final, closed


def test_scram_success_carries_the_server_signature(sasl: Sasl) -> None:
    first, final, closed = _scram(sasl, "scram256", "s256-secret")
    assert first.auth_bytes.startswith(b"r=" + ScramClient("SCRAM-SHA-256", "", "").nonce.encode())
    assert int(final.error_code) == 0 and final.auth_bytes.startswith(b"v=") and not closed


FAILED_SCRAM = (SASL_AUTHENTICATION_FAILED, "Authentication failed during authentication due "
                "to invalid credentials with SASL mechanism SCRAM-SHA-256")


def test_scram_wrong_password_and_unknown_user_are_answered_alike(sasl: Sasl) -> None:
    wrong_first, wrong, wrong_closed = _scram(sasl, "scram256", "nope")
    ghost_first, ghost, ghost_closed = _scram(sasl, "ghost", "nope")
    for first in (wrong_first, ghost_first):  # a normal challenge, salt and 4096+ rounds
        attrs = dict(i.split("=", 1) for i in first.auth_bytes.decode().split(","))
        assert set(attrs) == {"r", "s", "i"} and int(attrs["i"]) >= 4096
    assert (int(wrong.error_code), wrong.error_message) == FAILED_SCRAM
    assert (int(ghost.error_code), ghost.error_message) == FAILED_SCRAM
    assert wrong_closed and ghost_closed
    _, again, _ = _scram(sasl, "ghost", "nope")  # the same decoy salt every time
    assert again is not None


@pytest.mark.parametrize("tamper", [
    {"nonce": base64.b64encode(b"client-nonce-0123456789").decode()},  # the client's only
    {"nonce": base64.b64encode(b"client-nonce-0123456789").decode() + "forged"},
    {"flip_proof": True},
])
def test_scram_nonce_and_proof_are_checked(sasl: Sasl, tamper: dict[str, Any]) -> None:
    """CVE-2024-56128 class: the final message must carry the server's full nonce, and
    the proof must be right."""
    _, final, closed = _scram(sasl, "scram256", "s256-secret", **tamper)
    assert (int(final.error_code), final.error_message) == FAILED_SCRAM and closed


# --- re-authentication (KIP-368) --------------------------------------------------------


def test_session_lifetime_and_reauthentication_on_the_wire(sasl: Sasl) -> None:
    with RawClient(sasl.address("REAUTH")) as client:
        assert int(_handshake(client, "PLAIN").error_code) == 0
        body = _authenticate(client, b"\0alice\0alice-secret")
        assert body.session_lifetime.total_seconds() * 1000 == REAUTH_MS
        assert int(_handshake(client, "PLAIN").error_code) == 0  # re-authenticate in place
        assert int(_authenticate(client, b"\0alice\0alice-secret").error_code) == 0
        assert _metadata(client).brokers
    with RawClient(sasl.address("REAUTH")) as client:  # another principal: refused
        assert int(_handshake(client, "PLAIN").error_code) == 0
        assert int(_authenticate(client, b"\0alice\0alice-secret").error_code) == 0
        assert int(_handshake(client, "PLAIN").error_code) == 0
        body = _authenticate(client, b"\0admin\0admin-secret")
        assert int(body.error_code) == SASL_AUTHENTICATION_FAILED
        assert client.is_closed_by_peer()


def test_an_expired_session_is_closed_on_its_next_request(sasl: Sasl) -> None:
    with RawClient(sasl.address("REAUTH")) as client:
        assert int(_handshake(client, "PLAIN").error_code) == 0
        assert int(_authenticate(client, b"\0alice\0alice-secret").error_code) == 0
        time.sleep(REAUTH_MS / 1000 + 0.5)  # let the session lapse without re-authenticating
        client.send(METADATA, 12, make_request(METADATA, 12, topics=[],
                                               allow_auto_topic_creation=False,
                                               include_topic_authorized_operations=False))
        assert client.is_closed_by_peer()


def test_librdkafka_reauthenticates_and_keeps_producing(sasl: Sasl) -> None:
    topic = unique_topic("reauth")
    conf = sasl.librdkafka("REAUTH", "SCRAM-SHA-256", "scram256", "s256-secret")
    producer = Producer({**conf, "linger.ms": 0})
    errors: list[Any] = []
    deadline = time.monotonic() + 3 * REAUTH_MS / 1000  # spans several sessions
    sent = 0
    while time.monotonic() < deadline:
        producer.produce(topic, b"x", on_delivery=lambda err, msg: errors.append(err)
                         if err else None)
        sent += 1
        producer.flush(10)
        time.sleep(0.1)
    assert producer.flush(30) == 0 and not errors, errors
    log = sasl.broker.log_text()
    assert "session of User:scram256 expired" not in log, \
        "the client was cut off instead of re-authenticating"


# --- strom user scram -----------------------------------------------------------------


def _strom(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strom", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_strom_user_scram_over_sasl_ssl(sasl: Sasl) -> None:
    """The CLI sets, lists and deletes credentials, itself authenticated over SASL_SSL
    (-X passes librdkafka's security properties), and the new user can log in."""
    auth = ["-b", sasl.address("SASL_SSL"), "-X", "security.protocol=SASL_SSL",
            "-X", f"ssl.ca.location={sasl.ca_file}", "-X", "sasl.mechanism=PLAIN",
            "-X", "sasl.username=admin", "-X", "sasl.password=admin-secret"]
    done = _strom("user", "scram", "set", "dave", "-m", "SCRAM-SHA-512", "--iterations", "4096",
                  "--password-stdin", *auth, stdin="dave-secret\n")
    assert done.returncode == 0, done.stderr
    assert "dave-secret" not in done.stdout + done.stderr
    listed = _strom("user", "scram", "list", "--format", "json", *auth)
    assert listed.returncode == 0, listed.stderr
    assert {"user": "dave", "mechanism": "SCRAM-SHA-512", "iterations": 4096} in \
        json.loads(listed.stdout)
    conf = sasl.librdkafka("SASL_SSL", "SCRAM-SHA-512", "dave", "dave-secret")
    assert AdminClient(conf).list_topics(timeout=15).brokers
    refused = _strom("user", "scram", "set", "erin", "--iterations", "100", "--password-stdin",
                     *auth, stdin="x\n")
    assert refused.returncode != 0 and "iterations" in refused.stderr.lower(), refused.stderr
    assert _strom("user", "scram", "delete", "dave", "-m", "SCRAM-SHA-512", *auth).returncode == 0
    gone = _strom("user", "scram", "list", "dave", *auth)
    assert gone.returncode != 0 and "does not exist" in gone.stderr, gone.stderr


def test_jaas_configs_are_masked_and_never_logged(sasl: Sasl) -> None:
    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": sasl.broker.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0")
    entries = admin.describe_configs([resource])[resource].result(timeout=15)
    for name in ("listener.name.sasl_ssl.plain.sasl.jaas.config",
                 "listener.name.sasl_ssl.ssl.keystore.key"):
        assert entries[name].is_sensitive and entries[name].value is None, entries[name]
    assert entries["sasl.enabled.mechanisms"].value == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    log = sasl.broker.log_text()
    for secret in ("alice-secret", "admin-secret", "s256-secret", "s512-secret"):
        assert secret not in log


def test_a_second_api_versions_before_authentication_closes(sasl: Sasl) -> None:
    with RawClient(sasl.address("SASL_PLAINTEXT")) as client:
        assert int(_api_versions(client).error_code) == 0
        client.send(API_VERSIONS, 3, make_request(API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}))
        assert client.is_closed_by_peer()



# --- OAUTHBEARER with unsecured tokens (development) -----------------------------------


def _jwt(claims: dict[str, Any], alg: str = "none") -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': alg})}.{part(claims)}."


def _bearer(token: str) -> bytes:
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def test_confluent_kafka_with_an_unsecured_oauthbearer_token(sasl: Sasl) -> None:
    topic = unique_topic("oauth")
    conf = {"bootstrap.servers": sasl.address("OAUTH"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=carol lifeSeconds=3600"}
    assert len(_roundtrip(conf, topic, 5)) == 5


def test_oauthbearer_session_ends_with_the_token(sasl: Sasl) -> None:
    with RawClient(sasl.address("OAUTH")) as client:
        assert int(_handshake(client, "OAUTHBEARER").error_code) == 0
        body = _authenticate(client, _bearer(_jwt({"sub": "carol",
                                                   "exp": time.time() + 20})))
        assert int(body.error_code) == 0
        lifetime_ms = body.session_lifetime.total_seconds() * 1000
        assert 0 < lifetime_ms <= 20000  # the token's, not connections.max.reauth.ms
        assert _metadata(client).brokers


@pytest.mark.parametrize("token", [
    _jwt({"sub": "carol", "exp": 1000}),  # expired
    _jwt({"sub": "carol", "exp": 4102444800}, alg="HS256"),  # signed: not validated here
    _jwt({"exp": 4102444800}),  # no principal
    "not-a-token",
])
def test_bad_oauthbearer_tokens_get_a_challenge_then_fail(sasl: Sasl, token: str) -> None:
    with RawClient(sasl.address("OAUTH")) as client:
        assert int(_handshake(client, "OAUTHBEARER").error_code) == 0
        challenge = _authenticate(client, _bearer(token))
        assert int(challenge.error_code) == 0
        assert json.loads(challenge.auth_bytes) == {"status": "invalid_token"}
        final = _authenticate(client, b"\x01")
        assert int(final.error_code) == SASL_AUTHENTICATION_FAILED
        assert client.is_closed_by_peer()


def test_a_failed_login_is_answered_at_once_and_closed_after_the_delay(tmp_path: Path) -> None:
    """connection.failed.authentication.delay.ms (5 s here): the failure answer comes at
    once, the connection stays open (reading nothing) until the delay has passed."""
    port = free_port()
    broker = BrokerProcess(tmp_path / "data", port=port, overrides={
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "connection.failed.authentication.delay.ms": "5000"}).start()
    try:
        with RawClient(broker.bootstrap) as client:
            assert int(_handshake(client, "PLAIN").error_code) == 0
            body = _authenticate(client, b"\0alice\0wrong")
            assert int(body.error_code) == SASL_AUTHENTICATION_FAILED
            assert not client.is_closed_by_peer(timeout=1.0)  # 4 s short of the delay
            assert client.is_closed_by_peer(timeout=15.0)
    finally:
        assert broker.stop() == 0

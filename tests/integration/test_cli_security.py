"""Every `strom` command group over TLS and SASL (issue 15): topic, produce, consume,
group, txn, acl, user and cluster config, against one broker with the authorizer on
(`support.secure_broker`), logged in two ways:

- `scram`: SASL_SSL with SCRAM-SHA-512 as the super user `admin`, from a **profile**
  (`--profile scram`, profiles.toml found through `STROM_PROFILES`);
- `mtls`: SSL with a client certificate (CN=alice,OU=eng, a super user by the
  principal mapping rule), from a **client config file** (`--config FILE`).

`strom txn` and the cluster-wide config default speak the Kafka protocol themselves
(`strom.client.protocol_admin`), so they are also run with `-X` and SCRAM-SHA-256. The
PLAINTEXT listener's ANONYMOUS principal may do nothing here: a command that fell back
to it would be refused. A wrong password fails cleanly and is never printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer

from support.broker_process import BrokerProcess, free_port
from support.cli import strom, strom_json, unique
from support.secure_broker import (
    ADMIN_PASSWORD,
    create_scram_admin,
    mtls_props,
    scram_props,
    secure_overrides,
)
from support.tls_certs import Pki, make_pki

pytestmark = [pytest.mark.timeout(300)]


@dataclass
class Secure:
    pki: Pki
    broker: BrokerProcess
    ports: dict[str, int]
    profiles: Path
    configs: Path

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def env(self) -> dict[str, str]:
        return {"STROM_PROFILES": str(self.profiles)}


def _toml(props: dict[str, str]) -> str:
    return "".join(f'"{k}" = {json.dumps(v)}\n' for k, v in props.items())


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    base = tmp_path_factory.mktemp("cli-security")
    pki = make_pki(base / "pki")
    ports = {name: free_port() for name in ("PLAINTEXT", "SASL_SSL", "MTLS")}
    broker = BrokerProcess(base / "data", port=ports["PLAINTEXT"], overrides={
        **secure_overrides(pki, ports),
        "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
    }).start()
    create_scram_admin(f"127.0.0.1:{ports['SASL_SSL']}", pki)
    profiles = base / "profiles.toml"
    # dotted keys written both ways: nested (security.protocol) and quoted
    profiles.write_text(
        f'[profiles.scram]\nbrokers = "127.0.0.1:{ports["SASL_SSL"]}"\n'
        'security.protocol = "SASL_SSL"\n'
        + _toml({k: v for k, v in scram_props(pki).items() if k != "security.protocol"})
        + f'\n[profiles.wrong]\nbrokers = "127.0.0.1:{ports["SASL_SSL"]}"\n'
        + _toml({**scram_props(pki), "sasl.password": "not-the-password-42"}))
    configs = base / "mtls.properties"
    configs.write_text(f"bootstrap.servers=127.0.0.1:{ports['MTLS']}\n"
                       + "".join(f"{k}={v}\n" for k, v in mtls_props(pki).items()))
    yield Secure(pki, broker, ports, profiles, configs)
    code = broker.stop()
    assert code == 0, f"broker exited with {code}; log:\n{broker.log_text()}"


LOGINS = ["scram", "mtls"]


def _login(secure: Secure, how: str) -> list[str]:
    """The root options that select the connection (they come before the command)."""
    return ["--profile", "scram"] if how == "scram" else ["--config", str(secure.configs)]


def _run(secure: Secure, how: str, *args: str, **kwargs: object) -> str:
    return strom(*_login(secure, how), *args, env=secure.env(), **kwargs).stdout  # type: ignore[arg-type]


def _json(secure: Secure, how: str, *args: str) -> object:
    return json.loads(_run(secure, how, *args, "--format", "json"))


@pytest.mark.parametrize("how", LOGINS)
def test_topics_produce_and_consume(secure: Secure, how: str) -> None:
    topic = unique(f"sec-{how}")
    _run(secure, how, "topic", "create", topic, "-p", "2")
    assert topic in [t["name"] for t in _json(secure, how, "topic", "list")]  # type: ignore[attr-defined, index]
    _run(secure, how, "topic", "alter-config", topic, "--set", "retention.ms=3600000")
    described = _run(secure, how, "topic", "describe", topic)
    assert "retention.ms" in described and "3600000" in described
    _run(secure, how, "topic", "produce", topic, "-p", "0", input="one\ntwo\nthree\n")
    out = _run(secure, how, "topic", "consume", topic, "-n", "3", "--timeout", "30")
    assert out.splitlines() == ["one", "two", "three"]
    _run(secure, how, "topic", "delete", topic)


@pytest.mark.parametrize("how", LOGINS)
def test_groups(secure: Secure, how: str) -> None:
    topic, group = unique(f"grp-{how}"), unique("g")
    _run(secure, how, "topic", "create", topic)
    _run(secure, how, "topic", "produce", topic, input="a\nb\n")
    _run(secure, how, "topic", "consume", topic, "-g", group, "-n", "2", "--timeout", "30")
    assert group in [g["group"] for g in _json(secure, how, "group", "list")]  # type: ignore[attr-defined, index]
    described = _json(secure, how, "group", "describe", group)
    assert '"lag": 0' in json.dumps(described), described


def _committed_transaction(bootstrap: str, props: dict[str, str], topic: str, txn: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn, **props})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"in-txn", partition=0)
    producer.commit_transaction(30)


@pytest.mark.parametrize("how", LOGINS)
def test_transactions(secure: Secure, how: str) -> None:
    """`strom txn` reaches the coordinator and the partition leader over TLS (and SASL)."""
    topic, txn = unique(f"txn-{how}"), unique("t")
    _run(secure, how, "topic", "create", topic)
    _committed_transaction(secure.address("SASL_SSL"), scram_props(secure.pki), topic, txn)
    listed = _json(secure, how, "txn", "list")
    assert [t["state"] for t in listed if t["transactional_id"] == txn] == ["CompleteCommit"]  # type: ignore[attr-defined, index]
    assert _json(secure, how, "txn", "describe", "-i", txn)["state"] == "CompleteCommit"  # type: ignore[index]
    producers = _json(secure, how, "txn", "describe-producers", "-t", topic, "-p", "0")
    assert len(producers["producers"]) == 1, producers  # type: ignore[index]


@pytest.mark.parametrize("how", LOGINS)
def test_acls(secure: Secure, how: str) -> None:
    topic = unique(f"acl-{how}")
    created = _run(secure, how, "acl", "create", "--principal", "User:bob", "-o", "Read",
                   "--topic", topic)
    assert f"User:bob on TOPIC {topic}" in created
    listed = _json(secure, how, "acl", "list", "--topic", topic)
    assert [(r["principal"], r["operation"]) for r in listed] == [("User:bob", "READ")]  # type: ignore[attr-defined, index]
    _run(secure, how, "acl", "delete", "--principal", "User:bob", "--topic", topic)
    assert _json(secure, how, "acl", "list", "--topic", topic) == []


@pytest.mark.parametrize("how", LOGINS)
def test_users(secure: Secure, how: str) -> None:
    user = unique(f"u-{how}")
    _run(secure, how, "user", "scram", "set", user, "-m", "SCRAM-SHA-256", "--iterations",
         "4096", "--password-stdin", input="user-secret\n")
    listed = _json(secure, how, "user", "scram", "list", user)
    assert listed == [{"user": user, "mechanism": "SCRAM-SHA-256", "iterations": 4096}]
    _run(secure, how, "user", "scram", "delete", user, "-m", "SCRAM-SHA-256")


@pytest.mark.parametrize("how", LOGINS)
def test_cluster_info_and_configs(secure: Secure, how: str) -> None:
    """Per broker through librdkafka; the cluster-wide default over our own TLS/SASL."""
    info = _json(secure, how, "cluster", "info")
    [broker_id] = [b["id"] for b in info["brokers"]]  # type: ignore[index]
    _run(secure, how, "cluster", "config", "set", "log.cleaner.backoff.ms=16000")
    _run(secure, how, "cluster", "config", "set", "log.cleaner.io.buffer.load.factor=0.8",
         "--broker", str(broker_id))
    shown = _json(secure, how, "cluster", "config", "show", "log.cleaner.backoff.ms",
                  "--default")
    assert [(r["name"], r["value"]) for r in shown] == [("log.cleaner.backoff.ms", "16000")]  # type: ignore[attr-defined, index]
    assert "0.8" in _run(secure, how, "cluster", "config", "get",
                         "log.cleaner.io.buffer.load.factor", "--broker", str(broker_id))
    _run(secure, how, "cluster", "config", "delete", "log.cleaner.backoff.ms")
    _run(secure, how, "cluster", "config", "delete", "log.cleaner.io.buffer.load.factor",
         "--broker", str(broker_id))


def test_raw_protocol_commands_take_x_properties(secure: Secure) -> None:
    """`-X` alone (no profile) with SCRAM-SHA-256: txn and the cluster-wide default."""
    create_scram_admin(secure.address("SASL_SSL"), secure.pki, ("SCRAM-SHA-256",))
    x = [arg for k, v in scram_props(secure.pki, "SCRAM-SHA-256").items()
         for arg in ("-X", f"{k}={v}")]
    b = ["-b", secure.address("SASL_SSL")]
    assert isinstance(strom_json("txn", "list", *b, *x), list)
    shown = strom_json("cluster", "config", "show", "--default", *b, *x)
    assert isinstance(shown, list)


def test_a_wrong_password_fails_cleanly_and_is_never_printed(secure: Secure) -> None:
    for command in (["txn", "list"], ["topic", "list"], ["cluster", "config", "show",
                                                          "--default"]):
        failed = strom("--profile", "wrong", *command, env=secure.env(), check=False,
                       timeout=60)
        assert failed.returncode != 0, command
        assert "not-the-password-42" not in failed.stdout + failed.stderr
        assert "strom: error:" in failed.stderr and "Traceback" not in failed.stderr, \
            failed.stderr
    assert ADMIN_PASSWORD not in strom("--profile", "scram", "topic", "list",
                                       env=secure.env()).stderr


def test_the_plaintext_listener_is_refused_so_logins_matter(secure: Secure) -> None:
    """Without the login the same commands are refused: ANONYMOUS has no ACLs."""
    refused = strom("cluster", "config", "show", "--default", "-b", secure.broker.bootstrap,
                    check=False, timeout=60)
    assert refused.returncode != 0 and "AUTHORIZATION_FAILED" in refused.stderr, refused.stderr


def test_an_untrusted_broker_certificate_is_refused_by_txn(secure: Secure, tmp_path: Path
                                                           ) -> None:
    rogue = tmp_path / "rogue-ca.pem"
    rogue.write_bytes(secure.pki.rogue_ca.cert_pem())
    props = {**scram_props(secure.pki), "ssl.ca.location": str(rogue)}
    x = [arg for k, v in props.items() for arg in ("-X", f"{k}={v}")]
    failed = strom("txn", "list", "-b", secure.address("SASL_SSL"), *x, check=False, timeout=60)
    assert failed.returncode != 0 and "_SSL" in failed.stderr, failed.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in failed.stderr, failed.stderr

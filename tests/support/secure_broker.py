"""A broker secured the way a production cluster is: SASL_SSL with SCRAM and an mTLS
listener, the authorizer on, and the client properties that log in to it.

Shared by the CLI security tests, the cluster fault suite's SASL_SSL variant and the
TLS benchmark, so the three agree on one setup (and one certificate authority from
`support.tls_certs`). The SCRAM user `admin` is a super user; it is created through
PLAIN on the same listener (Kafka's bootstrap problem: SCRAM credentials live in the
cluster), with `create_scram_admin`.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.tls_certs import KEY_PASSWORD, Pki

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
SCRAM = "SCRAM-SHA-512"
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              f'username="{ADMIN}" password="{ADMIN_PASSWORD}" '
              f'user_{ADMIN}="{ADMIN_PASSWORD}";')
MTLS_USER = "alice"  # CN=alice,OU=eng: a super user by the mapping rule below


def tls_overrides(pki: Pki) -> dict[str, str]:
    """Every TLS listener's keystore and truststore: the PEM files of the test CA."""
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.broker_pem_keystore()),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_file),
    }


def secure_overrides(pki: Pki, ports: dict[str, int]) -> dict[str, str]:
    """PLAINTEXT (health checks only: ANONYMOUS may do nothing), SASL_SSL (PLAIN and
    SCRAM-SHA-256/512) and MTLS (client certificates required); ACLs enforced."""
    return {
        "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in ports.items()),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
        **tls_overrides(pki),
        "listener.name.mtls.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=eng,.*$/$1/L",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN};User:{MTLS_USER}",
    }


def scram_props(pki: Pki, mechanism: str = SCRAM, user: str = ADMIN,
                password: str = ADMIN_PASSWORD) -> dict[str, str]:
    """librdkafka properties of a SASL_SSL login."""
    return {"security.protocol": "SASL_SSL", "ssl.ca.location": str(pki.ca_file),
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def mtls_props(pki: Pki) -> dict[str, str]:
    """librdkafka properties of an mTLS login as alice."""
    cert, key = pki.client_files(pki.alice, MTLS_USER)
    return {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca_file),
            "ssl.certificate.location": str(cert), "ssl.key.location": str(key)}


def create_scram_admin(bootstrap: str, pki: Pki, mechanisms: tuple[str, ...] = (SCRAM,)
                       ) -> None:
    """The SCRAM credentials of `admin`, set by `admin` itself logged in with PLAIN."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap,
                            **scram_props(pki, "PLAIN")}
    admin = AdminClient(conf)  # held: futures fail once their client is destroyed
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion(ADMIN, ScramCredentialInfo(
            getattr(ScramMechanism, m.replace("-", "_")), 4096), ADMIN_PASSWORD.encode())
        for m in mechanisms])
    for future in futures.values():
        future.result(timeout=30)


# --- brokers authenticating to each other ----------------------------------------------

BROKER_USER, BROKER_PASSWORD = "broker", "broker-secret"
INTER_BROKER_SCRAM_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                           'username="broker" password="{password}";')


def inter_broker_overrides(pki: Pki) -> dict[str, str]:
    """Settings every broker of a cluster shares when brokers replicate over an INTERNAL
    SASL_SSL listener with SCRAM-SHA-512 (clients keep PLAINTEXT); each broker's own
    INTERNAL port and JAAS entry come from `add_internal_listeners`."""
    return {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
        "inter.broker.listener.name": "INTERNAL",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.internal.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        **tls_overrides(pki),
    }


def authorizer_overrides() -> dict[str, str]:
    """The authorizer on, the brokers' principal a super user (replica fetches need
    ClusterAction); ANONYMOUS, the tests' operator on the PLAINTEXT client listener, too."""
    return {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{BROKER_USER};User:ANONYMOUS"}


def add_internal_listeners(brokers: Any, passwords: dict[int, str] | None = None
                           ) -> dict[int, int]:
    """Give each `BrokerProcess` of `brokers` (id → process) an INTERNAL listener and the
    JAAS entry it logs in with; returns the INTERNAL port per broker id."""
    from support.broker_process import free_port

    internal = {}
    for broker_id, proc in brokers.items():
        internal[broker_id] = free_port()
        password = (passwords or {}).get(broker_id, BROKER_PASSWORD)
        proc.overrides.update({
            "listeners": f"PLAINTEXT://127.0.0.1:{proc.port},"
                         f"INTERNAL://127.0.0.1:{internal[broker_id]}",
            "listener.name.internal.scram-sha-512.sasl.jaas.config":
                INTER_BROKER_SCRAM_JAAS.format(password=password),
        })
    return internal


def create_broker_user(bootstrap: str) -> None:
    """The brokers' SCRAM-SHA-512 credentials, set through the PLAINTEXT listener once
    the brokers run (until then followers are refused and retry)."""
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism
    from confluent_kafka.admin import UserScramCredentialUpsertion as Upsertion

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.alter_user_scram_credentials([Upsertion(
        BROKER_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
        BROKER_PASSWORD.encode())])
    for future in futures.values():
        future.result(timeout=30)


OVER_SASL_SSL = pytest.mark.parametrize("listener_security", ["PLAINTEXT", "SASL_SSL"],
                                        indirect=True)
"""Runs a cluster test twice: brokers over PLAINTEXT, and over SASL_SSL (SCRAM-SHA-512,
the authorizer on) as the `cluster_factory` fixture of tests/cluster sets them up."""

"""The metrics port protected as a Prometheus scrape job expects it when it leaves
loopback: HTTP basic authentication on /metrics (401 with a Basic challenge otherwise;
/healthz and /readyz stay open for probes), HTTPS from PEM files, and half a setting is
refused at start rather than leaving the port open."""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.broker_process import BrokerProcess
from support.tls_certs import Pki, make_pki

pytestmark = pytest.mark.timeout(120)

USER, PASSWORD = "prometheus", "scrape-s3cret"


def get(url: str, *, auth: tuple[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def _broker(tmp_path: Path, overrides: dict[str, str]) -> Iterator[BrokerProcess]:
    broker = BrokerProcess(tmp_path / "data", overrides=overrides).start()
    yield broker
    assert broker.stop() == 0


@pytest.fixture
def basic_auth_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    yield from _broker(tmp_path, {"strom.metrics.basic.auth.user": USER,
                                  "strom.metrics.basic.auth.password": PASSWORD})


@pytest.fixture
def https_broker(tmp_path: Path, pki: Pki) -> Iterator[BrokerProcess]:
    cert, key = pki.client_files(pki.broker, "metrics")
    yield from _broker(tmp_path, {"strom.metrics.basic.auth.user": USER,
                                  "strom.metrics.basic.auth.password": PASSWORD,
                                  "strom.metrics.ssl.certificate.location": str(cert),
                                  "strom.metrics.ssl.key.location": str(key)})


def test_metrics_need_the_credentials_and_probes_do_not(basic_auth_broker: BrokerProcess) -> None:
    url = basic_auth_broker.metrics_url
    status, headers, _ = get(url)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith('Basic realm="strom"')
    assert get(url, auth=(USER, "wrong"))[0] == 401
    assert get(url, auth=("someone", PASSWORD))[0] == 401
    status, _, body = get(url, auth=(USER, PASSWORD))
    assert status == 200 and b"strom_" in body
    base = url.removesuffix("/metrics")
    assert get(f"{base}/healthz")[0] == 200
    assert get(f"{base}/readyz")[0] == 200
    assert PASSWORD not in basic_auth_broker.log_text()


def test_metrics_over_https(https_broker: BrokerProcess, pki: Pki) -> None:
    url = https_broker.metrics_url
    assert url.startswith("https://")
    trusting = ssl.create_default_context(cafile=str(pki.ca_file))
    status, _, body = get(url, auth=(USER, PASSWORD), context=trusting)
    assert status == 200 and b"strom_" in body
    assert get(url, context=trusting)[0] == 401
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        get(url.replace("https://", "http://"), auth=(USER, PASSWORD))


@pytest.mark.parametrize("half", [
    {"strom.metrics.basic.auth.user": USER},
    {"strom.metrics.ssl.certificate.location": "/nonexistent.pem"},
    {"strom.metrics.ssl.certificate.location": "/nonexistent.pem",
     "strom.metrics.ssl.key.location": "/nonexistent.key"},
])
def test_half_a_protection_setting_stops_the_broker(tmp_path: Path, half: dict[str, str]) -> None:
    broker = BrokerProcess(tmp_path / "data", overrides=half)
    done = subprocess.run(broker.command(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "invalid configuration: strom.metrics." in done.stderr
    assert "Traceback" not in done.stderr

"""Kafka's quota arithmetic and precedence, on a driven clock: the windowed rate (11
samples of 1 s, the first burst spread over 10 windows), the throttle time that brings
the average back to the quota, the 8 levels of KIP-55 and who shares a sensor."""

from __future__ import annotations

import pytest

from strom.broker.quotas import ClientQuotas, quota_user
from strom.broker.quotas.manager import ClientQuotaManager
from strom.broker.quotas.rate import Rate, throttle_time_ms


def test_a_first_burst_is_averaged_over_ten_windows() -> None:
    rate = Rate(11, 1000)
    rate.record(1_000_000, 0)
    assert rate.window_size_ms(0) == 10_000
    assert rate.measure(0) == pytest.approx(100_000)
    rate.record(1_000_000, 15_000)  # after 15 s: the first sample aged out (11 windows)
    assert rate.measure(15_000) == pytest.approx(100_000)


def test_throttle_time_restores_the_quota() -> None:
    # 2 MB in the window at 100 KB/s: the average is back at the quota after 20 s in all
    assert throttle_time_ms(200_000, 100_000, 10_000) == 10_000
    assert throttle_time_ms(90_000, 100_000, 10_000) == 0


def _manager(quotas: dict[str, str]) -> ClientQuotaManager:
    manager = ClientQuotaManager("producer_byte_rate")
    manager.update({path: {"producer_byte_rate": value} for path, value in quotas.items()})
    return manager


@pytest.mark.parametrize(("quotas", "user", "client", "bound", "key"), [
    ({"users/alice/clients/c": "1", "users/alice/clients/<default>": "2",
      "users/alice": "3", "users/<default>/clients/c": "4",
      "users/<default>/clients/<default>": "5", "users/<default>": "6",
      "clients/c": "7", "clients/<default>": "8"}, "alice", "c", 1, ("alice", "c")),
    ({"users/alice/clients/<default>": "2", "users/alice": "3", "clients/c": "7"},
     "alice", "c", 2, ("alice", "c")),
    ({"users/alice": "3", "users/<default>/clients/c": "4", "clients/c": "7"},
     "alice", "c", 3, ("alice", "")),
    ({"users/<default>/clients/c": "4", "users/<default>": "6"}, "alice", "c", 4,
     ("alice", "c")),
    ({"users/<default>/clients/<default>": "5", "clients/c": "7"}, "bob", "c", 5, ("bob", "c")),
    ({"users/<default>": "6", "clients/c": "7"}, "bob", "c", 6, ("bob", "")),
    ({"users/alice": "3", "clients/c": "7", "clients/<default>": "8"}, "bob", "c", 7,
     ("", "c")),
    ({"users/alice": "3", "clients/<default>": "8"}, "bob", "x", 8, ("", "x")),
    # one kind only: the sensor is keyed by it even where no quota applies
    ({"clients/c": "7"}, "bob", "other", None, ("", "other")),
    ({"users/alice": "3"}, "alice", "any", 3, ("alice", "")),
    ({"users/a%20b": "3"}, "a b", "any", 3, ("a%20b", "")),
])
def test_kafkas_eight_levels(quotas: dict[str, str], user: str, client: str,
                             bound: float | None, key: tuple[str, str]) -> None:
    manager = _manager(quotas)
    sensor = manager.sensor(user, client, 0)
    assert sensor.bound == bound
    assert manager.sensors == {key: sensor}


def test_a_user_quota_is_shared_by_its_clients() -> None:
    manager = _manager({"users/alice": "100000"})
    for client in ("c1", "c2", "c3"):
        assert manager.record("alice", client, 400_000, 0) == 0 or client == "c3"
    assert manager.record("alice", "c4", 1, 0) > 0  # 1.2 MB over 10 s > 100 KB/s


def test_quota_changes_apply_to_existing_sensors_and_removal_disables() -> None:
    quotas = ClientQuotas()

    class Image:
        client_quotas = {"clients/c": {"consumer_byte_rate": "10"}}

    quotas.on_image(Image())  # type: ignore[arg-type]
    assert quotas.fetch.enabled and not quotas.produce.enabled
    assert quotas.fetch.record("ANONYMOUS", "c", 1000, 0) > 0
    Image.client_quotas = {"clients/c": {"consumer_byte_rate": "1000000"}}
    quotas.on_image(Image())  # type: ignore[arg-type]
    assert quotas.fetch.sensors[("", "c")].bound == 1_000_000
    Image.client_quotas = {}
    quotas.on_image(Image())  # type: ignore[arg-type]
    assert not quotas.fetch.enabled and not quotas.fetch.sensors


def test_principal_names() -> None:
    assert quota_user("User:alice") == "alice"
    assert quota_user("User:ANONYMOUS") == "ANONYMOUS"

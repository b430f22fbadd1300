"""Dynamic broker configs in ZooKeeper mode with real broker processes: a cluster-wide
default set through one broker is applied by every broker, a broker's own config set on
it is enforced by it alone, and both survive a restart (read back from
/config/brokers/<default> and /config/brokers/<id>)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from support.cluster import Cluster
from support.raw_client import RawClient, produce, record_batch

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
BROKER = 4
DYN_BROKER, DYN_DEFAULT = 2, 3


def _until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.2)


def _set(bootstrap: str, resource: str, name: str, value: str) -> tuple[int, str | None]:
    with RawClient(bootstrap) as raw:
        answer = raw.request(44, 1, validate_only=False, resources=[
            {"resource_type": BROKER, "resource_name": resource,
             "configs": [{"name": name, "config_operation": 0, "value": value}]}]
        ).body.responses[0]
    return int(answer.error_code), answer.error_message


def _entry(bootstrap: str, broker_id: int, name: str) -> tuple[str | None, int]:
    with RawClient(bootstrap) as raw:
        result = raw.request(32, 4, include_synonyms=False, include_documentation=False,
                             resources=[{"resource_type": BROKER, "resource_name": str(broker_id),
                                         "configuration_keys": [name]}]).body.results[0]
    [entry] = result.configs
    return entry.value, int(entry.config_source)


def _create_on(bootstrap: str, topic: str, broker_id: int) -> None:
    with RawClient(bootstrap) as raw:
        result = raw.request(19, 5, timeout=30_000, validate_only=False, topics=[
            {"name": topic, "num_partitions": -1, "replication_factor": -1,
             "assignments": [{"partition_index": 0, "broker_ids": [broker_id]}],
             "configs": []}]).body.topics[0]
    assert result.error_code == 0, result.error_message


def _produce_code(bootstrap: str, topic: str, size: int) -> Any:
    with RawClient(bootstrap) as raw:
        return ErrorCode(int(produce(raw, topic, record_batch([b"x" * size])).error_code))


def test_defaults_reach_every_broker_and_own_configs_stay_with_theirs(
        cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(size=2)
    one, two = cluster.brokers[1].bootstrap, cluster.brokers[2].bootstrap
    assert _set(one, "", "log.retention.ms", "3600000") == (0, None)
    for broker_id, address in ((1, one), (2, two)):
        _until(f"broker {broker_id} applies the default",
               lambda b=broker_id, a=address: _entry(a, b, "log.retention.ms")
               == ("3600000", DYN_DEFAULT))

    assert _set(one, "2", "message.max.bytes", "10000") == (
        int(ErrorCode.invalid_request), "Unexpected broker id, expected 1, but received 2")
    assert _set(two, "2", "message.max.bytes", "10000") == (0, None)
    assert _entry(two, 2, "message.max.bytes") == ("10000", DYN_BROKER)
    assert _entry(one, 1, "message.max.bytes")[1] != DYN_BROKER
    _create_on(one, "led-by-one", 1)
    _create_on(one, "led-by-two", 2)
    _until("both partitions led", lambda: cluster.leader_of("led-by-one", 0) == 1
           and cluster.leader_of("led-by-two", 0) == 2)
    _until("broker 2 refuses a record over its own limit",
           lambda: _produce_code(two, "led-by-two", 20_000) == ErrorCode.message_too_large)
    assert _produce_code(one, "led-by-one", 20_000) == ErrorCode.none

    cluster.restart(2)
    cluster.wait_for_brokers({1, 2})
    assert _entry(two, 2, "message.max.bytes") == ("10000", DYN_BROKER)
    assert _entry(two, 2, "log.retention.ms") == ("3600000", DYN_DEFAULT)
    _until("broker 2 leads its partition again", lambda: cluster.leader_of("led-by-two", 0) == 2)
    assert _produce_code(two, "led-by-two", 20_000) == ErrorCode.message_too_large

"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs through real admin clients.

Traps other Kafka-compatible brokers fell into: DescribeConfigs without defaults, wrong
or missing config sources, no synonyms, validation that broke describe-then-alter round
trips. Unknown topic config names are refused with INVALID_CONFIG, as Kafka 4.4 does;
synonym chains are Kafka 4.4's (checked against it in tests/interop).

Config sources (DescribeConfigs v1+): DYNAMIC_TOPIC_CONFIG=1, STATIC_BROKER_CONFIG=4,
DEFAULT_CONFIG=5.

Fixtures `broker`, `admin`, `kp_admin` and `raw` come from tests/conftest.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.raw_client import RawClient, create_topic

DYNAMIC_TOPIC, STATIC_BROKER, DEFAULT = 1, 4, 5
TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = (AlterConfigOpType.SET, AlterConfigOpType.DELETE,
                                 AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT)
TIMEOUT = 20.0

# Kafka 4.x topic defaults that clients and tools rely on.
KAFKA_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "delete.retention.ms": "86400000",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.ms": "604800000",
    "segment.index.bytes": "10485760",
    "index.interval.bytes": "4096",
    "unclean.leader.election.enable": "false",
    "file.delete.delay.ms": "60000",
}


def _new_topic(admin: AdminClient, name: str, config: dict[str, str] | None = None) -> str:
    admin.create_topics([NewTopic(name, 1, 1, config=config or {})],
                        request_timeout=TIMEOUT)[name].result()
    return name


def _describe(admin: AdminClient, name: str, kind: ResourceType = ResourceType.TOPIC
              ) -> dict[str, Any]:
    resource = ConfigResource(kind, name)
    return admin.describe_configs([resource], request_timeout=TIMEOUT)[resource].result()  # type: ignore[no-any-return]


def _incremental(admin: AdminClient, name: str, *ops: tuple[str, str | None, AlterConfigOpType],
                 validate_only: bool = False) -> None:
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op) for key, value, op in ops])
    admin.incremental_alter_configs([resource], validate_only=validate_only,
                                    request_timeout=TIMEOUT)[resource].result()


def _legacy_alter(admin: AdminClient, name: str, configs: dict[str, str]) -> None:
    resource = ConfigResource(ResourceType.TOPIC, name, set_config=configs)
    admin.alter_configs([resource], request_timeout=TIMEOUT)[resource].result()


def _raw_describe(raw: RawClient, name: str, version: int = 4, kind: int = TOPIC,
                  keys: list[str] | None = None) -> Any:
    body = raw.request(32, version, include_synonyms=True, include_documentation=False,
                       resources=[{"resource_type": kind, "resource_name": name,
                                   "configuration_keys": keys}]).body
    return body.results[0]


def _synonyms(entry: Any) -> list[tuple[str, str | None, int]]:
    return [(s.name, s.value, int(s.source)) for s in entry.synonyms]


# --- DescribeConfigs --------------------------------------------------------------------


def test_defaults_are_described(admin: AdminClient, kp_admin: KafkaAdminClient) -> None:
    name = _new_topic(admin, "cfg-defaults")
    configs = _describe(admin, name)
    assert len(configs) >= 25, sorted(configs)
    for key, value in KAFKA_DEFAULTS.items():
        assert configs[key].value == value, key
        assert configs[key].source == DEFAULT, key
        assert configs[key].is_default, key
    assert all(entry.source == DEFAULT for entry in configs.values())
    answer = kp_admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, name)],
                                       config_filter="all")
    kp_configs = answer["topic"][name]
    assert kp_configs["retention.ms"]["value"] == "604800000"
    assert kp_configs["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
    assert set(KAFKA_DEFAULTS) <= set(kp_configs)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_topic_override_source_at_every_version(raw: RawClient, version: int) -> None:
    name = f"cfg-override-v{version}"
    assert create_topic(raw, name, configs={"retention.ms": "3600000"}).error_code == 0
    result = _raw_describe(raw, name, version=version)
    assert result.error_code == ErrorCode.none
    entries = {e.name: e for e in result.configs}
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].config_source == DYNAMIC_TOPIC
    assert entries["segment.ms"].config_source == DEFAULT
    assert not entries["retention.ms"].read_only
    # Kafka 4.4 lists the broker chain from log.retention.ms on; it has no default, and
    # log.retention.hours before it is dropped: the override alone remains
    assert _synonyms(entries["retention.ms"]) == [("retention.ms", "3600000", DYNAMIC_TOPIC)]
    assert _synonyms(entries["max.message.bytes"]) == [("message.max.bytes", "1048588", DEFAULT)]


def test_configuration_keys_filter(raw: RawClient) -> None:
    assert create_topic(raw, "cfg-keys").error_code == 0
    result = _raw_describe(raw, "cfg-keys", keys=["retention.ms", "cleanup.policy"])
    assert sorted(e.name for e in result.configs) == ["cleanup.policy", "retention.ms"]


def test_synonyms_only_when_asked(admin: AdminClient, raw: RawClient) -> None:
    assert create_topic(raw, "cfg-no-synonyms").error_code == 0
    body = raw.request(32, 4, include_synonyms=False, include_documentation=False,
                       resources=[{"resource_type": TOPIC, "resource_name": "cfg-no-synonyms",
                                   "configuration_keys": None}]).body
    assert all(not e.synonyms for e in body.results[0].configs)


def test_unknown_topic_describe_and_alter(admin: AdminClient, raw: RawClient) -> None:
    result = _raw_describe(raw, "cfg-no-such-topic")
    assert result.error_code == ErrorCode.unknown_topic_or_partition
    resource = ConfigResource(ResourceType.TOPIC, "cfg-no-such-topic", incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=SET)])
    future = admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource]
    with pytest.raises(KafkaException) as info:
        future.result()
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_broker_resource_describe(admin: AdminClient, broker: BrokerProcess) -> None:
    configs = _describe(admin, "0", ResourceType.BROKER)
    # the harness passes listeners and log.dirs on the command line: static config
    assert configs["log.dirs"].source == STATIC_BROKER
    assert configs["log.dirs"].value == str(broker.data_dir)
    assert configs["num.partitions"].source == DEFAULT
    assert configs["num.partitions"].value == "1"
    assert configs["auto.create.topics.enable"].value == "true"
    assert configs["message.max.bytes"].value == "1048588"


def test_static_broker_overrides(broker_factory: Any) -> None:
    node: BrokerProcess = broker_factory({
        "log.retention.hours": "3",
        "log.cleanup.policy": "compact",
        "message.max.bytes": "2000000",
        "num.partitions": "2",
    })
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    name = _new_topic(admin, "cfg-static")
    topic = _describe(admin, name)
    # Kafka 4.4 describes a value that comes from log.retention.hours as DEFAULT_CONFIG
    # (its synonym chain starts at log.retention.ms, which is unset)
    assert topic["retention.ms"].value == "10800000"
    assert topic["retention.ms"].source == DEFAULT
    assert topic["cleanup.policy"].value == "compact"
    assert topic["cleanup.policy"].source == STATIC_BROKER
    assert topic["max.message.bytes"].value == "2000000"
    assert topic["max.message.bytes"].source == STATIC_BROKER
    assert topic["segment.bytes"].source == DEFAULT
    broker_side = _describe(admin, "0", ResourceType.BROKER)
    assert broker_side["num.partitions"].value == "2"
    assert broker_side["num.partitions"].source == STATIC_BROKER
    assert broker_side["message.max.bytes"].source == STATIC_BROKER
    # a topic override beats the broker's; the synonym chain shows every level
    with RawClient(node.bootstrap) as raw:
        assert create_topic(raw, "cfg-static-override",
                            configs={"max.message.bytes": "60000"}).error_code == 0
        entries = {e.name: e for e in _raw_describe(raw, "cfg-static-override").configs}
        assert _synonyms(entries["max.message.bytes"]) == [
            ("max.message.bytes", "60000", DYNAMIC_TOPIC),
            ("message.max.bytes", "2000000", STATIC_BROKER),
            ("message.max.bytes", "1048588", DEFAULT)]
        assert _synonyms(entries["retention.ms"]) == []
        plain = {e.name: e for e in _raw_describe(raw, "cfg-static").configs}
        assert _synonyms(plain["cleanup.policy"]) == [
            ("log.cleanup.policy", "compact", STATIC_BROKER),
            ("log.cleanup.policy", "delete", DEFAULT)]


# --- AlterConfigs (legacy: replaces the whole set) --------------------------------------


def test_legacy_alter_configs_round_trip(admin: AdminClient, kp_admin: KafkaAdminClient) -> None:
    name = _new_topic(admin, "cfg-legacy")
    _legacy_alter(admin, name, {"retention.ms": "1000", "segment.ms": "2000"})
    configs = _describe(admin, name)
    assert (configs["retention.ms"].value, configs["retention.ms"].source) == ("1000", DYNAMIC_TOPIC)
    assert (configs["segment.ms"].value, configs["segment.ms"].source) == ("2000", DYNAMIC_TOPIC)
    # AlterConfigs replaces: what is not named goes back to its default
    _legacy_alter(admin, name, {"segment.ms": "3000"})
    configs = _describe(admin, name)
    assert configs["segment.ms"].value == "3000"
    assert (configs["retention.ms"].value, configs["retention.ms"].source) == (
        "604800000", DEFAULT)
    kp_admin.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, name,
                                             configs={"retention.bytes": "999999"})],
                           incremental=False)
    configs = _describe(admin, name)
    assert configs["retention.bytes"].value == "999999"


def test_describe_then_alter_round_trip(admin: AdminClient) -> None:
    """What tools do: read every config and write the same values back."""
    name = _new_topic(admin, "cfg-round-trip", {"retention.ms": "4242",
                                                "cleanup.policy": "compact,delete"})
    before = _describe(admin, name)
    _legacy_alter(admin, name, {k: v.value for k, v in before.items() if v.value is not None})
    after = _describe(admin, name)
    assert {k: v.value for k, v in after.items()} == {k: v.value for k, v in before.items()}


# --- IncrementalAlterConfigs ------------------------------------------------------------


def test_incremental_set_and_delete(admin: AdminClient) -> None:
    name = _new_topic(admin, "cfg-incr", {"segment.ms": "5000"})
    _incremental(admin, name, ("retention.ms", "86400000", SET))
    configs = _describe(admin, name)
    assert (configs["retention.ms"].value, configs["retention.ms"].source) == (
        "86400000", DYNAMIC_TOPIC)
    assert configs["segment.ms"].value == "5000", "incremental SET must keep other overrides"
    _incremental(admin, name, ("retention.ms", None, DELETE))
    configs = _describe(admin, name)
    assert (configs["retention.ms"].value, configs["retention.ms"].source) == (
        "604800000", DEFAULT)
    assert configs["segment.ms"].value == "5000"
    # deleting a config that is not set is not an error
    _incremental(admin, name, ("retention.ms", None, DELETE))


def test_incremental_append_and_subtract_on_cleanup_policy(admin: AdminClient) -> None:
    name = _new_topic(admin, "cfg-list-ops")
    _incremental(admin, name, ("cleanup.policy", "compact", APPEND))
    configs = _describe(admin, name)
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["cleanup.policy"].source == DYNAMIC_TOPIC
    _incremental(admin, name, ("cleanup.policy", "compact", APPEND))  # already there
    assert _describe(admin, name)["cleanup.policy"].value == "delete,compact"
    _incremental(admin, name, ("cleanup.policy", "delete", SUBTRACT))
    assert _describe(admin, name)["cleanup.policy"].value == "compact"
    _incremental(admin, name, ("cleanup.policy", None, DELETE))
    configs = _describe(admin, name)
    assert (configs["cleanup.policy"].value, configs["cleanup.policy"].source) == (
        "delete", DEFAULT)


def test_incremental_through_kafka_python(admin: AdminClient, kp_admin: KafkaAdminClient) -> None:
    name = _new_topic(admin, "cfg-incr-kp", {"retention.ms": "1000"})
    kp_admin.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, name, configs={
        "segment.bytes": ("SET", "1048576"),
        "retention.ms": ("DELETE", None),
        "cleanup.policy": ("APPEND", "compact"),
    })], incremental=True)
    configs = _describe(admin, name)
    assert configs["segment.bytes"].value == "1048576"
    assert configs["retention.ms"].source == DEFAULT
    assert configs["cleanup.policy"].value == "delete,compact"


def test_validate_only_changes_nothing(admin: AdminClient) -> None:
    name = _new_topic(admin, "cfg-validate-only")
    _incremental(admin, name, ("retention.ms", "1234", SET), validate_only=True)
    resource = ConfigResource(ResourceType.TOPIC, name, set_config={"segment.ms": "99"})
    admin.alter_configs([resource], validate_only=True, request_timeout=TIMEOUT)[resource].result()
    configs = _describe(admin, name)
    assert configs["retention.ms"].source == DEFAULT
    assert configs["segment.ms"].source == DEFAULT


def test_unknown_config_names_are_invalid_config(admin: AdminClient, raw: RawClient) -> None:
    """Kafka 4.4's controller refuses a topic config name it does not know, in every
    request and with validate_only too; deleting one is no error."""
    message = "Unknown topic config name: confluent.placement.constraints"
    for validate_only in (True, False):
        created = raw.request(19, 7, timeout=30_000, validate_only=validate_only, topics=[
            {"name": "cfg-unknown-names", "num_partitions": 1, "replication_factor": 1,
             "assignments": [], "configs": [{"name": "confluent.placement.constraints",
                                             "value": "{}"}]}]).body.topics[0]
        assert (created.error_code, created.error_message) == (ErrorCode.invalid_config,
                                                               message)
    name = _new_topic(admin, "cfg-unknown-names")
    for validate_only in (True, False):
        legacy = raw.request(33, 2, validate_only=validate_only, resources=[
            {"resource_type": TOPIC, "resource_name": name,
             "configs": [{"name": "confluent.placement.constraints", "value": "{}"}]}])
        incremental = raw.request(44, 1, validate_only=validate_only, resources=[
            {"resource_type": TOPIC, "resource_name": name,
             "configs": [{"name": "confluent.placement.constraints", "config_operation": 0,
                          "value": "{}"}]}])
        for body in (legacy.body, incremental.body):
            answer = body.responses[0]
            assert (answer.error_code, answer.error_message) == (ErrorCode.invalid_config,
                                                                 message)
    with pytest.raises(KafkaException) as info:
        _incremental(admin, name, ("message.downconversion.enable", "true", SET))
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG
    _incremental(admin, name, ("confluent.placement.constraints", None, DELETE))
    assert "confluent.placement.constraints" not in _describe(admin, name)


@pytest.mark.parametrize(("key", "value"), [
    ("retention.ms", "soon"),
    ("retention.ms", "-5"),
    ("cleanup.policy", "shred"),
    ("min.insync.replicas", "0"),
    ("message.timestamp.type", "WallClock"),
    ("max.message.bytes", "2147483648"),
    ("unclean.leader.election.enable", "maybe"),
    ("min.cleanable.dirty.ratio", "half"),
])
def test_invalid_values_are_invalid_config(admin: AdminClient, raw: RawClient, key: str,
                                           value: str) -> None:
    name = f"cfg-invalid-{key}-{abs(hash(value)) % 1000}"
    _new_topic(admin, name)
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([resource], request_timeout=TIMEOUT)[resource].result()
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG == 40
    legacy = raw.request(33, 2, validate_only=False, resources=[
        {"resource_type": TOPIC, "resource_name": name,
         "configs": [{"name": key, "value": value}]}]).body
    assert legacy.responses[0].error_code == ErrorCode.invalid_config
    assert legacy.responses[0].error_message
    assert _describe(admin, name)[key].source == DEFAULT


def test_append_to_a_non_list_config_is_invalid(admin: AdminClient) -> None:
    name = _new_topic(admin, "cfg-append-scalar")
    with pytest.raises(KafkaException) as info:
        _incremental(admin, name, ("retention.ms", "5", APPEND))
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert _describe(admin, name)["retention.ms"].source == DEFAULT


def test_one_bad_resource_does_not_block_the_others(raw: RawClient) -> None:
    for name in ("cfg-mixed-ok", "cfg-mixed-bad"):
        assert create_topic(raw, name).error_code == 0
    body = raw.request(44, 1, validate_only=False, resources=[
        {"resource_type": TOPIC, "resource_name": "cfg-mixed-ok",
         "configs": [{"name": "retention.ms", "config_operation": 0, "value": "5555"}]},
        {"resource_type": TOPIC, "resource_name": "cfg-mixed-bad",
         "configs": [{"name": "retention.ms", "config_operation": 0, "value": "x"}]},
    ]).body
    codes = {r.resource_name: r.error_code for r in body.responses}
    assert codes == {"cfg-mixed-ok": ErrorCode.none, "cfg-mixed-bad": ErrorCode.invalid_config}
    entries = {e.name: e for e in _raw_describe(raw, "cfg-mixed-ok").configs}
    assert entries["retention.ms"].value == "5555"

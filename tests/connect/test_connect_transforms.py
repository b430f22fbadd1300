"""SMT chains configured as Kafka Connect configures them (`transforms`, `predicates`,
aliases, `negate`), and the errors a bad chain config gives."""

from __future__ import annotations

import re

import pytest

from strom.connect.api.config import ConfigDef
from strom.connect.api.errors import ConfigError, DataError
from strom.connect.api.records import SourceRecord
from strom.connect.data.schema import STRING_SCHEMA
from strom.connect.plugins import Plugins
from strom.connect.transforms.chain import build_chain, enrich

T = "org.apache.kafka.connect.transforms."


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return Plugins()


def record(topic: str, value: object = "v") -> SourceRecord:
    return SourceRecord(topic, None, None, None, STRING_SCHEMA if value is not None else None, value,
                        1_700_000_000_000)


def test_chain_with_predicate_and_negate(plugins: Plugins) -> None:
    chain = build_chain({
        "transforms": "route, drop",
        "transforms.route.type": T + "RegexRouter", "transforms.route.regex": "(.*)-raw",
        "transforms.route.replacement": "$1-clean",
        "transforms.drop.type": "Filter", "transforms.drop.predicate": "tomb",
        "transforms.drop.negate": "true",
        "predicates": "tomb", "predicates.tomb.type": "RecordIsTombstone",
    }, plugins)
    out = chain.apply(record("orders-raw", None))
    assert out is not None and out.topic == "orders-clean"  # a tombstone is kept (negated filter)
    assert chain.apply(record("orders-raw")) is None  # everything else dropped


def test_chain_config_errors(plugins: Plugins) -> None:
    with pytest.raises(ConfigError, match=re.escape("Duplicate alias provided.")):
        build_chain({"transforms": "a,a"}, plugins)
    with pytest.raises(ConfigError, match=re.escape('Missing required configuration "transforms.a.type"')):
        build_chain({"transforms": "a"}, plugins)
    with pytest.raises(ConfigError, match=re.escape("Class com.example.Nope could not be found.")):
        build_chain({"transforms": "a", "transforms.a.type": "com.example.Nope"}, plugins)
    with pytest.raises(ConfigError, match=re.escape("Predicate p not found")):
        build_chain({"transforms": "a", "transforms.a.type": T + "Filter",
                     "transforms.a.predicate": "p"}, plugins)
    with pytest.raises(ConfigError, match=re.escape("Invalid rename mapping")):
        build_chain({"transforms": "a", "transforms.a.type": T + "ReplaceField$Value",
                     "transforms.a.renames": "x"}, plugins)


def test_enrich_adds_each_alias_keys_in_its_group(plugins: Plugins) -> None:
    config = {"transforms": "mask", "transforms.mask.type": T + "MaskField$Value"}
    enriched = enrich(ConfigDef(), config, plugins)
    assert {"transforms.mask.type", "transforms.mask.predicate", "transforms.mask.negate",
            "transforms.mask.fields"} <= set(enriched.keys)
    assert enriched.keys["transforms.mask.fields"].group == "Transforms: mask"
    errors = {v.name: v.errors for v in enriched.validate(config)}
    assert errors["transforms.mask.fields"] == [
        'Missing required configuration "transforms.mask.fields" which has no default value.']


def test_schemaless_transform_of_a_string_value_is_a_data_error(plugins: Plugins) -> None:
    chain = build_chain({"transforms": "i", "transforms.i.type": T + "InsertField$Value",
                         "transforms.i.topic.field": "t"}, plugins)
    with pytest.raises(DataError, match=r"Only Struct objects supported for \[field insertion\]"):
        chain.apply(record("t"))

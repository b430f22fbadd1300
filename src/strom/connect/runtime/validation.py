"""Connector config validation as Kafka's AbstractHerder.validateConnectorConfig does it,
shared by the standalone and distributed herders: the common keys (enriched with each
transform's and predicate's), the sink's topics rule, then the connector's own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strom.connect.api.config import ConfigDef, ConfigValue, config_infos
from strom.connect.api.connector import Connector
from strom.connect.api.errors import BadRequestError, ConfigError
from strom.connect.runtime.config import connector_config_def
from strom.connect.transforms.chain import enrich
from strom.connect.version import VERSION

if TYPE_CHECKING:
    from strom.connect.runtime.worker import Worker


def validate_config(worker: Worker, props: Mapping[str, str]) -> dict[str, Any]:
    """Kafka's validate answer (`/config/validate`): values of unset converters are the
    worker's, plugin versions are filled in, `name` is the class as the request gave it."""
    from strom.connect.runtime.worker import connector_kind

    class_name = props.get("connector.class")
    if not class_name:
        raise BadRequestError("Connector config " + str(dict(props)) + " contains no connector type")
    try:
        cls = worker.plugins.connector_class(class_name)
    except ConfigError as exc:
        raise BadRequestError(str(exc)) from exc
    connector = cls()
    common = enrich(connector_config_def(connector_kind(cls)), props, worker.plugins)
    values = common.validate(_with_defaults(worker, props, connector))
    _check_sink_topics(props, values, connector_kind(cls))
    own: ConfigDef = connector.config()
    own_values = connector.validate(props)
    merged = common.merge(own)
    groups = common.groups() + [g for g in own.groups() if g not in common.groups()]
    return config_infos(class_name, merged, values + own_values, groups)


def check_config(worker: Worker, props: Mapping[str, str]) -> None:
    """BadRequestError with Kafka's message if the config has errors."""
    infos = validate_config(worker, props)
    errors = [e for c in infos["configs"] for e in c["value"]["errors"]]
    if errors:
        raise BadRequestError(
            f"Connector configuration is invalid and contains the following {len(errors)} error(s):\n"
            + "\n".join(errors) + "\nYou can also find the above list of errors at the endpoint "
            "`/connector-plugins/{connectorType}/config/validate`")


def _with_defaults(worker: Worker, props: Mapping[str, str], connector: Connector) -> dict[str, str]:
    filled = dict(props)
    filled.setdefault("connector.plugin.version", connector.version())
    for role in ("key.converter", "value.converter", "header.converter"):
        filled.setdefault(role, str(worker.config.get(role)))
        filled.setdefault(role + ".plugin.version", VERSION)
    for alias_key in ("transforms", "predicates"):
        for alias in str(props.get(alias_key, "")).split(","):
            if alias.strip():
                filled.setdefault(f"{alias_key}.{alias.strip()}.plugin.version", VERSION)
    return filled


def _check_sink_topics(props: Mapping[str, str], values: list[ConfigValue], kind: str) -> None:
    """Kafka's SinkConnectorConfig.validate: exactly one of topics and topics.regex."""
    if kind != "sink":
        return
    has_topics = bool(str(props.get("topics", "")).strip())
    has_regex = bool(str(props.get("topics.regex", "")).strip())
    message = None
    if has_topics and has_regex:
        message = "topics and topics.regex are mutually exclusive options, but both are set."
    elif not has_topics and not has_regex:
        message = "Must configure one of topics or topics.regex"
    if message:
        for value in values:
            if value.name in ("topics", "topics.regex"):
                value.errors.append(message)

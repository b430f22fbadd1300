"""Worker and connector configuration under Kafka Connect's names and defaults.

`WORKER_CONFIG` is what `connect-standalone.sh` reads from worker.properties (the
distributed-mode keys `group.id`, `config.storage.topic`, ... are defined too, so one
file serves both once distributed mode exists). `connector_config_def` is Kafka's
ConnectorConfig / SinkConnectorConfig / SourceConnectorConfig: the keys every connector
has (`name`, `connector.class`, `tasks.max`, converters, `transforms`, `errors.*`), in
Kafka's groups, which validate reports before the connector's own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strom.connect.api.config import (
    AbstractConfig,
    ConfigDef,
    ConfigType,
    Importance,
    Width,
    at_least,
    non_empty_string,
    one_of,
)
from strom.connect.api.errors import ConfigError

JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
SIMPLE_HEADER_CONVERTER = "org.apache.kafka.connect.storage.SimpleHeaderConverter"

WORKER_CONFIG = (
    ConfigDef()
    .define("bootstrap.servers", ConfigType.LIST, "localhost:9092", Importance.HIGH,
            "A list of host/port pairs used to establish the initial connection to the Kafka cluster.")
    .define("client.id", ConfigType.STRING, "", Importance.LOW, "An id string passed to the server.")
    .define("key.converter", ConfigType.CLASS, importance=Importance.HIGH, documentation=
            "Converter class used to convert between Kafka Connect format and the serialized form "
            "that is written to Kafka (record keys); required, as in Kafka.")
    .define("value.converter", ConfigType.CLASS, importance=Importance.HIGH,
            documentation="Converter class for record values; required, as in Kafka.")
    .define("header.converter", ConfigType.CLASS, SIMPLE_HEADER_CONVERTER, Importance.LOW,
            "HeaderConverter class used to convert between Kafka Connect format and the serialized "
            "form that is written to Kafka.")
    .define("offset.storage.file.filename", ConfigType.STRING, "", Importance.HIGH,
            "File to store source connector offsets in (standalone mode).")
    .define("offset.flush.interval.ms", ConfigType.LONG, 60_000, Importance.LOW,
            "Interval at which to try committing offsets for tasks.")
    .define("offset.flush.timeout.ms", ConfigType.LONG, 5_000, Importance.LOW,
            "Maximum number of milliseconds to wait for records to flush before cancelling the "
            "commit.")
    .define("task.shutdown.graceful.timeout.ms", ConfigType.LONG, 5_000, Importance.LOW,
            "Amount of time to wait for tasks to shutdown gracefully.")
    .define("listeners", ConfigType.LIST, "http://:8083", Importance.LOW,
            "List of comma-separated URIs the REST API will listen on.")
    .define("rest.advertised.host.name", ConfigType.STRING, None, Importance.LOW,
            "Hostname given out to other workers and in status answers.")
    .define("rest.advertised.port", ConfigType.INT, None, Importance.LOW,
            "Port given out to other workers and in status answers.")
    .define("rest.advertised.listener", ConfigType.STRING, None, Importance.LOW,
            "The advertised listener (http or https).")
    .define("plugin.path", ConfigType.LIST, "", Importance.LOW,
            "Directories of Python modules and packages holding plugins (connectors, converters, "
            "transformations).")
    .define("connector.client.config.override.policy", ConfigType.STRING, "All", Importance.MEDIUM,
            "Which client configs connectors may override: All, None or Principal.",
            validator=one_of("All", "None", "Principal"))
    .define("group.id", ConfigType.STRING, None, Importance.HIGH,
            "Distributed mode: the Connect cluster this worker belongs to.")
    .define("config.storage.topic", ConfigType.STRING, None, Importance.HIGH,
            "Distributed mode: the topic of connector configurations.")
    .define("offset.storage.topic", ConfigType.STRING, None, Importance.HIGH,
            "Distributed mode: the topic of source offsets.")
    .define("status.storage.topic", ConfigType.STRING, None, Importance.HIGH,
            "Distributed mode: the topic of connector and task statuses.")
    .define("topic.creation.enable", ConfigType.BOOLEAN, True, Importance.LOW,
            "Whether source connectors may create their topics (topic.creation.* settings).")
    .define("config.storage.replication.factor", ConfigType.SHORT, 3, Importance.LOW,
            "Replication factor of the config topic when it is created (-1: the broker's).")
    .define("offset.storage.replication.factor", ConfigType.SHORT, 3, Importance.LOW,
            "Replication factor of the offsets topic when it is created (-1: the broker's).")
    .define("status.storage.replication.factor", ConfigType.SHORT, 3, Importance.LOW,
            "Replication factor of the status topic when it is created (-1: the broker's).")
    .define("offset.storage.partitions", ConfigType.INT, 25, Importance.LOW,
            "Partitions of the offsets topic when it is created.")
    .define("status.storage.partitions", ConfigType.INT, 5, Importance.LOW,
            "Partitions of the status topic when it is created.")
    .define("session.timeout.ms", ConfigType.INT, 10_000, Importance.HIGH,
            "How long the group waits for a silent worker before it rebalances without it.")
    .define("heartbeat.interval.ms", ConfigType.INT, 3_000, Importance.HIGH,
            "How often a worker heartbeats to the group coordinator.")
    .define("rebalance.timeout.ms", ConfigType.INT, 60_000, Importance.HIGH,
            "How long a rebalance waits for every worker to rejoin.")
    .define("scheduled.rebalance.max.delay.ms", ConfigType.INT, 300_000, Importance.LOW,
            "How long the work of a departed worker waits for it to come back before it is "
            "reassigned.")
    .define("inter.worker.key.generation.algorithm", ConfigType.STRING, "HmacSHA256", Importance.LOW,
            "Distributed mode: the algorithm of the session key the leader writes to the config "
            "topic (KIP-507).", validator=one_of("HmacSHA256"))
    .define("inter.worker.key.size", ConfigType.INT, None, Importance.LOW,
            "Distributed mode: the session key's size in bits (the algorithm's default: 256).")
    .define("inter.worker.key.ttl.ms", ConfigType.INT, 3_600_000, Importance.LOW,
            "Distributed mode: how long a session key lives before the leader writes a new one.")
    .define("inter.worker.signature.algorithm", ConfigType.STRING, "HmacSHA256", Importance.LOW,
            "Distributed mode: the algorithm workers sign internal requests with.",
            validator=one_of("HmacSHA256"))
    .define("inter.worker.verification.algorithms", ConfigType.LIST, "HmacSHA256", Importance.LOW,
            "Distributed mode: the signature algorithms this worker accepts on internal requests.")
    .define("exactly.once.source.support", ConfigType.STRING, "disabled", Importance.HIGH,
            "Distributed mode: exactly-once source tasks (KIP-618): disabled, preparing (fence "
            "zombies, not transactional yet) or enabled.",
            validator=one_of("disabled", "preparing", "enabled", case_insensitive=True))
    .define("connect.protocol", ConfigType.STRING, "sessioned", Importance.LOW,
            "The Connect group protocol: sessioned (incremental cooperative, signed internal "
            "requests; also offers compatible) or compatible (incremental cooperative, unsigned). "
            "eager is not spoken.", validator=one_of("compatible", "sessioned"))
)

COMMON_GROUP, TRANSFORMS_GROUP, PREDICATES_GROUP, ERROR_GROUP = (
    "Common", "Transforms", "Predicates", "Error Handling")


def _common() -> ConfigDef:
    """Kafka's ConnectorConfig keys in its order (KIP-891's `*.plugin.version` included:
    Strom runs one version of each plugin, so they only echo it)."""
    d = ConfigDef()
    d.define("name", ConfigType.STRING, importance=Importance.HIGH,
             documentation="Globally unique name to use for this connector.",
             validator=non_empty_string, group=COMMON_GROUP, order_in_group=1,
             width=Width.MEDIUM, display_name="Connector name")
    d.define("connector.class", ConfigType.STRING, importance=Importance.HIGH,
             documentation="Name or alias of the class for this connector.",
             group=COMMON_GROUP, order_in_group=2, width=Width.LONG, display_name="Connector class")
    d.define("connector.plugin.version", ConfigType.STRING, None, Importance.MEDIUM,
             "Version of the connector (informational: one version of each plugin is loaded).",
             group=COMMON_GROUP, order_in_group=3, width=Width.MEDIUM, display_name="Connector version")
    d.define("tasks.max", ConfigType.INT, 1, Importance.HIGH, "Maximum number of tasks to use for "
             "this connector.", validator=at_least(1), group=COMMON_GROUP, order_in_group=4,
             width=Width.SHORT, display_name="Tasks max")
    d.define("tasks.max.enforce", ConfigType.BOOLEAN, True, Importance.LOW,
             "(Deprecated) Whether to enforce that the tasks.max property is respected.",
             group=COMMON_GROUP, order_in_group=5, width=Width.SHORT, display_name="Enforce tasks max")
    order = 6
    for role, label in (("key", "Key"), ("value", "Value"), ("header", "Header")):
        d.define(f"{role}.converter", ConfigType.CLASS, None, Importance.LOW,
                 f"Converter for record {role}s; the worker's when unset.", group=COMMON_GROUP,
                 order_in_group=order, width=Width.SHORT, display_name=f"{label} converter class")
        d.define(f"{role}.converter.plugin.version", ConfigType.STRING, None, Importance.LOW,
                 f"Version of the {role} converter (informational).", group=COMMON_GROUP,
                 order_in_group=order + 1, width=Width.SHORT, display_name=f"{label} converter version")
        order += 2
    d.define("transforms", ConfigType.LIST, "", Importance.LOW, "Aliases for the transformations "
             "to be applied to records.", group=TRANSFORMS_GROUP, order_in_group=12, width=Width.LONG,
             display_name="Transforms")
    d.define("predicates", ConfigType.LIST, "", Importance.LOW, "Aliases for the predicates used "
             "by transformations.", group=PREDICATES_GROUP, order_in_group=13, width=Width.LONG,
             display_name="Predicates")
    d.define("config.action.reload", ConfigType.STRING, "restart", Importance.LOW,
             "What to do when external configuration providers change a value: none or restart.",
             validator=one_of("none", "restart"), group=COMMON_GROUP, order_in_group=14,
             width=Width.MEDIUM, display_name="Reload Action")
    return d


def _errors(definition: ConfigDef) -> ConfigDef:
    return (
        definition
        .define("errors.retry.timeout", ConfigType.LONG, 0, Importance.MEDIUM,
                "The maximum duration in milliseconds that a failed operation will be reattempted. "
                "The default is 0, which means no retries will be attempted. Use -1 for infinite "
                "retries.", group=ERROR_GROUP, order_in_group=1, width=Width.MEDIUM,
                display_name="Retry Timeout for Errors")
        .define("errors.retry.delay.max.ms", ConfigType.LONG, 60_000, Importance.MEDIUM,
                "The maximum duration in milliseconds between consecutive retry attempts.",
                group=ERROR_GROUP, order_in_group=2, width=Width.MEDIUM,
                display_name="Maximum Delay Between Retries for Errors")
        .define("errors.tolerance", ConfigType.STRING, "none", Importance.MEDIUM,
                "Behavior for tolerating errors during connector operation. 'none' is the default "
                "value and signals that any error will result in an immediate connector task failure; "
                "'all' changes the behavior to skip over problematic records.",
                validator=one_of("none", "all"), group=ERROR_GROUP, order_in_group=3,
                width=Width.SHORT, display_name="Error Tolerance")
        .define("errors.log.enable", ConfigType.BOOLEAN, False, Importance.MEDIUM,
                "If true, write each error and the details of the failed operation and problematic "
                "record to the Connect application log.", group=ERROR_GROUP, order_in_group=4,
                width=Width.SHORT, display_name="Log Errors")
        .define("errors.log.include.messages", ConfigType.BOOLEAN, False, Importance.MEDIUM,
                "Whether to include in the log the Connect record that resulted in a failure.",
                group=ERROR_GROUP, order_in_group=5, width=Width.SHORT, display_name="Log Error Details")
    )


def _sink_extras(definition: ConfigDef) -> ConfigDef:
    return (
        definition
        .define("topics", ConfigType.LIST, "", Importance.HIGH, "List of topics to consume, separated "
                "by commas", group=COMMON_GROUP, order_in_group=4, width=Width.LONG, display_name="Topics")
        .define("topics.regex", ConfigType.STRING, "", Importance.HIGH, "Regular expression giving "
                "topics to consume.", group=COMMON_GROUP, order_in_group=4, width=Width.LONG,
                display_name="Topics regex")
        .define("errors.deadletterqueue.topic.name", ConfigType.STRING, "", Importance.MEDIUM,
                "The name of the topic to be used as the dead letter queue (DLQ) for messages that "
                "result in an error when processed by this sink connector, or its transformations or "
                "converters.", group=ERROR_GROUP, order_in_group=6, width=Width.MEDIUM,
                display_name="Dead Letter Queue Topic Name")
        .define("errors.deadletterqueue.topic.replication.factor", ConfigType.SHORT, 3,
                Importance.MEDIUM, "Replication factor used to create the dead letter queue topic "
                "when it doesn't already exist.", group=ERROR_GROUP, order_in_group=7, width=Width.MEDIUM,
                display_name="Dead Letter Queue Topic Replication Factor")
        .define("errors.deadletterqueue.context.headers.enable", ConfigType.BOOLEAN, False,
                Importance.MEDIUM, "If true, add headers containing error context to the messages "
                "written to the dead letter queue.", group=ERROR_GROUP, order_in_group=8, width=Width.MEDIUM,
                display_name="Enable Error Context Headers")
    )


def _source_extras(definition: ConfigDef) -> ConfigDef:
    eos = "Exactly Once Support"
    return (
        definition
        .define("topic.creation.groups", ConfigType.LIST, "", Importance.LOW,
                "Groups of configurations for topics created by source connectors",
                group="Topic Creation", order_in_group=1, width=Width.LONG,
                display_name="Topic Creation Groups")
        .define("exactly.once.support", ConfigType.STRING, "requested", Importance.MEDIUM,
                "Whether to require the connector to support exactly-once semantics (distributed "
                "workers with exactly.once.source.support=enabled).",
                validator=one_of("requested", "required", case_insensitive=True),
                group=eos, order_in_group=2, width=Width.SHORT, display_name="Exactly once support")
        .define("transaction.boundary", ConfigType.STRING, "poll", Importance.MEDIUM,
                "Where exactly-once source transactions end: poll, interval or connector (only "
                "for connectors that define their own boundaries).",
                validator=one_of("poll", "interval", "connector", case_insensitive=True),
                group=eos, order_in_group=3, width=Width.SHORT, display_name="Transaction Boundary")
        .define("transaction.boundary.interval.ms", ConfigType.LONG, None, Importance.LOW,
                "The transaction interval when transaction.boundary=interval.", group=eos,
                order_in_group=4, width=Width.SHORT, display_name="Transaction boundary interval")
        .define("offsets.storage.topic", ConfigType.STRING, None, Importance.LOW,
                "The name of a separate offsets topic to use for this connector (distributed mode).",
                group="offsets.topic", order_in_group=1, width=Width.LONG, display_name="Offsets topic")
    )


def connector_config_def(kind: str | None) -> ConfigDef:
    """The keys every connector of `kind` ("source", "sink" or None) has."""
    definition = _errors(_common())  # sink keys come after the error keys, as in Kafka
    if kind == "sink":
        return _sink_extras(definition)
    if kind == "source":
        return _source_extras(definition)
    return definition


class WorkerConfig(AbstractConfig):
    """Parsed worker.properties; client settings by prefix (`producer.`, `consumer.`, `admin.`)."""

    def __init__(self, props: Mapping[str, Any]) -> None:
        super().__init__(WORKER_CONFIG, props)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(self.get_list("bootstrap.servers"))

    def client_props(self, prefix: str) -> dict[str, Any]:
        """librdkafka properties for one client role: the worker's `<prefix>...` entries,
        minus the Java-only ones librdkafka refuses."""
        return {k: v for k, v in self.originals_with_prefix(prefix).items() if k not in JAVA_ONLY}

    def listener(self) -> tuple[str, int]:
        """(host, port) of the first `listeners` entry; only http is served."""
        first = self.get_list("listeners")[0]
        scheme, _, rest = first.partition("://")
        if scheme.lower() != "http":
            raise ConfigError("listeners", first, "only http listeners are supported")
        host, _, port = rest.rpartition(":")
        return host or "0.0.0.0", int(port)


#: Java client properties that have no librdkafka equivalent; dropped from overrides.
JAVA_ONLY = frozenset({"key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
                       "interceptor.classes", "metric.reporters", "max.block.ms", "buffer.memory"})

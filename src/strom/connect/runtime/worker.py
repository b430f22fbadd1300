"""`Worker`: builds connectors and tasks from configs and starts them (Kafka's Worker).

It owns the plugin registry, the worker config, the Kafka clients (through
`strom.client`) and the offset store; the herder decides what runs, the worker knows
how. Client configs are layered as Kafka layers them: Connect's defaults, then the
worker's `producer.`/`consumer.`/`admin.` properties, then the connector's
`producer.override.`/`consumer.override.`/`admin.override.` (policy `All`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping
from typing import Any

from strom.client import KafkaClients
from strom.client.admin import ensure_topic
from strom.connect.api.config import AbstractConfig, ConfigDef
from strom.connect.api.connector import Connector, SinkConnector
from strom.connect.api.errors import ConfigError
from strom.connect.converters.base import Converter
from strom.connect.plugins import Plugins
from strom.connect.runtime.config import JAVA_ONLY, WorkerConfig, connector_config_def
from strom.connect.runtime.errors import DeadLetterQueueReporter, ErrorHandler
from strom.connect.runtime.metrics import WorkerMetrics
from strom.connect.runtime.offsets import OffsetStore
from strom.connect.runtime.sink_task import WorkerSinkTask
from strom.connect.runtime.source_task import WorkerSourceTask
from strom.connect.runtime.status import TaskId
from strom.connect.runtime.worker_task import StatusListener, TaskParts, WorkerTask
from strom.connect.transforms.chain import build_chain, enrich

log = logging.getLogger(__name__)

TASK_CLASS = "task.class"
# murmur2: Java's default partitioner, so a keyed record lands where Kafka Connect puts it
PRODUCER_DEFAULTS = {"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                     "max.in.flight.requests.per.connection": 5, "partitioner": "murmur2_random"}
# fetch.queue.backoff.ms: once its queue holds queued.min.messages (100k) librdkafka waits
# this long (1 s by default) before fetching again, longer than a task takes to drain 100k
# records, so a sink stalled once a second (as Java's consumer, which has no such pause,
# does not); a caller's consumer.* properties still override both.
CONSUMER_DEFAULTS = {"enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": False, "fetch.queue.backoff.ms": 10}
# A task allocates a few short-lived objects per record (record, dicts, converted bytes);
# at CPython's default first threshold (700) the collector runs every ~100 records and
# took a fifth of a task's CPU in the file source/sink benchmark. Records die young, so
# collecting less often costs little memory.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Raise the collector's thresholds for a worker process (never lowers them)."""
    current = gc.get_threshold()
    if current[0] < GC_THRESHOLDS[0]:
        gc.set_threshold(*(max(c, t) for c, t in zip(current, GC_THRESHOLDS, strict=True)))


def connector_kind(connector: Connector | type[Connector]) -> str:
    cls = connector if isinstance(connector, type) else type(connector)
    return "sink" if issubclass(cls, SinkConnector) else "source"


class Worker:
    def __init__(self, config: WorkerConfig, plugins: Plugins, store: OffsetStore, worker_id: str) -> None:
        self.config = config
        self.plugins = plugins
        self.store = store
        self.worker_id = worker_id
        # one KafkaClients for every role: its own properties would override each role's, so
        # they stay empty and each client gets its role's layers as defaults
        self.clients = KafkaClients(config.bootstrap_servers, client_id="connect-worker")
        self.metrics = WorkerMetrics()
        tune_gc()

    # --- configs ------------------------------------------------------------------------------

    def connector_config(self, props: Mapping[str, str]) -> AbstractConfig:
        """The parsed common config of a connector, its transforms' keys included."""
        cls = self.plugins.connector_class(str(props.get("connector.class", "")))
        definition = enrich(connector_config_def(connector_kind(cls)), props, self.plugins)
        return AbstractConfig(definition, props)

    def _converter(self, role: str, connector: AbstractConfig) -> tuple[Converter, str]:
        """A configured converter: the connector's class and properties win over the worker's."""
        name = connector.get(role) or self.config.get(role)
        converter: Converter = self.plugins.new(str(name), Converter, role)
        settings = {**self.config.originals_with_prefix(role + "."),
                    **connector.originals_with_prefix(role + ".")}
        if role == "header.converter":
            settings.setdefault("converter.type", "header")
        converter.configure(settings, role == "key.converter")
        desc = self.plugins.describe(str(name))
        return converter, desc.name if desc else str(name)

    def _client_props(self, role: str, connector: AbstractConfig) -> dict[str, Any]:
        overrides = {k: v for k, v in connector.originals_with_prefix(role + ".override.").items()
                     if k not in JAVA_ONLY}
        if self.config.get("connector.client.config.override.policy") == "None" and overrides:
            raise ConfigError(f"The '{role}' overrides of this connector are not allowed by the "
                              f"worker's connector.client.config.override.policy")
        return {**self.config.client_props(role + "."), **overrides}

    # --- connectors -----------------------------------------------------------------------------

    def new_connector(self, props: Mapping[str, str]) -> Connector:
        cls = self.plugins.connector_class(str(props.get("connector.class", "")))
        return cls()

    def task_configs(self, connector: Connector, props: Mapping[str, str]) -> list[dict[str, str]]:
        """The connector's task configs, each with `task.class` (and the sink's topics), as
        Kafka's Worker.connectorTaskConfigs gives them."""
        config = self.connector_config(props)
        max_tasks = config.get_int("tasks.max")
        configs = connector.task_configs(max_tasks)
        if len(configs) > max_tasks and config.get_bool("tasks.max.enforce"):
            raise ConfigError(f"The connector {props.get('name')} has generated {len(configs)} tasks, "
                              f"which is greater than {max_tasks}, the maximum number of tasks it is "
                              f"configured to create.")
        task_cls = connector.task_class()
        result = []
        for task_config in configs:
            entry = {str(k): str(v) for k, v in task_config.items()}
            entry[TASK_CLASS] = f"{task_cls.__module__}.{task_cls.__qualname__}"
            if connector_kind(connector) == "sink":
                for key in ("topics", "topics.regex"):
                    if key in props:
                        entry[key] = str(props[key])
            result.append(entry)
        return result

    # --- tasks ------------------------------------------------------------------------------

    def build_task(self, task_id: TaskId, connector: Connector, props: Mapping[str, str],
                   task_config: dict[str, str], listener: StatusListener,
                   on_topic: Callable[[str], None]) -> WorkerTask:
        config = self.connector_config(props)
        key, key_name = self._converter("key.converter", config)
        value, value_name = self._converter("value.converter", config)
        header, header_name = self._converter("header.converter", config)
        task_cls = connector.task_class()
        parts = TaskParts(task_id, task_cls(), dict(task_config), config, key, value, header,
                          (key_name, value_name, header_name), build_chain(props, self.plugins),
                          ErrorHandler(config, str(task_id)))
        timeout = int(self.config.get("task.shutdown.graceful.timeout.ms")) / 1000
        flush_interval = int(self.config.get("offset.flush.interval.ms")) / 1000
        task: WorkerTask
        if connector_kind(connector) == "sink":
            task = WorkerSinkTask(parts, listener, timeout,
                                  consumer_factory=lambda: self._consumer(task_id, config),
                                  flush_interval_s=flush_interval,
                                  subscription=(config.get_list("topics"), config.get_string("topics.regex")),
                                  dlq=self._dlq(task_id, config), on_topic=on_topic)
        else:
            task = WorkerSourceTask(parts, listener, timeout,
                                    producer_factory=lambda: self._producer(task_id, config),
                                    store=self.store, flush_interval_s=flush_interval,
                                    flush_timeout_s=int(self.config.get("offset.flush.timeout.ms")) / 1000,
                                    on_topic=lambda topic: self._on_source_topic(topic, config, on_topic))
        task.metrics = self.metrics.register(task_id, connector_kind(connector), parts.errors)
        return task

    def _producer(self, task_id: TaskId, config: AbstractConfig) -> Any:
        props = {**PRODUCER_DEFAULTS, "client.id": f"connector-producer-{task_id}",
                 **self._client_props("producer", config)}
        return self.clients.producer(props)

    def _consumer(self, task_id: TaskId, config: AbstractConfig) -> Any:
        props = {**CONSUMER_DEFAULTS, "group.id": f"connect-{task_id.connector}",
                 "client.id": f"connector-consumer-{task_id}", **self._client_props("consumer", config)}
        return self.clients.consumer(props)

    def _dlq(self, task_id: TaskId, config: AbstractConfig) -> DeadLetterQueueReporter | None:
        topic = config.get_string("errors.deadletterqueue.topic.name")
        if not topic:
            return None
        replication = config.get_int("errors.deadletterqueue.topic.replication.factor")
        ensure_topic(self.clients, topic, 1, replication)
        producer = self.clients.producer({**PRODUCER_DEFAULTS,
                                          "client.id": f"connector-dlq-producer-{task_id}",
                                          **self._client_props("producer", config)})
        return DeadLetterQueueReporter(producer, topic, task_id.connector, task_id.task,
                                       config.get_bool("errors.deadletterqueue.context.headers.enable"))

    def _on_source_topic(self, topic: str, config: AbstractConfig, on_topic: Callable[[str], None]) -> None:
        """Create a source topic from `topic.creation.default.*` if so configured (KIP-158)."""
        creation = config.originals_with_prefix("topic.creation.default.")
        if creation and self.config.get_bool("topic.creation.enable"):
            partitions = int(creation.pop("partitions", -1))
            replication = int(creation.pop("replication.factor", -1))
            settings = {k: str(v) for k, v in creation.items()}
            ensure_topic(self.clients, topic, partitions, replication, settings)
        on_topic(topic)

    def connector_definition(self, connector: Connector) -> ConfigDef:
        return connector.config()

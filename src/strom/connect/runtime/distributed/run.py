"""`strom connect distributed worker.properties`, as `connect-distributed.sh` runs it:
`group.id`, the three storage topics (created compacted if missing), the REST API on
`listeners`; the worker's REST URL is its identity in the group and in statuses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from strom.client import KafkaClients
from strom.config.properties import load_properties
from strom.connect.api.errors import ConfigError
from strom.connect.plugins import Plugins
from strom.connect.runtime.config import WorkerConfig
from strom.connect.runtime.distributed.herder import DistributedHerder
from strom.connect.runtime.distributed.topic_offsets import TopicOffsetStore
from strom.connect.runtime.standalone import RestServer, cluster_id, worker_id
from strom.connect.runtime.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Distributed:
    config: WorkerConfig
    herder: DistributedHerder
    host: str
    port: int

    def rest_url(self) -> str:
        return f"http://{self.host if self.host not in ('', '0.0.0.0') else '127.0.0.1'}:{self.port}"


def build(worker_props: Mapping[str, Any]) -> Distributed:
    """A distributed worker, not started: `herder.start()` joins the group."""
    config = WorkerConfig(worker_props)
    topic = config.get("offset.storage.topic")
    if not topic:
        raise ConfigError('Missing required configuration "offset.storage.topic" which has no default value.')
    store = TopicOffsetStore(KafkaClients(config.bootstrap_servers, client_id="connect-offsets"), str(topic),
                             config.get_int("offset.storage.partitions"),
                             config.get_int("offset.storage.replication.factor"))
    identity = worker_id(config)
    worker = Worker(config, Plugins(config.get_list("plugin.path")), store, identity)
    host, port = config.listener()
    return Distributed(config, DistributedHerder(worker, config, f"http://{identity}/"), host, port)


def run(worker_file: Path, log_level: str = "info") -> int:
    """Run until SIGTERM/SIGINT; the exit code."""
    from strom.connect.rest.app import build_app

    distributed = build(load_properties(worker_file))
    herder = distributed.herder
    herder.start()
    try:
        server = RestServer(uvicorn.Config(build_app(herder, cluster_id(herder)),
                                           host=distributed.host, port=distributed.port,
                                           log_level=log_level, access_log=False, lifespan="off"))
        log.info("Kafka Connect REST API on %s (distributed)", distributed.rest_url())
        server.run()
    finally:
        herder.stop()
    return 0

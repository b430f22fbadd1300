"""`strom connect standalone worker.properties connector.properties...`, as
`connect-standalone.sh` runs it: one worker, configs from files, offsets in a local file,
the REST API on `listeners`.

Connector files are read at every start and created in order; one that is invalid stops
the start with Kafka's validation message. SIGTERM or Ctrl-C stops the REST server, then
every task gracefully (`task.shutdown.graceful.timeout.ms`), committing offsets.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from strom.config.properties import load_properties
from strom.connect.api.errors import ConfigError, ConnectError
from strom.connect.plugins import Plugins
from strom.connect.runtime.config import WorkerConfig
from strom.connect.runtime.herder import StandaloneHerder
from strom.connect.runtime.herder_api import Herder
from strom.connect.runtime.offsets import FileOffsetStore
from strom.connect.runtime.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Standalone:
    """A built standalone worker: its herder and REST endpoint, not yet serving."""

    config: WorkerConfig
    herder: StandaloneHerder
    host: str
    port: int

    def rest_url(self) -> str:
        return f"http://{self.host if self.host not in ('', '0.0.0.0') else '127.0.0.1'}:{self.port}"


def worker_id(config: WorkerConfig) -> str:
    """`host:port` statuses report: the advertised REST address, as Kafka's worker id."""
    host, port = config.listener()
    advertised_host = config.get("rest.advertised.host.name") or (
        host if host not in ("", "0.0.0.0") else socket.gethostname())
    return f"{advertised_host}:{config.get('rest.advertised.port') or port}"


def build(worker_props: Mapping[str, Any]) -> Standalone:
    config = WorkerConfig(worker_props)
    filename = config.get_string("offset.storage.file.filename")
    if not filename:
        raise ConfigError('Missing required configuration "offset.storage.file.filename" which has no '
                          "default value.")
    plugins = Plugins(config.get_list("plugin.path"))
    worker = Worker(config, plugins, FileOffsetStore(Path(filename)), worker_id(config))
    host, port = config.listener()
    return Standalone(config, StandaloneHerder(worker), host, port)


def create_from_files(herder: StandaloneHerder, files: Sequence[Path]) -> None:
    for path in files:
        props = load_properties(path)
        name = props.get("name")
        if not name:
            raise ConfigError(f"Connector config {path} has no 'name'")
        herder.put_config(name, props, allow_replace=False)
        log.info("Created connector %s", name)


def cluster_id(herder: Herder) -> str | None:
    """The Kafka cluster's id for `GET /`; None if the cluster cannot tell now."""
    clients = herder.worker.clients
    try:
        future = clients.admin().describe_cluster(request_timeout=clients.timeout)
        return str(clients.result(future).cluster_id)
    except Exception:
        log.warning("Could not read the Kafka cluster id", exc_info=True)
        return None


class RestServer(uvicorn.Server):
    """uvicorn's server, except that SIGTERM/SIGINT end `run()` normally instead of being
    raised again afterwards: the worker still has to stop its tasks and commit offsets."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def run(worker_file: Path, connector_files: Sequence[Path], log_level: str = "info") -> int:
    """Run until SIGTERM/SIGINT; the exit code."""
    from strom.connect.rest.app import build_app

    standalone = build(load_properties(worker_file))
    herder = standalone.herder
    try:
        create_from_files(herder, connector_files)
        app = build_app(herder, cluster_id(herder))
        server = RestServer(uvicorn.Config(app, host=standalone.host, port=standalone.port,
                                               log_level=log_level, access_log=False, lifespan="off"))
        log.info("Kafka Connect REST API on %s", standalone.rest_url())
        server.run()
    except ConnectError as exc:
        log.error("Stopping after connector error: %s", exc)
        return 1
    finally:
        log.info("Kafka Connect stopping")
        herder.stop()
    return 0

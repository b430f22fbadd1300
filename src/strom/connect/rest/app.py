"""Kafka Connect's REST API (4.x paths, JSON shapes and error bodies) on Starlette.

Every error answers `{"error_code": <status>, "message": "..."}` as Kafka's
ConnectExceptionMapper writes it: 404 for an unknown connector, task or plugin, 409 for a
connector created twice, 400 for an invalid config or request, 500 otherwise. Handlers
are plain functions, so Starlette runs them in its thread pool and a slow connector
start never blocks the event loop; the herder serializes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strom.connect.api.config import key_info
from strom.connect.api.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConfigError,
    ConnectError,
    NotFoundError,
)
from strom.connect.runtime.config import connector_config_def
from strom.connect.runtime.herder_api import Herder
from strom.connect.runtime.status import TargetState
from strom.connect.version import KAFKA_API_VERSION

log = logging.getLogger(__name__)
COMMIT = "strom"
_STATUS = {NotFoundError: 404, AlreadyExistsError: 409, BadRequestError: 400, ConfigError: 400}
_LEVELS = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE")
_TO_PYTHON = {"OFF": logging.CRITICAL + 10, "FATAL": logging.CRITICAL, "ERROR": logging.ERROR,
              "WARN": logging.WARNING, "INFO": logging.INFO, "DEBUG": logging.DEBUG, "TRACE": 5}
_FROM_PYTHON = {v: k for k, v in _TO_PYTHON.items()}


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": status, "message": message}, status_code=status)


def _status_of(exc: ConnectError) -> int:
    status = getattr(exc, "status_code", None)  # a forwarded answer, a 409 or a 403
    if isinstance(status, int):
        return status
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


class UnreadableBodyError(ConnectError):
    """A request body that is not the JSON expected: Kafka's Jackson mapping error, a 500."""


def _json(request: Request, body: bytes) -> Any:
    import json

    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise UnreadableBodyError(f"Unrecognized request body: {exc}") from exc


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


class ConnectApi:
    """The routes, bound to one herder; `cluster_id` is answered by `GET /`."""

    def __init__(self, herder: Herder, cluster_id: str | None = None) -> None:
        self.herder = herder
        self.cluster_id = cluster_id
        self.logger_changes: dict[str, int] = {}

    # --- root and plugins -----------------------------------------------------------------

    def root(self, request: Request) -> Response:
        return JSONResponse({"version": KAFKA_API_VERSION, "commit": COMMIT,
                             "kafka_cluster_id": self.cluster_id})

    def plugins(self, request: Request) -> Response:
        connectors_only = request.query_params.get("connectorsOnly", "true").lower() != "false"
        return JSONResponse(self.herder.worker.plugins.listing(connectors_only))

    def plugin_config(self, request: Request) -> Response:
        name = request.path_params["plugin"]
        desc = self.herder.worker.plugins.describe(name)
        if desc is None:
            raise NotFoundError(f"Unknown plugin {name}.")
        definition = desc.cls().config()
        if desc.kind in ("source", "sink"):  # a connector's own keys, then the common ones
            definition = definition.merge(connector_config_def(desc.kind))
        return JSONResponse([key_info(k) for k in definition.keys.values()])

    async def validate(self, request: Request) -> Response:
        plugin = request.path_params["plugin"]
        body = _json(request, await request.body())
        if not isinstance(body, dict):
            raise BadRequestError("Connector configuration must be a JSON object")
        included = body.get("connector.class")
        if included is not None and not _normalized(str(included)).endswith(_normalized(plugin)):
            raise BadRequestError(f"Included connector type {included} does not match request type {plugin}")
        props = {str(k): str(v) for k, v in body.items() if v is not None}
        props["connector.class"] = plugin
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(self.herder.validate, props))

    # --- connectors --------------------------------------------------------------------------

    def list_connectors(self, request: Request) -> Response:
        expand = request.query_params.getlist("expand")
        names = self.herder.names()
        if not expand:
            return JSONResponse(names)
        expanded: dict[str, dict[str, Any]] = {}
        for name in names:
            try:
                item: dict[str, Any] = {}
                if "status" in expand:
                    item["status"] = self.herder.status(name)
                if "info" in expand:
                    item["info"] = self.herder.info(name)
                expanded[name] = item
            except NotFoundError:
                continue
        return JSONResponse(expanded)

    async def create(self, request: Request) -> Response:
        body = _json(request, await request.body())
        if not isinstance(body, dict):
            raise BadRequestError("Request body must be a JSON object")
        name = body.get("name")
        config = body.get("config")
        if not isinstance(config, dict):
            raise BadRequestError("Connector config must be a JSON object" if config is not None
                                  else "Connector config is missing")
        if name is None:
            name = config.get("name", "")
        if not isinstance(name, str):
            raise UnreadableBodyError("Connector name must be a string")
        state = _initial_state(body.get("initial_state"))
        from starlette.concurrency import run_in_threadpool

        _, info = await run_in_threadpool(self.herder.put_config, name.strip(), config, False, state)
        return JSONResponse(info, status_code=201, headers={"Location": f"/connectors/{name}"})

    def get_connector(self, request: Request) -> Response:
        return JSONResponse(self.herder.info(request.path_params["name"]))

    def get_config(self, request: Request) -> Response:
        return JSONResponse(self.herder.config(request.path_params["name"]))

    async def put_config(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = _json(request, await request.body())
        if not isinstance(body, dict):
            raise BadRequestError("Connector configuration must be a JSON object")
        from starlette.concurrency import run_in_threadpool

        created, info = await run_in_threadpool(self.herder.put_config, name, body, True)
        return JSONResponse(info, status_code=201 if created else 200)

    def delete(self, request: Request) -> Response:
        self.herder.delete(request.path_params["name"])
        return Response(status_code=204)

    def status(self, request: Request) -> Response:
        return JSONResponse(self.herder.status(request.path_params["name"]))

    def tasks(self, request: Request) -> Response:
        return JSONResponse(self.herder.task_configs(request.path_params["name"]))

    def task_status(self, request: Request) -> Response:
        return JSONResponse(self.herder.task_status(request.path_params["name"],
                                                    _task(request.path_params["task"])))

    def restart(self, request: Request) -> Response:
        answer = self.herder.restart(request.path_params["name"], _flag(request, "includeTasks"),
                                     _flag(request, "onlyFailed"))
        if answer is None:
            return Response(status_code=204)
        return JSONResponse(answer, status_code=202)

    def restart_task(self, request: Request) -> Response:
        self.herder.restart_task(request.path_params["name"], _task(request.path_params["task"]))
        return Response(status_code=204)

    def pause(self, request: Request) -> Response:
        self.herder.pause(request.path_params["name"])
        return Response(status_code=202)

    def resume(self, request: Request) -> Response:
        self.herder.resume(request.path_params["name"])
        return Response(status_code=202)

    def stop(self, request: Request) -> Response:
        self.herder.stop_connector(request.path_params["name"])
        return Response(status_code=204)

    def topics(self, request: Request) -> Response:
        return JSONResponse(self.herder.topics(request.path_params["name"]))

    def reset_topics(self, request: Request) -> Response:
        self.herder.reset_topics(request.path_params["name"])
        return Response(status_code=202)

    def offsets(self, request: Request) -> Response:
        return JSONResponse(self.herder.offsets(request.path_params["name"]))

    async def alter_offsets(self, request: Request) -> Response:
        body = _json(request, await request.body())
        from starlette.concurrency import run_in_threadpool

        name = request.path_params["name"]
        return JSONResponse(await run_in_threadpool(self.herder.alter_offsets, name, body))

    def reset_offsets(self, request: Request) -> Response:
        return JSONResponse(self.herder.reset_offsets(request.path_params["name"]))

    # --- internal requests between workers (distributed mode) --------------------------------

    async def put_task_configs(self, request: Request) -> Response:
        """`POST /connectors/{name}/tasks`: signed task configs for the leader to write."""
        body, name = await request.body(), request.path_params["name"]
        handler = getattr(self.herder, "put_task_configs", None)
        if handler is None:
            raise HTTPException(405)
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(handler, name, body, dict(request.headers))
        return Response(status_code=204)

    async def fence_zombies(self, request: Request) -> Response:
        """`PUT /connectors/{name}/fence`: signed; the leader fences the connector's
        transactional producers (KIP-618)."""
        body, name = await request.body(), request.path_params["name"]
        handler = getattr(self.herder, "fence_zombies", None)
        if handler is None:
            raise HTTPException(405)
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(handler, name, body, dict(request.headers))
        return Response(status_code=204)

    # --- loggers -----------------------------------------------------------------------------

    def loggers(self, request: Request) -> Response:
        found: dict[str, Any] = {"root": self._level_of(logging.getLogger(), "root")}
        for name in sorted(logging.root.manager.loggerDict):
            logger = logging.root.manager.loggerDict[name]
            if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
                found[name] = self._level_of(logger, name)
        return JSONResponse(found)

    def _level_of(self, logger: logging.Logger, name: str) -> dict[str, Any]:
        level = logger.getEffectiveLevel()
        return {"level": _FROM_PYTHON.get(level, logging.getLevelName(level)),
                "last_modified": self.logger_changes.get(name)}

    def logger(self, request: Request) -> Response:
        name = request.path_params["logger"]
        if name != "root" and name not in logging.root.manager.loggerDict:
            raise NotFoundError(f"Logger {name} not found.")
        target = logging.getLogger() if name == "root" else logging.getLogger(name)
        return JSONResponse(self._level_of(target, name))

    async def set_logger(self, request: Request) -> Response:
        name = request.path_params["logger"]
        body = _json(request, await request.body())
        level = body.get("level") if isinstance(body, dict) else None
        if not isinstance(level, str):
            raise BadRequestError("The request body must specify a log level")
        if level.upper() not in _LEVELS:
            raise NotFoundError(f"invalid log level '{level}'.")  # Kafka's status and wording
        scope = request.query_params.get("scope", "worker").lower()
        target = logging.getLogger() if name == "root" else logging.getLogger(name)
        target.setLevel(_TO_PYTHON[level.upper()])
        now = int(time.time() * 1000)
        changed = [name, *sorted(n for n in logging.root.manager.loggerDict
                                 if name != "root" and n.startswith(name + "."))]
        for each in changed:
            self.logger_changes[each] = now
        if scope == "cluster":
            return Response(status_code=204)
        return JSONResponse(changed)

    # --- assembly ----------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        c = "/connectors/{name}"
        table: list[tuple[str, Callable[..., Any], list[str]]] = [
            ("/", self.root, ["GET"]),
            ("/connector-plugins", self.plugins, ["GET"]),
            ("/connector-plugins/{plugin}/config", self.plugin_config, ["GET"]),
            ("/connector-plugins/{plugin}/config/validate", self.validate, ["PUT"]),
            ("/connectors", self.list_connectors, ["GET"]),
            ("/connectors", self.create, ["POST"]),
            (c, self.get_connector, ["GET"]), (c, self.delete, ["DELETE"]),
            (c + "/config", self.get_config, ["GET"]), (c + "/config", self.put_config, ["PUT"]),
            (c + "/status", self.status, ["GET"]), (c + "/tasks", self.tasks, ["GET"]),
            (c + "/tasks", self.put_task_configs, ["POST"]), (c + "/fence", self.fence_zombies, ["PUT"]),
            (c + "/tasks/{task}/status", self.task_status, ["GET"]),
            (c + "/tasks/{task}/restart", self.restart_task, ["POST"]),
            (c + "/restart", self.restart, ["POST"]),
            (c + "/pause", self.pause, ["PUT"]), (c + "/resume", self.resume, ["PUT"]),
            (c + "/stop", self.stop, ["PUT"]),
            (c + "/topics", self.topics, ["GET"]), (c + "/topics/reset", self.reset_topics, ["PUT"]),
            (c + "/offsets", self.offsets, ["GET"]), (c + "/offsets", self.alter_offsets, ["PATCH"]),
            (c + "/offsets", self.reset_offsets, ["DELETE"]),
            ("/admin/loggers", self.loggers, ["GET"]),
            ("/admin/loggers/{logger}", self.logger, ["GET"]),
            ("/admin/loggers/{logger}", self.set_logger, ["PUT"]),
        ]
        return [Route(path, endpoint, methods=methods) for path, endpoint, methods in table]


def _normalized(name: str) -> str:
    return name.lower().removesuffix("connector")


def _task(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise NotFoundError(f"Task {text} not found") from None


def _initial_state(value: Any) -> TargetState:
    if value is None:
        return TargetState.STARTED
    mapping = {"RUNNING": TargetState.STARTED, "PAUSED": TargetState.PAUSED, "STOPPED": TargetState.STOPPED}
    if not isinstance(value, str) or value.upper() not in mapping:
        raise UnreadableBodyError(f"Invalid initial_state {value}: not one of RUNNING, PAUSED, STOPPED")
    return mapping[value.upper()]


async def _connect_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConnectError)
    status = _status_of(exc)
    if status == 500:
        log.error("Uncaught exception in REST call to %s", request.url.path, exc_info=exc)
    return error_response(status, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, f"HTTP {exc.status_code} {reason}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("Uncaught exception in REST call to %s", request.url.path, exc_info=exc)
    return error_response(500, str(exc) or type(exc).__name__)


def build_app(herder: Herder, cluster_id: str | None = None) -> Starlette:
    from starlette.middleware import Middleware

    from strom.connect.runtime.distributed.internal import ForwardFlag
    from strom.connect.runtime.metrics import metrics_route

    api = ConnectApi(herder, cluster_id)
    handlers = {ConnectError: _connect_error, HTTPException: _http_error, Exception: _unexpected}
    return Starlette(routes=[*api.routes(), metrics_route(herder)], middleware=[Middleware(ForwardFlag)],
                     exception_handlers=handlers)

"""The interactive-query HTTP endpoint of one instance (Starlette, served by uvicorn on
a daemon thread at `application_server`).

- `GET /v1/metadata`: every instance's address and the partitions it consumes.
- `GET /v1/stores/{store}/keys/{key}`: the value of a key in a key-value store; a key
  hosted elsewhere is forwarded to its instance (`?forward=false` answers 421 instead).
- `GET /v1/stores/{store}/keys/{key}/windows?from=&to=`: a window store's windows.

Keys arrive as path text and go through `StreamsConfig.query_key_parser` (default: the
text itself); values are answered as JSON (orjson; other types as their `str`).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson

from strom.streams.runtime.queries import NotHostedHere, Queries


def _json(body: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    return Response(orjson.dumps(body, default=str), status_code=status,
                    media_type="application/json")


def _get(url: str) -> tuple[int, bytes]:
    """GET with the standard library (a forwarded query; no HTTP client dependency)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _Handlers:
    def __init__(self, queries: Queries, parse_key: Callable[[str], Any]) -> None:
        self.queries = queries
        self.parse_key = parse_key

    async def metadata(self, request: Any) -> Any:
        instances = self.queries.instances()
        return _json({"application_id": self.queries.app.config.application_id,
                      "instances": [{"server": s, "partitions": sorted(p)}
                                    for s, p in sorted(instances.items())]})

    async def key(self, request: Any) -> Any:
        store = request.path_params["store"]
        return await self._answer(request, lambda k: {"value": self.queries.get(store, k)})

    async def windows(self, request: Any) -> Any:
        store = request.path_params["store"]
        low = int(request.query_params.get("from", 0))
        high = int(request.query_params.get("to", 2**62))

        def read(k: Any) -> dict[str, Any]:
            found = self.queries.fetch_windows(store, k, low, high)
            return {"windows": [{"start": start, "value": value} for start, value in found]}

        return await self._answer(request, read)

    async def _answer(self, request: Any, read: Callable[[Any], dict[str, Any]]) -> Any:
        store, raw = request.path_params["store"], request.path_params["key"]
        try:
            parsed = self.parse_key(raw)
            location = self.queries.where(store, parsed)
            if not location.local:
                return await self._forward(request, location.server, location.partition)
            body = read(parsed)
        except NotHostedHere as exc:
            return _json({"error": str(exc)}, 503)
        except Exception as exc:  # noqa: BLE001 - an answer for every failed query
            return _json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return _json({"store": store, "key": raw, "partition": location.partition,
                      "server": location.server, **body})

    async def _forward(self, request: Any, server: str | None, partition: int) -> Any:
        if server is None or request.query_params.get("forward") == "false":
            return _json({"error": f"partition {partition} is hosted by "
                                   f"{server or 'no instance right now'}"}, 421)
        query = urllib.parse.urlencode({**request.query_params, "forward": "false"})
        url = f"http://{server}{request.url.path}?{query}"
        status, body = await asyncio.to_thread(_get, url)
        return _json(orjson.loads(body), status)


def build_app(queries: Queries, parse_key: Callable[[str], Any]) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    handlers = _Handlers(queries, parse_key)
    return Starlette(routes=[
        Route("/v1/metadata", handlers.metadata),
        Route("/v1/stores/{store}/keys/{key}", handlers.key),
        Route("/v1/stores/{store}/keys/{key}/windows", handlers.windows),
    ])


class QueryServer:
    """uvicorn on a daemon thread; `stop()` ends it."""

    def __init__(self, queries: Queries, server: str, parse_key: Callable[[str], Any]) -> None:
        import uvicorn

        host, _, port = server.rpartition(":")
        config = uvicorn.Config(build_app(queries, parse_key), host=host or "0.0.0.0",
                                port=int(port), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="streams-queries",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

"""HttpSink: records to an HTTP endpoint, as JSON arrays, batched and retried.

Each batch of records `put` receives is sent as JSON arrays of at most
`batch.max.records` values (`POST` by default) with `http.headers`. A connection error,
a 429 or a 5xx is retried `retry.max` times with `retry.backoff.ms` doubling; if it still
fails, `put` raises RetriableError and the runtime delivers the same records again after
the backoff (nothing is committed past them). A 4xx answer is the records' fault: each is
handed to the errant record reporter (the dead letter queue under `errors.tolerance=all`),
or the task fails.

Values become JSON as the JSON converter writes them without envelope: structs as
objects, strings as strings, bytes as base64.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from strom.connect.api.config import ConfigDef, ConfigType, Importance, at_least, one_of
from strom.connect.api.connector import SinkConnector
from strom.connect.api.errors import ConfigError, ConnectError, RetriableError
from strom.connect.api.records import SinkRecord
from strom.connect.api.task import SinkTask
from strom.connect.connectors.base import PropsConnector
from strom.connect.converters.json_converter import value_to_json
from strom.connect.converters.jsontext import dumps
from strom.connect.version import VERSION


def _http_url(name: str, value: object) -> None:
    if value is not None and not str(value).startswith(("http://", "https://")):
        raise ConfigError(name, value, "must be an http:// or https:// URL")


CONFIG = (
    ConfigDef()
    .define("http.url", ConfigType.STRING, importance=Importance.HIGH,
            documentation="Where to send the records.", validator=_http_url)
    .define("http.method", ConfigType.STRING, "POST", Importance.MEDIUM, "POST or PUT.",
            validator=one_of("POST", "PUT"))
    .define("http.headers", ConfigType.LIST, "", Importance.LOW,
            "Extra request headers, each `Name:value`.")
    .define("http.timeout.ms", ConfigType.INT, 30_000, Importance.LOW, "Timeout of one request.",
            validator=at_least(1))
    .define("batch.max.records", ConfigType.INT, 500, Importance.MEDIUM,
            "Most records in one request.", validator=at_least(1))
    .define("retry.max", ConfigType.INT, 5, Importance.MEDIUM,
            "Attempts after the first for a request that failed transiently.", validator=at_least(0))
    .define("retry.backoff.ms", ConfigType.INT, 200, Importance.LOW,
            "First wait before a retry; doubles each time.", validator=at_least(0))
)
TRANSIENT = {408, 429, 500, 502, 503, 504}


class HttpSinkConnector(PropsConnector, SinkConnector):
    config_def = CONFIG

    def task_class(self) -> type[HttpSinkTask]:
        return HttpSinkTask


class HttpSinkTask(SinkTask):
    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        parsed = CONFIG.parse(props)
        self.url, self.method = parsed["http.url"], parsed["http.method"]
        self.headers = {"Content-Type": "application/json"}
        for entry in parsed["http.headers"]:
            name, _, value = entry.partition(":")
            self.headers[name.strip()] = value.strip()
        self.timeout = parsed["http.timeout.ms"] / 1000
        self.batch, self.retries = parsed["batch.max.records"], parsed["retry.max"]
        self.backoff = parsed["retry.backoff.ms"] / 1000

    def put(self, records: Sequence[SinkRecord]) -> None:
        for start in range(0, len(records), self.batch):
            self._send(records[start:start + self.batch])

    def _send(self, records: Sequence[SinkRecord]) -> None:
        body = dumps([value_to_json(r.value_schema, r.value) for r in records]).encode("utf-8")
        delay = self.backoff
        for attempt in range(self.retries + 1):
            status = self._request(body)
            if 200 <= status < 300:
                return
            if status not in TRANSIENT and status != 0:
                self._rejected(records, status)
                return
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        self.context.timeout(int(delay * 1000))
        raise RetriableError(f"{self.url} did not accept {len(records)} records after "
                             f"{self.retries + 1} attempts")

    def _request(self, body: bytes) -> int:
        """The HTTP status, or 0 when no answer came."""
        request = urllib.request.Request(self.url, data=body, method=self.method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0

    def _rejected(self, records: Sequence[SinkRecord], status: int) -> None:
        error = ConnectError(f"{self.url} refused the records with HTTP {status}")
        report = self.context.errant_record_reporter()
        for record in records:
            report(record, error)

    def stop(self) -> None:
        """Nothing to release: every put completes its requests."""

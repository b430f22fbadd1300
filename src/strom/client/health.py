"""What the clients' error callback reported, so that a wait can end as soon as waiting
cannot help.

librdkafka never fails a request because the brokers are unreachable: it retries until
the request's own timeout, and tells only the `error_cb` (`_TRANSPORT` per failed
connection, `_ALL_BROKERS_DOWN` once none is left). `BrokerHealth` is that callback for
every client of one `KafkaClients`; the waits call `check()` between short slices, so a
missing broker is reported within a second or two (connection refused) or the connection
setup timeout (an address that does not answer), not after 15 s or more.

A broker-down report is raised once and then forgotten: a long-running application that
retries must not fail forever after the brokers came back. A fatal error (the client
instance is unusable) stays.
"""

from __future__ import annotations

from collections import deque

from strom.client.errors import FATAL_LOCAL, BrokerUnreachableError, KafkaClientError, KafkaErrorLike

RECENT_ERRORS = 20


class BrokerHealth:
    """The error callback of a group of clients and the check the waits make."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.recent: deque[KafkaErrorLike] = deque(maxlen=RECENT_ERRORS)  # newest last
        self._report: KafkaErrorLike | None = None

    def on_error(self, error: KafkaErrorLike) -> None:
        """librdkafka's `error_cb`: called from the client's poll on the caller's thread."""
        self.recent.append(error)
        if self._report is not None and self._report.fatal():
            return  # a fatal error outranks later reports
        if error.name() in FATAL_LOCAL or error.fatal():
            self._report = error

    @property
    def report(self) -> KafkaErrorLike | None:
        """The error that would make `check()` raise, if any."""
        return self._report

    def check(self) -> None:
        """Raise if the clients reported that waiting longer cannot help."""
        report = self._report
        if report is None:
            return
        if not report.fatal():
            self._report = None
        if report.name() == "_ALL_BROKERS_DOWN":
            raise BrokerUnreachableError(self.bootstrap_servers, self._cause())
        raise KafkaClientError.from_kafka_error(report, bootstrap_servers=self.bootstrap_servers)

    def _cause(self) -> KafkaErrorLike | None:
        """The latest report that says why (`_ALL_BROKERS_DOWN` itself does not)."""
        return next((e for e in reversed(self.recent) if e.name() != "_ALL_BROKERS_DOWN"), None)

"""Exactly-once source tasks (KIP-618), in distributed mode with
`exactly.once.source.support=enabled`.

Each source task gets a transactional producer, `transactional.id` =
`<group.id>-<connector>-<task>` as Kafka names it. Its records and the source offsets
they reach are written in one transaction: the offsets go to the connector's own
`offsets.storage.topic` if it has one (then copied to the worker's, outside the
transaction, as Kafka's secondary store), else to the worker's offsets topic. A reader
with `isolation.level=read_committed` (the offsets topic's reader included, librdkafka's
default) so sees either a batch and its offsets or neither; a task killed mid-transaction
leaves an open transaction that the next producer of the same transactional id aborts
when it initializes (InitProducerId bumps the epoch: the zombie is fenced).

`transaction.boundary`: `poll` (a transaction per non-empty poll, the default) or
`interval` (`transaction.boundary.interval.ms`, else `offset.flush.interval.ms`);
`connector` needs a connector that defines its own boundaries, which none does yet, and
is refused at validation as Kafka refuses it for such a connector.

Before a connector's new set of tasks starts, the leader fences every transactional id
the connector's tasks may have used (`PUT /connectors/{c}/fence`, signed, answered by the
leader): InitProducerId on each, then the `tasks-count-<c>` record in the config topic,
Kafka's marker that the fencing round is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from strom.connect.api.connector import Connector, ExactlyOnceSupport
from strom.connect.api.errors import BadRequestError
from strom.connect.runtime.offsets import ConnectorOffsetReader, value_text
from strom.connect.runtime.source_task import SourceContext, WorkerSourceTask

log = logging.getLogger(__name__)

REQUIRED_UNSUPPORTED = ("The connector does not support exactly-once semantics with the provided "
                        "configuration.")
REQUIRED_UNKNOWN = ("The connector does not implement the API required for preflight validation of "
                    "exactly-once source support. Please consult the documentation for the connector to "
                    "determine whether it supports exactly-once guarantees, and then consider reconfiguring "
                    "the connector to use the value \"requested\" for this property (which will still "
                    "permit the connector to be created, but without exactly-once guarantees).")
BOUNDARY_UNSUPPORTED = ("The connector does not support connector-defined transaction boundaries with the "
                        "given configuration. Please reconfigure it to use a different transaction "
                        "boundary definition.")
INIT_TIMEOUT_S = 30.0


def transactional_id(group: str, connector: str, task: int) -> str:
    """Kafka's transactional id of a source task's producer."""
    return f"{group}-{connector}-{task}"


def config_errors(connector: Connector, props: Mapping[str, str]) -> dict[str, str]:
    """Kafka's preflight checks of an exactly-once source config, by config key."""
    errors: dict[str, str] = {}
    if str(props.get("exactly.once.support", "requested")).lower() == "required":
        support = getattr(connector, "exactly_once_support", lambda _p: None)(props)
        if support is None:
            errors["exactly.once.support"] = REQUIRED_UNKNOWN
        elif support is not ExactlyOnceSupport.SUPPORTED:
            errors["exactly.once.support"] = REQUIRED_UNSUPPORTED
    if str(props.get("transaction.boundary", "poll")).lower() == "connector":
        errors["transaction.boundary"] = BOUNDARY_UNSUPPORTED
    return errors


def add_errors(answer: dict[str, Any], errors: Mapping[str, str]) -> dict[str, Any]:
    """`errors` added to a validate answer (Kafka's ConfigInfos shape)."""
    for entry in answer.get("configs", []):
        message = errors.get(entry["value"]["name"])
        if message is not None:
            entry["value"]["errors"].append(message)
            answer["error_count"] += 1
    return answer


def check(connector: Connector, props: Mapping[str, str]) -> None:
    errors = config_errors(connector, props)
    if errors:
        raise BadRequestError(
            f"Connector configuration is invalid and contains the following {len(errors)} error(s):\n"
            + "\n".join(errors.values()) + "\nYou can also find the above list of errors at the endpoint "
            "`/connector-plugins/{connectorType}/config/validate`")


def fence(clients: Any, transactional_ids: list[str]) -> None:
    """InitProducerId for each id: the broker aborts its open transaction, if any, and
    refuses the older epoch from then on."""
    for tid in transactional_ids:
        producer = clients.producer({"transactional.id": tid, "client.id": f"connect-fencer-{tid}"})
        producer.init_transactions(INIT_TIMEOUT_S)
        producer.flush(5)


class LayeredOffsets:
    """The offsets a task reads: its connector's own offsets topic first, then the
    worker's (Kafka's ConnectorOffsetBackingStore)."""

    def __init__(self, primary: Any, fallback: Any) -> None:
        self.primary, self.fallback = primary, fallback

    def get(self, connector: str, partition: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self.primary.get(connector, partition)
        return found if found is not None else self.fallback.get(connector, partition)


class ExactlyOnceSourceTask(WorkerSourceTask):
    """A `WorkerSourceTask` whose records and offsets are committed in transactions."""

    def configure_exactly_once(self, *, offsets_topic: str, store: Any, secondary: Any | None,
                               boundary: str, interval_s: float, producer_factory: Callable[[], Any]) -> None:
        self.offsets_topic, self.offset_store, self.secondary = offsets_topic, store, secondary
        self.boundary, self.interval_s = boundary, interval_s
        self.producer_factory = producer_factory
        self.in_transaction = False
        self.transaction_deadline = 0.0

    def start_task(self) -> None:
        self.producer = self.producer_factory()
        self.producer.init_transactions(INIT_TIMEOUT_S)  # fences this task's zombie, aborts its transaction
        # only now are the offsets final: a zombie of this task (a worker the group dropped
        # but still running) may have committed transactions until the line above
        for store in (self.offset_store, self.secondary):
            refresh = getattr(store, "refresh", None)
            if refresh is not None:
                refresh()
        reader_store: Any = self.offset_store if self.secondary is None else \
            LayeredOffsets(self.offset_store, self.secondary)
        reader = ConnectorOffsetReader(reader_store, self.id.connector)
        self.parts.task.initialize(SourceContext(self.parts.task_config, reader))
        self.parts.task.start(self.parts.task_config)

    def iteration(self) -> None:
        if self.wait_if_paused():
            return
        records = self.parts.task.poll()
        if records:
            if not self.in_transaction:
                self.producer.begin_transaction()
                self.in_transaction = True
                self.transaction_deadline = time.monotonic() + self.interval_s
            for record in records:
                self._send(record)
        self.producer.poll(0)
        self._check_send_error()
        if self.in_transaction and (self.boundary == "poll" or time.monotonic() >= self.transaction_deadline):
            self.commit_offsets()

    def commit_offsets(self) -> bool:
        """Write the offsets reached into the open transaction and commit it."""
        if not self.in_transaction:
            return True
        snapshot = dict(self.pending)
        for key, (_partition, offset) in snapshot.items():
            text = value_text(offset)
            self._produce_offset(key, text)
        self.producer.commit_transaction(self.flush_timeout_s + INIT_TIMEOUT_S)
        self.in_transaction = False
        self._check_send_error()
        for key in snapshot:
            if self.pending.get(key) == snapshot[key]:
                del self.pending[key]
        self.offset_store.remember(snapshot)
        if self.secondary is not None and snapshot:
            self.secondary.put(self.id.connector, snapshot)
        self.parts.task.commit()
        return True

    def _produce_offset(self, key: str, text: str | None) -> None:
        while True:
            try:
                self.producer.produce(self.offsets_topic, key=key.encode(),
                                      value=None if text is None else text.encode())
                return
            except BufferError:
                self.producer.poll(0.1)

    def close_task(self, failed: bool) -> None:
        if failed and self.in_transaction and self.producer is not None:
            try:
                self.producer.abort_transaction(self.flush_timeout_s)
            except Exception:  # a fenced or failed producer: the broker aborts the transaction
                log.warning("%s Could not abort the open transaction", self.id, exc_info=True)
            self.in_transaction = False
        super().close_task(failed)

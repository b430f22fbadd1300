"""`strom topic consume`: records to stdout, with confluent-kafka's Consumer.

Without `--group` the partitions are assigned directly (nothing is committed) and `-o`
picks where to start, kcat's grammar: beginning, end, stored, N, -N (N before the end),
+N (N after the start), s@TIME (first record at or after TIME) and e@TIME (stop there).
With `--group` the consumer joins the group, starts from its committed offsets (`-o
beginning|end` only decide where a partition without one starts) and commits what it
printed when it stops.

It stops after `-n` records, or when every partition has reached its end (unless
`--follow`), or at e@TIME; Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strom.cli.common import DEFAULT_BROKERS, Brokers, ClientProps, fail, reports_errors

if TYPE_CHECKING:
    from strom.client import KafkaClients

OFFSET_TAIL_BASE = -2000  # librdkafka's RD_KAFKA_OFFSET_TAIL_BASE


@reports_errors
def consume(
    topics: Annotated[list[str], typer.Argument(help="Topics to read.", show_default=False)],
    offset: Annotated[list[str] | None, typer.Option(
        "--offset", "-o",
        help="Start: beginning, end, stored, N, -N, +N, s@TIME; stop: e@TIME. TIME is ms, "
             "ISO-8601 or relative (-1h).")] = None,
    partition: Annotated[list[int] | None, typer.Option(
        "--partition", "-p", help="Only these partitions (repeatable).")] = None,
    count: Annotated[int | None, typer.Option("--count", "-n",
                                              help="Stop after this many records.")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-F", help="Keep waiting for new records at the end.")] = False,
    group: Annotated[str | None, typer.Option(
        "--group", "-g", help="Consume as a member of this group and commit.")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", metavar="FORMAT",
        help="kcat-style: %t %p %o %k %v %h %T %K %S, escapes \\n \\t; or json.")] = "%v\\n",
    key_decoder: Annotated[str, typer.Option(
        "--key-decoder", help="auto, raw, text, hex, base64, json or int.")] = "auto",
    value_decoder: Annotated[str, typer.Option(
        "--value-decoder", help="auto, raw, text, hex, base64, json or int.")] = "auto",
    pretty: Annotated[bool, typer.Option(
        "--pretty", help="Indent JSON (the envelope and json-decoded fields).")] = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Give up after this many seconds without a record.")] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Print records of topics.

    \b
    strom topic consume orders -o beginning -n 10
    strom topic consume orders -f '%p:%o %k=%v\\n' -o -5       # last 5 per partition
    strom topic consume orders -o s@-1h -F                    # last hour, then follow
    strom topic consume orders -g billing -f json --value-decoder json
    """
    from strom.cli.client import clients_for
    from strom.cli.formats import Renderer, parse_offset

    start = None
    stop_at: int | None = None
    for item in offset or []:
        parsed_start, parsed_stop = parse_offset(item)
        if parsed_start is not None:
            start = parsed_start
        if parsed_stop is not None:
            stop_at = parsed_stop
    renderer = Renderer(fmt, key_decoder, value_decoder, pretty)
    clients = clients_for(brokers, props)
    metadata = clients.topic_metadata(topics)
    if group is not None:
        if start is not None and start.kind not in ("beginning", "end", "stored"):
            fail("with --group, -o can only be beginning, end or stored (where a partition "
                 "without a committed offset starts)", name="INVALID_ARGUMENT",
                 hint=f"move the group with `strom group seek {group} ...` first")
    elif start is not None and start.kind == "stored":
        fail("-o stored needs --group", name="INVALID_ARGUMENT")
    session = _Session(clients, renderer, count, follow, stop_at, timeout)
    if group is not None:
        reset = "latest" if start is not None and start.kind == "end" else "earliest"
        session.run_group(topics, group, reset)
    else:
        assignment = _assignment(clients, metadata, partition, start)
        session.run_assigned(assignment)


def _assignment(clients: KafkaClients, metadata: dict[str, Any], only: list[int] | None,
                start: Any) -> list[Any]:
    from confluent_kafka import TopicPartition

    tps = []
    for topic, info in metadata.items():
        for p in sorted(info.partitions):
            if only is None or p in only:
                tps.append(TopicPartition(topic, p))
    if not tps:
        fail(f"none of the partitions {only} exist", name="UNKNOWN_TOPIC_OR_PART")
    _set_start_offsets(clients, tps, start)
    return tps


def _set_start_offsets(clients: KafkaClients, tps: list[Any], start: Any) -> None:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END
    from confluent_kafka.admin import OffsetSpec

    kind = start.kind if start is not None else "beginning"
    fixed = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END}
    if kind in fixed or kind in ("offset", "tail"):
        value = fixed.get(kind, start.value if kind == "offset"
                          else OFFSET_TAIL_BASE - (start.value if start else 0))
        for tp in tps:
            tp.offset = value
        return
    spec = (OffsetSpec.earliest() if kind == "from_start"
            else OffsetSpec.for_timestamp(start.value))
    found = _list_offsets(clients, tps, spec)
    ends = _list_offsets(clients, tps, OffsetSpec.latest())
    for tp in tps:
        key = (tp.topic, tp.partition)
        if kind == "from_start":
            tp.offset = min(found[key] + start.value, ends[key])
        else:  # nothing at or after the time: start at the end
            tp.offset = found[key] if found[key] >= 0 else ends[key]


def _list_offsets(clients: KafkaClients, tps: list[Any], spec: Any
                  ) -> dict[tuple[str, int], int]:
    from confluent_kafka import TopicPartition

    from strom.client.admin import list_offsets

    return list_offsets(clients, {TopicPartition(tp.topic, tp.partition): spec for tp in tps})


class _Session:
    def __init__(self, clients: KafkaClients, renderer: Any, count: int | None, follow: bool,
                 stop_at: int | None, timeout: float | None) -> None:
        self.clients = clients
        self.renderer = renderer
        self.count = count
        self.follow = follow
        self.stop_at = stop_at
        self.timeout = timeout
        self.printed = 0
        self.active: set[tuple[str, int]] = set()  # assigned, not yet at their end
        self.assigned: set[tuple[str, int]] = set()
        self.stopped: set[tuple[str, int]] = set()  # reached e@TIME
        self.group_mode = False

    def _consumer(self, group: str | None, reset: str) -> Any:
        defaults: dict[str, Any] = {
            "group.id": group or "strom-cli",
            "enable.partition.eof": True,
            "auto.offset.reset": reset,
            "enable.auto.commit": group is not None,
            "enable.auto.offset.store": False,
            "session.timeout.ms": 10000,
            "fetch.wait.max.ms": 100,
        }
        return self.clients.consumer(defaults)

    def run_assigned(self, assignment: list[Any]) -> None:
        consumer = self._consumer(None, "error")
        self.assigned = {(tp.topic, tp.partition) for tp in assignment}
        self.active = set(self.assigned)
        try:
            consumer.assign(assignment)
            self._loop(consumer)
        finally:
            consumer.close()

    def run_group(self, topics: list[str], group: str, reset: str) -> None:
        consumer = self._consumer(group, reset)
        self.group_mode = True

        def on_assign(_consumer: Any, partitions: list[Any]) -> None:
            keys = {(tp.topic, tp.partition) for tp in partitions}
            self.assigned |= keys
            self.active |= keys

        def on_revoke(_consumer: Any, partitions: list[Any]) -> None:
            keys = {(tp.topic, tp.partition) for tp in partitions}
            self.assigned -= keys
            self.active -= keys

        try:
            consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)
            self._loop(consumer)
        finally:
            consumer.close()  # commits the stored offsets of what was printed

    def _done(self) -> bool:
        if self.count is not None and self.printed >= self.count:
            return True
        if not self.assigned:
            return False
        if self.stop_at is not None and self.stopped >= self.assigned:
            return True
        return not self.follow and not self.active

    def _loop(self, consumer: Any) -> None:
        out = sys.stdout.buffer
        last_record = time.monotonic()
        while not self._done():
            batch = consumer.consume(500, 0.2)
            self.clients.check()
            wrote = False
            for msg in batch:
                error = msg.error()
                if error is not None:
                    self._on_error(error, msg)
                    continue
                if self._handle(consumer, msg, out):
                    wrote = True
                if self._done():
                    break
            if wrote:
                out.flush()
                last_record = time.monotonic()
            elif self.timeout is not None and time.monotonic() - last_record > self.timeout:
                fail(f"no record within {self.timeout:g} s", name="_TIMED_OUT")
        out.flush()

    def _handle(self, consumer: Any, msg: Any, out: Any) -> bool:
        from strom.cli.formats import record_of

        key = (msg.topic(), msg.partition())
        if key not in self.assigned or key in self.stopped:
            return False
        if self.stop_at is not None and msg.timestamp()[1] >= self.stop_at:
            self.active.discard(key)
            self.stopped.add(key)
            consumer.pause([_tp(msg)])
            return False
        out.write(self.renderer(record_of(msg)))
        self.printed += 1
        if self.group_mode:
            consumer.store_offsets(msg)
        return True

    def _on_error(self, error: Any, msg: Any) -> None:
        from strom.client import KafkaClientError

        name = error.name()
        if name == "_PARTITION_EOF":
            self.active.discard((msg.topic(), msg.partition()))
            return
        if name == "_AUTO_OFFSET_RESET" or name == "OFFSET_OUT_OF_RANGE":
            fail(f"{msg.topic()}-{msg.partition()}: {error.str()}", name=name,
                 hint=f"see the valid range with `strom topic describe {msg.topic()}`")
        if error.fatal() or not error.retriable():
            raise KafkaClientError.from_kafka_error(error)


def _tp(msg: Any) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(msg.topic(), msg.partition())

"""`strom txn`: transactions as Kafka's `kafka-transactions.sh` shows and repairs them.

`list` asks every broker for the transactional ids it coordinates; `describe` asks one
id's coordinator; `describe-producers` shows the producers a partition tracks, with the
start offset of each open transaction (what holds back the last stable offset, and so
every read_committed consumer). `abort` ends an open transaction in one partition by
writing an ABORT marker there, found by its start offset as Kafka's tool does; it is the
repair for a *hanging* transaction, one its coordinator no longer knows, which
`find-hanging` looks for with Kafka's rule: a transaction open in a partition for longer
than the longest transaction timeout, whose producer id no coordinator lists or whose
coordinator does not count that partition in the transaction.

confluent-kafka has none of these admin calls, so they go over the Kafka protocol
(`strom.client.protocol_admin`), with TLS and SASL configured by the same `-X`
properties and profiles as every other command.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strom.cli.common import (
    DEFAULT_BROKERS,
    Brokers,
    CliError,
    Format,
    OutputFormat,
    fail,
    reports_errors,
)

if TYPE_CHECKING:
    from strom.client.protocol_admin import ProducerState, ProtocolAdmin

app = typer.Typer(help="Transactions: list, describe, find and abort hanging ones.",
                  no_args_is_help=True)

STATES = ("Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit",
          "CompleteAbort", "Dead", "PrepareEpochFence")
Topic = Annotated[str, typer.Option("--topic", "-t", help="Topic name.", show_default=False)]
Partition = Annotated[int, typer.Option("--partition", "-p", help="Partition number.",
                                        show_default=False)]
TxnProps = Annotated[
    list[str] | None,
    typer.Option("-X", metavar="KEY=VALUE",
                 help="client.id, request.timeout.ms, and librdkafka's security.protocol, "
                      "ssl.* and sasl.* (PLAIN, SCRAM-SHA-256/512) properties."),
]


def _admin(brokers: str, props: list[str] | None) -> ProtocolAdmin:
    from strom.cli.client import CLIENT_ID, connection_for
    from strom.client.protocol_admin import ProtocolAdmin

    connection = connection_for(brokers, props)
    return ProtocolAdmin.from_properties(connection.brokers, connection.properties,
                                        client_id=CLIENT_ID)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _when(ms: int | None) -> str | None:
    """Epoch milliseconds as UTC ISO-8601 for people (JSON keeps the number)."""
    if ms is None or ms < 0:
        return None
    stamp = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- list -----------------------------------------------------------------------------


@app.command("list")
@reports_errors
def list_(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", help=f"Only these states (repeatable): {', '.join(STATES)}.")] = None,
    producer_id: Annotated[list[int] | None, typer.Option(
        "--producer-id", help="Only these producer ids (repeatable).")] = None,
    duration_filter: Annotated[int | None, typer.Option(
        "--duration-filter", metavar="MS",
        help="Only transactions open for longer than MS milliseconds.")] = None,
    pattern: Annotated[str | None, typer.Option(
        "--transactional-id-pattern", metavar="REGEX",
        help="Only transactional ids the regular expression matches whole.")] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: TxnProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Transactional ids with their coordinator, producer id and state."""
    from strom.cli.output import Output

    states = _states(state or [])
    with _admin(brokers, props) as admin:
        listed = admin.list_transactions(states, producer_id or [],
                                         -1 if duration_filter is None else duration_filter,
                                         pattern)
    rows = [{"transactional_id": t.transactional_id, "coordinator": t.coordinator_id,
             "producer_id": t.producer_id, "state": t.state} for t in listed.transactions]
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table(["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"],
                  [[r["transactional_id"], r["coordinator"], r["producer_id"], r["state"]]
                   for r in rows])
    for name in sorted(listed.unknown_states):
        out.note(f"warning: the brokers know no state {name!r}")


def _states(names: Sequence[str]) -> list[str]:
    """Kafka's state names, matched without regard to case (ongoing → Ongoing)."""
    known = {s.lower(): s for s in STATES}
    result = []
    for name in names:
        spelled = known.get(name.lower().replace("_", "").replace("-", ""))
        if spelled is None:
            fail(f"unknown transaction state {name!r}", name="INVALID_ARGUMENT",
                 hint=f"states are {', '.join(STATES)}")
        result.append(spelled)
    return result


# --- describe -------------------------------------------------------------------------


@app.command()
@reports_errors
def describe(
    transactional_id: Annotated[str, typer.Option(
        "--transactional-id", "-i", help="The transactional id.", show_default=False)],
    brokers: Brokers = DEFAULT_BROKERS,
    props: TxnProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """One transactional id as its coordinator sees it.

    Producer id and epoch, state, timeout, when its transaction began and the
    partitions in it.
    """
    from strom.cli.output import Output
    from strom.client import KafkaClientError

    with _admin(brokers, props) as admin:
        try:
            d = admin.describe_transaction(transactional_id)
        except KafkaClientError as exc:
            if exc.name != "TRANSACTIONAL_ID_NOT_FOUND":
                raise
            raise CliError(exc.message, name=exc.name,
                           hint="`strom txn list` shows the transactional ids") from None
    duration = _now_ms() - d.start_time_ms if d.start_time_ms is not None else None
    data = {"transactional_id": d.transactional_id, "coordinator": d.coordinator_id,
            "producer_id": d.producer_id, "producer_epoch": d.producer_epoch,
            "state": d.state, "timeout_ms": d.timeout_ms, "start_time_ms": d.start_time_ms,
            "duration_ms": duration,
            "partitions": [{"topic": t, "partition": p} for t, p in d.partitions]}
    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    out.section([
        ("TRANSACTIONAL-ID", d.transactional_id), ("COORDINATOR", d.coordinator_id),
        ("PRODUCER-ID", d.producer_id), ("PRODUCER-EPOCH", d.producer_epoch),
        ("STATE", d.state), ("TIMEOUT-MS", d.timeout_ms),
        ("STARTED", f"{_when(d.start_time_ms)} ({d.start_time_ms})"
         if d.start_time_ms is not None else None),
        ("DURATION-MS", duration), ("PARTITIONS", len(d.partitions)),
    ])
    if d.partitions:
        out.blank()
        out.table(["TOPIC", "PARTITION"], [[t, p] for t, p in d.partitions])


# --- describe-producers ---------------------------------------------------------------


def _producer_row(p: ProducerState) -> dict[str, Any]:
    return {"producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
            "coordinator_epoch": p.coordinator_epoch, "last_sequence": p.last_sequence,
            "last_timestamp": p.last_timestamp,
            "current_txn_start_offset": p.current_txn_start_offset}


@reports_errors
def describe_producers(
    topic: Topic,
    partition: Partition,
    broker_id: Annotated[int | None, typer.Option(
        "--broker-id", help="Ask this replica rather than the leader.")] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: TxnProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """The producers a partition tracks, with their open transactions.

    TXN-START-OFFSET is where a producer's open transaction began: read_committed
    consumers wait there until it ends.
    """
    from strom.cli.output import Output
    from strom.client import KafkaClientError

    with _admin(brokers, props) as admin:
        answer = admin.describe_producers([(topic, partition)], broker_id)[(topic, partition)]
    if isinstance(answer, KafkaClientError):
        raise answer
    rows = [_producer_row(p) for p in answer]
    out = Output(fmt)
    if out.json:
        out.emit_json({"topic": topic, "partition": partition, "producers": rows})
        return
    out.table(["PRODUCER-ID", "PRODUCER-EPOCH", "COORDINATOR-EPOCH", "LAST-SEQUENCE",
               "LAST-TIMESTAMP", "TXN-START-OFFSET"],
              [[r["producer_id"], r["producer_epoch"], r["coordinator_epoch"],
                r["last_sequence"], _when(r["last_timestamp"]), r["current_txn_start_offset"]]
               for r in rows])


app.command("describe-producers")(describe_producers)
app.command("producers", hidden=True)(describe_producers)


# --- abort ----------------------------------------------------------------------------


@app.command()
@reports_errors
def abort(
    topic: Topic,
    partition: Partition,
    start_offset: Annotated[int | None, typer.Option(
        "--start-offset", help="Start offset of the open transaction to abort.")] = None,
    producer_id: Annotated[int | None, typer.Option(
        "--producer-id", help="Or name it: its producer id (with the two epochs).")] = None,
    producer_epoch: Annotated[int | None, typer.Option(
        "--producer-epoch", help="Its producer epoch.")] = None,
    coordinator_epoch: Annotated[int | None, typer.Option(
        "--coordinator-epoch", help="The latest coordinator epoch of the producer.")] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: TxnProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Abort an open (hanging) transaction in one partition.

    For a transaction its coordinator no longer ends. Its records stay in the log,
    hidden from read_committed consumers, and the last stable offset moves on.

    \b
    strom txn find-hanging --broker-id 0
    strom txn abort --topic orders --partition 3 --start-offset 41234
    """
    from strom.cli.output import Output

    with _admin(brokers, props) as admin:
        if start_offset is not None:
            if producer_id is not None:
                fail("pass --start-offset, or --producer-id with --producer-epoch and "
                     "--coordinator-epoch, not both", name="INVALID_ARGUMENT")
            found = _open_at(admin, topic, partition, start_offset)
            spec = (found.producer_id, found.producer_epoch, found.coordinator_epoch or 0)
        else:
            spec = _named(producer_id, producer_epoch, coordinator_epoch)
        admin.abort_transaction(topic, partition, *spec)
    data = {"topic": topic, "partition": partition, "producer_id": spec[0],
            "producer_epoch": spec[1], "coordinator_epoch": spec[2],
            "start_offset": start_offset, "status": "aborted"}
    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    out.table(["TOPIC", "PARTITION", "PRODUCER-ID", "PRODUCER-EPOCH", "COORDINATOR-EPOCH",
               "START-OFFSET", "STATUS"],
              [[topic, partition, spec[0], spec[1], spec[2], start_offset, "aborted"]])


def _open_at(admin: ProtocolAdmin, topic: str, partition: int, offset: int) -> ProducerState:
    """The producer whose open transaction in the partition starts at `offset`."""
    from strom.client import KafkaClientError

    answer = admin.describe_producers([(topic, partition)])[(topic, partition)]
    if isinstance(answer, KafkaClientError):
        raise answer
    for producer in answer:
        if producer.current_txn_start_offset == offset:
            return producer
    fail(f"no open transaction starts at offset {offset} in {topic}-{partition}",
         name="INVALID_ARGUMENT",
         hint=f"`strom txn describe-producers --topic {topic} --partition {partition}` "
              "shows the start offsets of open transactions")


def _named(producer_id: int | None, producer_epoch: int | None,
           coordinator_epoch: int | None) -> tuple[int, int, int]:
    if producer_id is None:
        fail("name the transaction with --start-offset, or with --producer-id, "
             "--producer-epoch and --coordinator-epoch", name="INVALID_ARGUMENT")
    if producer_epoch is None or coordinator_epoch is None:
        fail("--producer-id needs --producer-epoch and --coordinator-epoch",
             name="INVALID_ARGUMENT")
    # A producer whose first transaction hangs has coordinator epoch -1: 0 is at most
    # any epoch a partition can hold (as in Kafka's tool).
    return producer_id, producer_epoch, max(coordinator_epoch, 0)


# --- find-hanging ---------------------------------------------------------------------


@app.command("find-hanging")
@reports_errors
def find_hanging(
    broker_id: Annotated[int | None, typer.Option(
        "--broker-id", help="Search the partitions this broker holds a replica of.")] = None,
    topic: Annotated[str | None, typer.Option(
        "--topic", "-t", help="Search this topic only.")] = None,
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="And this partition of it only.")] = None,
    max_transaction_timeout: Annotated[int, typer.Option(
        "--max-transaction-timeout", metavar="MINUTES",
        help="The longest transaction timeout in use: older open transactions are "
             "suspects.")] = 15,
    brokers: Brokers = DEFAULT_BROKERS,
    props: TxnProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Hanging transactions: open ones that no coordinator will end.

    Older than the longest transaction timeout, and unknown to their coordinator (or
    without this partition in it).
    """
    from strom.cli.output import Output

    if topic is None and broker_id is None:
        fail("find-hanging needs --topic or --broker-id to limit the search",
             name="INVALID_ARGUMENT")
    if partition is not None and topic is None:
        fail("--partition needs --topic", name="INVALID_ARGUMENT")
    now = _now_ms()
    with _admin(brokers, props) as admin:
        scope = _partitions(admin, topic, partition, broker_id)
        suspects = _suspects(admin, scope, broker_id, now - max_transaction_timeout * 60_000)
        hanging = _hanging(admin, suspects)
    rows = [{"topic": tp[0], "partition": tp[1], **_producer_row(p),
             "duration_min": (now - p.last_timestamp) // 60_000} for tp, p in hanging]
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
        return
    out.table(["TOPIC", "PARTITION", "PRODUCER-ID", "PRODUCER-EPOCH", "COORDINATOR-EPOCH",
               "START-OFFSET", "LAST-TIMESTAMP", "DURATION-MIN"],
              [[r["topic"], r["partition"], r["producer_id"], r["producer_epoch"],
                r["coordinator_epoch"], r["current_txn_start_offset"],
                _when(r["last_timestamp"]), r["duration_min"]] for r in rows])
    if not rows:
        out.note(f"no hanging transactions among {len(scope)} partition(s)")


TP = tuple[str, int]


def _partitions(admin: ProtocolAdmin, topic: str | None, partition: int | None,
                broker_id: int | None) -> list[TP]:
    """The partitions to search: one, a topic's, or every topic's; with a broker id,
    those with a replica there."""
    if topic is not None and partition is not None:
        return [(topic, partition)]
    topics = [topic] if topic is not None else admin.topics()
    if not topics:
        return []
    return [(p.topic, p.partition) for p in admin.partitions(topics)
            if broker_id is None or broker_id in p.replicas]


def _suspects(admin: ProtocolAdmin, scope: list[TP], broker_id: int | None,
              opened_before_ms: int) -> list[tuple[TP, ProducerState]]:
    """Open transactions whose producer last wrote before `opened_before_ms`.

    A partition the named broker answers NOT_LEADER_OR_FOLLOWER for (a Strom follower
    keeps no producer view to share) is asked of its leader instead.
    """
    from strom.client import KafkaClientError

    answers = admin.describe_producers(scope, broker_id) if scope else {}
    moved = [tp for tp, a in answers.items()
             if isinstance(a, KafkaClientError) and a.name == "NOT_LEADER_OR_FOLLOWER"]
    if broker_id is not None and moved:
        answers.update(admin.describe_producers(moved))
    found = []
    for tp, answer in answers.items():
        if isinstance(answer, KafkaClientError):
            raise answer
        found += [(tp, p) for p in answer if p.current_txn_start_offset is not None
                  and p.last_timestamp < opened_before_ms]
    return found


def _hanging(admin: ProtocolAdmin, suspects: list[tuple[TP, ProducerState]]
             ) -> list[tuple[TP, ProducerState]]:
    """The suspects their coordinator will not end (Kafka's rule, see the module)."""
    from strom.client import KafkaClientError

    if not suspects:
        return []
    producer_ids = sorted({p.producer_id for _, p in suspects})
    listed = admin.list_transactions(producer_ids=producer_ids).transactions
    ids = {t.producer_id: t.transactional_id for t in listed}
    partitions: dict[int, set[TP] | None] = {}
    for producer_id, transactional_id in ids.items():
        try:
            partitions[producer_id] = set(admin.describe_transaction(transactional_id).partitions)
        except KafkaClientError as exc:
            if exc.name != "TRANSACTIONAL_ID_NOT_FOUND":
                raise
            partitions[producer_id] = None
    return [(tp, p) for tp, p in suspects
            if tp not in (partitions.get(p.producer_id) or set())]

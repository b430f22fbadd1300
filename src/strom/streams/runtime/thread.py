"""`StreamThread`: one consumer, one producer, and the tasks of the partitions it owns.

The loop: restore new tasks → poll records → hand them to their tasks → process →
fire wall-clock punctuations → commit when `commit.interval.ms` has passed or a
processor asked. A commit is at-least-once: flush the stores, flush the producer (every
output and changelog record acknowledged), then commit the consumed offsets
synchronously, then write each task's checkpoint. A crash between two commits
reprocesses the records since the last one: output may repeat, none is lost.

Tasks are assigned by the group `application.id`, whose leader runs Strom's task
assignor (`group`, `assignor`: Kafka Streams' StreamsPartitionAssignor and
HighAvailabilityTaskAssignor, in essence), cooperatively: a rebalance revokes only the
tasks that move, and the thread keeps processing the others. Assigned partitions are
paused until their task's stores are restored from the changelogs.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from strom.client import KafkaClientError, KafkaClients
from strom.client.security import ClientSecurity
from strom.streams.errors import StreamsError
from strom.streams.record import ConsumedRecord, ProducedRecord
from strom.streams.runtime import checkpoint, consumer_errors
from strom.streams.runtime.assignor import AssignorConfig, MemberInfo
from strom.streams.runtime.config import StreamsConfig
from strom.streams.runtime.global_updater import GlobalUpdater
from strom.streams.runtime.group import Joined, StreamsMembership, TaskMigrated
from strom.streams.runtime.instance import Instance
from strom.streams.runtime.metrics import StreamsMetrics
from strom.streams.runtime.process_id import process_id
from strom.streams.runtime.rebalance import TaskLayout, offset_sums
from strom.streams.runtime.restore import prepare_task_dir, restore_task
from strom.streams.runtime.standby import Standbys
from strom.streams.runtime.topics import Plan
from strom.streams.task import Task, TaskEnv
from strom.streams.topology import SubTopology, Topology, physical_topic

log = logging.getLogger(__name__)


MAX_RECOVERIES_IN_A_ROW = 5
# what produce() raises under exactly-once once the transaction cannot go on: librdkafka's
# _FATAL after the producer is fenced, _STATE while the transaction is in an abortable
# error (the broker fenced or aborted it while records of it were in flight)
FATAL, STATE = -150, -172


class TransactionLost(StreamsError):
    """Under exactly-once: the open transaction cannot commit (aborted, or fenced)."""


class _ProducerCollector:
    """Sends task output through the producer; remembers changelog offsets acknowledged."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    def send(self, record: ProducedRecord) -> None:
        while True:
            try:
                self.producer.produce(record.topic, value=record.value, key=record.key,
                                      partition=record.partition, timestamp=record.timestamp,
                                      headers=list(record.headers) or None)
                return
            except BufferError:
                self.producer.poll(0.05)


class StreamThread:
    def __init__(self, topology: Topology, config: StreamsConfig, clients: KafkaClients,
                 the_plan: Plan, thread_index: int = 1, instance: Instance | None = None
                 ) -> None:
        self.topology = topology
        self.config = config
        self.clients = clients
        self.plan = the_plan
        app = config.application_id
        self._subs: dict[str, SubTopology] = {}
        for sub in topology.subtopologies():
            for topic in sub.source_topics:
                self._subs[physical_topic(topology, topic, app)] = sub
        self.tasks: dict[str, Task] = {}
        self._task_partitions: dict[str, list[Any]] = defaultdict(list)
        self._restoring: list[Task] = []
        self._idle_since: dict[str, float] = {}
        self._changelog_offsets: dict[tuple[str, int], int] = {}
        self._changelogs = set(the_plan.changelogs)
        self._delivery_error: Any = None
        self._lock = threading.Lock()
        client = f"{app}-StreamThread-{thread_index}"
        self.eos = config.exactly_once
        self._in_txn = False
        # exactly-once: a transactional producer, and consumers that see committed data only
        self.process_id = process_id(config.app_state_dir)
        producer_eos = ({"transactional.id": f"{app}-{self.process_id}-{thread_index}",
                         # Kafka Streams' 10 s, but librdkafka wants it >= the socket timeout
                         "transaction.timeout.ms": max(10_000, int(clients.timeout * 1000))}
                        if self.eos else {})
        self.transactional_id = str(producer_eos["transactional.id"]) if self.eos else None
        isolation = {"isolation.level": "read_committed" if self.eos else "read_uncommitted"}
        self._producer_config = {
            "client.id": f"{client}-producer", "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "partitioner": "murmur2_random", "on_delivery": self._on_delivery,
            **producer_eos}
        self.producer = clients.producer(self._producer_config)
        self.recoveries = 0  # tasks lost and taken up again without a restart (observable)
        self._failed_in_a_row = 0
        server = f"@{config.application_server}" if config.application_server else ""
        self.consumer = clients.consumer({
            "client.id": f"{client}-consumer{server}", "group.id": app, "enable.auto.commit": False,
            "auto.offset.reset": config.auto_offset_reset, **isolation,
            **config.consumer_properties})
        session, heartbeat, rebalance = config.group_timing()
        self.membership = StreamsMembership(config.bootstrap_servers, app,
                                            f"{client}-consumer{server}", session,
                                            min(heartbeat, session // 3), rebalance,
                                            clients.timeout, ClientSecurity.from_properties(
                                                {**config.client_properties,
                                                 **config.consumer_properties}))
        self.layout = TaskLayout(topology, app, the_plan)
        self._probe_at_ms = 0
        self.revoked: list[str] = []  # task ids given up in rebalances, in order (observable)
        self.assignments: list[tuple[int, list[str], list[str]]] = []  # generation, active, standby
        self.restore_consumer = clients.consumer({
            "client.id": f"{client}-restore-consumer", "group.id": f"{app}-restore",
            "enable.auto.commit": False, "auto.offset.reset": "earliest", **isolation})
        self._collector = _ProducerCollector(self.producer)
        self.env = TaskEnv(app, self._collector,
                           lambda: time.time_ns() // 1_000_000, config.default_key_serde,
                           config.default_value_serde, config.timestamp_extractor,
                           config.app_state_dir, config.skip_bad_records,
                           config.continue_on_processing_error, config.dead_letter_topic)
        if instance is None:  # a thread on its own: it keeps the global stores itself
            instance = Instance(GlobalUpdater(topology, config, clients), StreamsMetrics(app))
        self.instance = instance
        self.name = client
        self.metrics = instance.metrics
        self._repartition_topics = {physical_topic(topology, t, app)
                                    for t in topology.internal_topics}
        self._next_purge = 0.0
        self.standbys = Standbys(topology, config, clients, the_plan, self.env)
        self._standbys_stale = False
        self._standby_ids: set[str] = set()
        self.globals = instance.globals
        self.env.global_stores = self.globals.state.stores
        if instance.owner is None:
            instance.owner = self
        instance.threads.append(self)
        self.processed = 0

    # --- delivery and rebalance callbacks ---------------------------------------------

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._delivery_error = err
            return
        topic = msg.topic()
        if topic in self._changelogs:
            key = (topic, msg.partition())
            if msg.offset() > self._changelog_offsets.get(key, -1):
                self._changelog_offsets[key] = msg.offset()

    # --- the group ----------------------------------------------------------------------

    def _rejoin(self) -> None:
        """Join the group (again) and take on what the leader assigned."""
        info = MemberInfo("", self.process_id, self.config.application_server,
                          set(self.tasks), set(self.standbys.tasks),
                          offset_sums(self.config.app_state_dir, self.instance.running(),
                                      self.instance.standby_offsets()))
        joined = self.membership.join(self.layout.topics(), info, self._lead)
        log.info("generation %s: active %s, standby %s", joined.generation,
                 joined.assignment.active, joined.assignment.standby)
        self._apply(joined)

    def _lead(self, members: list[MemberInfo]) -> dict[str, Any]:
        """The leader's assignment of every member's tasks."""
        cfg = self.config
        space = self.layout.space(self.restore_consumer, self.clients.timeout)
        settings = AssignorConfig(cfg.num_standby_replicas, cfg.acceptable_recovery_lag,
                                  cfg.max_warmup_replicas, cfg.probing_rebalance_interval_ms)
        return self.layout.plan(space, members, settings, time.time_ns() // 1_000_000)

    def _apply(self, joined: Joined) -> None:
        self.assignments.append((joined.generation, list(joined.assignment.active),
                                 list(joined.assignment.standby)))
        active = set(joined.assignment.active)
        revoked = sorted(t for t in self.tasks if t not in active)
        if revoked:
            self._revoke(revoked)
            self.membership.rejoin_needed.set()  # cooperative: a second round hands them on
        added = [t for t in joined.assignment.active if t not in self.tasks]
        if added:
            self._assign(added)
        self._standby_ids = set(joined.assignment.standby) - active
        self._standbys_stale = True
        self._probe_at_ms = joined.assignment.probe_at_ms

    def _assign(self, task_ids: list[str]) -> None:
        from confluent_kafka import TopicPartition

        self.standbys.release(set(task_ids))
        partitions = []
        for task_id in task_ids:
            sub = self._subs[self.layout.partitions[task_id][0][0]]
            task = Task(self.topology, sub, int(task_id.rsplit("_", 1)[1]), self.env)
            task.set_partition_counts(self.plan.partitions)
            self.tasks[task_id] = task
            self._restoring.append(task)
            tps = [TopicPartition(t, p) for t, p in self.layout.partitions[task_id]]
            self._task_partitions[task_id] = tps
            partitions.extend(tps)
        log.info("assigned %s", [(p.topic, p.partition) for p in partitions])
        self.consumer.incremental_assign(partitions)
        self.consumer.pause(partitions)

    def _revoke(self, task_ids: list[str]) -> None:
        """Commit, then close the tasks that leave (their checkpoints written)."""
        closing = [self.tasks[t] for t in task_ids]
        partitions = [tp for t in task_ids for tp in self._task_partitions[t]]
        log.info("revoked %s", [(p.topic, p.partition) for p in partitions])
        self.commit(closing=closing)
        self._drop(task_ids)
        self.consumer.incremental_unassign(partitions)
        self.revoked.extend(task_ids)

    def _drop(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            task = self.tasks.pop(task_id)
            task.close()
            self._task_partitions.pop(task_id, None)
            self._idle_since.pop(task_id, None)
            if task in self._restoring:
                self._restoring.remove(task)

    def _close_tasks(self) -> None:
        for task in self.tasks.values():
            task.close()
        self.tasks.clear()
        self._task_partitions.clear()
        self._restoring.clear()

    # --- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        if self.eos:
            # fences an earlier producer with this transactional id, aborting its transaction
            self.producer.init_transactions(self.clients.timeout)
            self._begin()
        self._bootstrap_globals(stop)
        self._rejoin()
        interval = (self.config.commit_interval_ms or 30_000) / 1000
        next_commit = time.monotonic() + interval
        try:
            while not stop.is_set():
                try:
                    next_commit = self._turn(next_commit, interval)
                except Exception as exc:
                    if not self._tasks_lost(exc):
                        raise
                    self._recover(exc)
            self.commit(final=True)
        finally:
            self._shutdown()

    def _turn(self, next_commit: float, interval: float) -> float:
        """One turn of the loop; when the next commit is due."""
        self._maybe_rejoin()
        self._restore_pending()
        self._follow_standbys()
        if self.instance.owner is self:
            self.globals.poll()
        messages = self.consumer.consume(self.config.max_poll_records,
                                         self.config.poll_ms / 1000)
        self._dispatch(messages)
        requested = self._process_all()
        self.producer.poll(0)
        if requested or time.monotonic() >= next_commit:
            self.commit()
            self._failed_in_a_row = 0
            return time.monotonic() + interval
        return next_commit

    # --- losing tasks: Kafka's TaskMigratedException ------------------------------------

    def _tasks_lost(self, exc: Exception) -> bool:
        """Whether `exc` means this thread's tasks may have moved on without it: the group
        dropped it (TaskMigrated), or under exactly-once its transaction cannot commit
        (the producer fenced by a newer one with its transactional id, or the broker
        aborted it, e.g. after `transaction.timeout.ms`)."""
        from confluent_kafka import KafkaException

        if isinstance(exc, TaskMigrated | TransactionLost):
            return True
        if not self.eos or not isinstance(exc, KafkaException) or not exc.args:
            return False
        error = exc.args[0]
        if getattr(error, "code", lambda: None)() in (FATAL, STATE):
            return True
        return bool(getattr(error, "fatal", lambda: False)()
                    or getattr(error, "txn_requires_abort", lambda: False)())

    def _recover(self, exc: Exception) -> None:
        """Close every task dirty (under exactly-once their stores hold uncommitted
        writes: without a checkpoint they are wiped and restored from the committed
        changelog), abort or replace the transaction, and rejoin the group; consuming
        resumes from the committed offsets. Five times in a row without a commit between
        is not a passing problem: the thread fails then."""
        self._failed_in_a_row += 1
        if self._failed_in_a_row > MAX_RECOVERIES_IN_A_ROW:
            raise StreamsError(f"tasks lost {MAX_RECOVERIES_IN_A_ROW} times in a row: {exc}"
                               ) from exc
        log.warning("tasks lost (%s): closing them dirty and rejoining the group", exc)
        self.recoveries += 1
        lost = list(self.tasks)
        partitions = [tp for t in lost for tp in self._task_partitions.get(t, [])]
        changelogs = {tp for t in lost for tp in self.layout.changelogs.get(t, [])}
        self._drop(lost)
        if partitions:
            self.consumer.incremental_unassign(partitions)
        for key in changelogs:
            self._changelog_offsets.pop(key, None)
        self._delivery_error = None
        if self.eos:
            self._reset_transaction()
        self.membership.rejoin_needed.set()

    def _reset_transaction(self) -> None:
        """Abort the open transaction; if the producer cannot (fenced: fatal), replace it:
        its init_transactions aborts what the old one left open."""
        from confluent_kafka import KafkaException

        timeout = self.clients.timeout
        try:
            self.producer.abort_transaction(timeout)
        except KafkaException as exc:
            log.info("abort failed (%s): a new producer for %s", exc, self.transactional_id)
            self.producer = self.clients.producer(self._producer_config)
            self._collector.producer = self.producer
            self.producer.init_transactions(timeout)
        self._in_txn = False
        self._begin()

    def _bootstrap_globals(self, stop: threading.Event) -> None:
        """The owner reads the global stores whole; the other threads wait for that."""
        if self.instance.owner is self:
            self.globals.bootstrap()
            self.instance.globals_ready.set()
            return
        while not self.instance.globals_ready.wait(0.1):
            if stop.is_set():
                return

    def _maybe_rejoin(self) -> None:
        """Rejoin when the group rebalances, after giving tasks up, or when a probing
        rebalance is due (warm-up replicas may have caught up)."""
        due = 0 < self._probe_at_ms <= time.time_ns() // 1_000_000
        if due:
            log.info("probing rebalance")
            self._probe_at_ms = 0
        if due or self.membership.rejoin_needed.is_set():
            self._rejoin()

    def _follow_standbys(self) -> None:
        if self._standbys_stale and self._restoring:
            # standbys no longer ours close at once: another thread may wait for them
            self.standbys.retain(self._standby_ids)
        elif self._standbys_stale:
            self.standbys.update(self._standby_ids)
            self._standbys_stale = False
        self.standbys.poll()

    def _restore_pending(self) -> None:
        while self._restoring:
            task = self._restoring[0]
            task_dir = self.config.app_state_dir / task.id
            if not self._open(task, task_dir):
                return  # another thread of this instance still holds its stores
            self._restoring.pop(0)
            offsets = checkpoint.read(task_dir)  # as prepare_task_dir left it
            self._changelog_offsets.update(
                restore_task(task, self.restore_consumer, offsets, self.metrics))
            if self.eos:  # a crash from now on leaves no checkpoint: wipe and restore
                checkpoint.remove(task_dir)
            task.init_processors()
            self.consumer.resume(self._task_partitions[task.id])
            log.info("task %s is running", task.id)

    def _open(self, task: Task, task_dir: Path) -> bool:
        """Open the task's stores; False while another thread of this instance still
        keeps them as a standby (it closes it at its next turn: its assignment no longer
        has it), as Kafka's state-directory locks make a task wait."""
        if self.instance.standby_elsewhere(task.id, self):
            return False
        prepare_task_dir(task, task_dir)
        task.open_stores()
        return True

    def _dispatch(self, messages: list[Any]) -> None:
        batches: dict[str, list[ConsumedRecord]] = defaultdict(list)
        for msg in messages:
            error = msg.error()
            if error is not None:
                consumer_errors.check(error, "consumer")
                continue
            topic, partition = msg.topic(), msg.partition()
            task_id = f"{self._subs[topic].id}_{partition}"
            batches[task_id].append(ConsumedRecord(topic, partition, msg.offset(),
                                                   msg.timestamp()[1], msg.key(), msg.value(),
                                                   tuple(msg.headers() or ())))
        for task_id, records in batches.items():
            task = self.tasks.get(task_id)
            if task is not None:
                task.add_records(records)

    def _process_all(self) -> bool:
        requested = False
        for task in self.tasks.values():
            if task in self._restoring:
                continue
            done = task.process() if self._ready(task) else 0
            self.processed += done
            self.metrics.processed[task.id] += done
            self.metrics.thread_processed[self.name] += done
            task.maybe_punctuate_wall_clock()
            requested = task.take_commit_request() or requested
        return requested

    def _ready(self, task: Task) -> bool:
        """Whether the task may process now (Kafka's max.task.idle.ms = 0): a task that
        reads several partitions waits while one of them has nothing buffered but more
        on the broker, so records are taken in timestamp order across them (a join's
        table side is read before the stream records that come later in time). A lag
        still unknown after `max_task_idle_ms` (or 2 s) stops the wait."""
        partitions = self._task_partitions.get(task.id, [])
        if len(partitions) < 2:
            return True
        waiting = [tp for tp in partitions if not task.has_buffered(tp.topic, tp.partition)]
        if not waiting or all(self._caught_up(tp) for tp in waiting):
            self._idle_since.pop(task.id, None)
            return True
        since = self._idle_since.setdefault(task.id, time.monotonic())
        return time.monotonic() - since > max(self.config.max_task_idle_ms, 2000) / 1000

    def _caught_up(self, tp: Any) -> bool:
        """The consumer has fetched everything the broker had for `tp` (as last seen)."""
        from confluent_kafka import KafkaException

        try:
            high = self.consumer.get_watermark_offsets(tp, cached=True)[1]
            position = self.consumer.position([tp])[0].offset
        except KafkaException:
            return False
        return high >= 0 and position >= high

    # --- commit -----------------------------------------------------------------------

    def commit(self, final: bool = False, closing: Collection[Task] = ()) -> None:
        """Stores, then output, then offsets, then checkpoints. At-least-once: flush the
        producer and commit the offsets; exactly-once: the offsets join the producer's
        transaction, which commits (and a new one begins unless `final`). Under
        exactly-once checkpoints are written only for tasks that close (`closing`, `final`).
        `final` (a clean stop) also purges the repartition topics now and waits for it."""
        started = time.monotonic()
        running = [t for t in self.tasks.values() if t not in self._restoring]
        for task in running:
            task.flush()
        offsets = self._committable(running)
        if self.eos:
            self._commit_transaction(offsets, begin_next=not final)
        else:
            self._commit_at_least_once(offsets)
        for task in running:
            if final or task in closing or not self.eos:
                self._write_checkpoint(task)
        self.standbys.checkpoint()
        self.metrics.committed(time.monotonic() - started, self.name)
        self.metrics.thread_tasks[self.name] = (len(self.tasks), len(self.standbys.tasks))
        self._measure_lag(offsets)
        self._maybe_purge(offsets, final)

    def _committable(self, running: list[Task]) -> list[Any]:
        """The offsets to commit: after the last record processed, or the consumer's
        position where nothing is buffered (past transaction markers, as Kafka Streams
        commits, so a drained partition shows no lag)."""
        from confluent_kafka import TopicPartition

        wanted = {(topic, partition): offset for task in running
                  for (topic, partition), offset in task.processed_offsets.items()}
        drained = [TopicPartition(t, p) for task in running
                   for (t, p) in task.processed_offsets if not task.has_buffered(t, p)]
        if drained:
            for tp in self.consumer.position(drained):
                if tp.offset > wanted[(tp.topic, tp.partition)]:
                    wanted[(tp.topic, tp.partition)] = tp.offset
        return [TopicPartition(t, p, o) for (t, p), o in wanted.items()]

    def _commit_at_least_once(self, offsets: list[Any]) -> None:
        self._retrying("flushing the producer", lambda: self.clients.flush(self.producer))
        if self._delivery_error is not None:
            raise StreamsError(f"a record could not be delivered: {self._delivery_error}")
        if offsets:
            wanted = {(tp.topic, tp.partition): tp.offset for tp in offsets}
            self._retrying("committing offsets", lambda: self.membership.commit(wanted))

    def _retrying(self, what: str, action: Callable[[], Any]) -> Any:
        """Run `action`, again while it fails for a reason that passes (brokers down or
        restarting), up to `task_timeout_ms` (Kafka Streams' task.timeout.ms)."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + self.config.task_timeout_ms / 1000
        while True:
            try:
                return action()
            except (KafkaClientError, KafkaException) as exc:
                if not _passing(exc) or time.monotonic() > deadline:
                    raise
                log.warning("%s: %s; retrying", what, exc)
                time.sleep(0.5)

    def _commit_transaction(self, offsets: list[Any], begin_next: bool) -> None:
        from confluent_kafka import KafkaException

        timeout = self.clients.timeout
        if not self._in_txn:  # after the final commit (a revocation while closing)
            if not offsets:
                return
            self._begin()
        try:
            if offsets:
                self._retrying("sending offsets to the transaction",
                               lambda: self.producer.send_offsets_to_transaction(
                                   offsets, self.membership.group_metadata(), timeout))
            self._retrying("committing the transaction",
                           lambda: self.producer.commit_transaction(timeout))
            self._in_txn = False
        except KafkaException as exc:
            if self._tasks_lost(exc):
                raise TransactionLost(f"the transaction could not commit: {exc}") from exc
            raise StreamsError(f"the transaction could not commit: {exc}") from exc
        if self._delivery_error is not None:
            raise TransactionLost(f"a record could not be delivered: {self._delivery_error}")
        if begin_next:
            self._begin()

    def _begin(self) -> None:
        self.producer.begin_transaction()
        self._in_txn = True

    def _maybe_purge(self, offsets: list[Any], now_and_wait: bool) -> None:
        """Delete repartition records the group has committed past (Kafka Streams does,
        so repartition topics, kept with retention.ms=-1, do not grow forever)."""
        now = time.monotonic()
        if now < self._next_purge and not now_and_wait:
            return
        self._next_purge = now + self.config.repartition_purge_interval_ms / 1000
        purgeable = [tp for tp in offsets if tp.topic in self._repartition_topics]
        if not purgeable:
            return
        futures = self.clients.admin().delete_records(purgeable,
                                                      request_timeout=self.clients.timeout)
        for tp, future in futures.items():
            future.add_done_callback(functools.partial(_log_purge_failure, tp))
        if now_and_wait:
            try:
                self.clients.wait(futures.values())
            except KafkaClientError as exc:  # purging is housekeeping: never fail a stop
                log.warning("repartition purge at close: %s", exc)

    def _measure_lag(self, offsets: list[Any]) -> None:
        """Records between each committed position and its partition's end (as cached)."""
        from confluent_kafka import KafkaException

        for tp in offsets:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:  # no cached answer yet: keep the old value
                continue
            if high >= 0:
                self.metrics.lag[(tp.topic, tp.partition)] = max(0, high - tp.offset)

    def _write_checkpoint(self, task: Task) -> None:
        persistent = {name: topic for name, topic in task.changelog_topics().items()
                      if task.stores[name].persistent}
        if not persistent:
            return
        offsets = {(topic, task.partition): self._changelog_offsets[(topic, task.partition)]
                   for topic in persistent.values()
                   if (topic, task.partition) in self._changelog_offsets}
        checkpoint.write(self.config.app_state_dir / task.id, offsets)

    def _shutdown(self) -> None:
        self._close_tasks()
        try:
            self.membership.close(leave=True)  # the others rebalance now, not after a session
            self.consumer.close()
        finally:
            self.restore_consumer.close()
            self.standbys.close()
            if self.instance.owner is self:
                self.globals.close()
            self.instance.threads.remove(self)
            self.metrics.thread_gone(self.name)
            self.producer.flush(10)


def _passing(exc: Exception) -> bool:
    """Whether an error may go away by itself (retriable, or the brokers unreachable)."""
    if isinstance(exc, KafkaClientError):
        return exc.retriable and not exc.fatal
    error = exc.args[0] if exc.args else None
    if error is None or error.fatal():
        return False
    return bool(error.retriable()) or error.code() < 0


def _log_purge_failure(tp: Any, future: Any) -> None:
    if future.exception() is not None:
        log.warning("could not purge %s-%s: %s", tp.topic, tp.partition, future.exception())

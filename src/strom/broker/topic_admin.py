"""Creating, growing and deleting topics: validation and replica placement.

Shared by CreateTopics, CreatePartitions, DeleteTopics and Metadata's auto-creation so
the four paths apply one set of rules. Errors carry Kafka's error name and message.

Bounded work. The admin requests are coroutines that never hold the event loop for long:
validation yields to other clients every few milliseconds (``Slicer``) and the metadata of
a whole request is written once. Admin requests run one at a time (a lock, as Kafka's
controller runs one operation at a time), and a name being created is refused to anyone
else meanwhile.

Metadata first, logs after (CreateTopics, CreatePartitions), as Kafka's controller commits
the records and answers while each broker creates the logs when it applies them: the
answer never waits for a thousand directories on a slow disk. The replica manager builds
the logs when the image names them (a few inline, many by a worker thread); until a
partition's log exists, Produce, Fetch and ListOffsets answer UNKNOWN_TOPIC_OR_PARTITION,
which every client retries. A log that cannot be created takes its partition offline
(KAFKA_STORAGE_ERROR), as on a broker that learns of the topic from another; a crash in
between is completed by the next start, which builds what the metadata names. The
partition budget below still refuses, before anything is written, what would run out of
descriptors. Auto-created and internal topics (``create``: a few partitions, synchronous
callers) still have their logs built before the write.

Limits, checked before anything is written:

* Kafka's controller refuses an operation of more than 10,000 metadata records (a topic
  record, one per partition, one per config) with POLICY_VIOLATION "Unable to perform
  excessively large batch operation." for every topic of the request, validate-only too;
* the partition budget (``resource_budget``): a topic that would make this broker host
  more partitions than its budget, or need more file descriptors than are free, is
  refused with POLICY_VIOLATION and says which limit to raise. Internal topics are never
  refused, and room for ``__consumer_offsets`` is kept until it exists.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from strom.broker.replication.replica_builder import Blueprint, Key
from strom.broker.resource_budget import BudgetExceeded
from strom.cluster.image import TopicInfo
from strom.cluster.local import NewTopic
from strom.cluster.store import MetadataError, validate_topic_name
from strom.config.defs import InvalidConfig
from strom.config.topic import validate_topic_overrides

if TYPE_CHECKING:
    from strom.broker.replication.replica_manager import ReplicaManager
    from strom.cluster.store import MetadataStore
    from strom.config.broker import BrokerConfig

log = logging.getLogger(__name__)
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})
OFFSETS_TOPIC = "__consumer_offsets"
MAX_RECORDS_PER_USER_OP = 10_000  # Kafka's QuorumController.MAX_RECORDS_PER_USER_OP
EXCESSIVE_BATCH = "Unable to perform excessively large batch operation."
SLICE_SECONDS = 0.005  # admin work runs at most this long before other clients get a turn
LOGGED_ONE_BY_ONE = 10  # larger batches are logged as one line


@dataclass(frozen=True)
class TopicSpec:
    name: str
    num_partitions: int  # -1: broker default
    replication_factor: int  # -1: broker default
    assignments: Mapping[int, Sequence[int]]
    configs: Mapping[str, str | None]


def _declared_records(spec: TopicSpec) -> int:
    """The metadata records a spec asks for, known before any placement is computed."""
    partitions = len(spec.assignments) or max(spec.num_partitions, 1)
    return 1 + partitions + len(spec.configs)


@dataclass
class CreatePlan:
    """One topic of a CreateTopics: its placement and configs, then its outcome."""

    spec: TopicSpec
    assignments: dict[int, list[int]] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    error: MetadataError | None = None
    topic_id: Any = None

    @property
    def records(self) -> int:
        """Metadata records Kafka's controller would write for it."""
        return 1 + len(self.assignments) + len(self.configs)


class Slicer:
    """Yields to the event loop when the current slice of admin work has run long enough."""

    def __init__(self, seconds: float = SLICE_SECONDS) -> None:
        self._seconds = seconds
        self._since = time.monotonic()

    async def tick(self) -> None:
        if time.monotonic() - self._since >= self._seconds:
            await asyncio.sleep(0)
            self._since = time.monotonic()


def _replica_index(first: int, shift: int, replica: int, n: int) -> int:
    """Kafka's follower placement: distinct brokers for every replica of a partition."""
    return (first + 1 + (shift + replica) % (n - 1)) % n


def _rack_alternated(brokers: Mapping[int, str | None]) -> list[int]:
    """Brokers ordered so that consecutive ones sit in different racks, as Kafka does."""
    by_rack: dict[str, list[int]] = {}
    for broker, rack in sorted(brokers.items()):
        by_rack.setdefault(rack or "", []).append(broker)
    ordered: list[int] = []
    racks = [by_rack[r] for r in sorted(by_rack)]
    for i in range(max(len(r) for r in racks)):
        ordered += [r[i] for r in racks if i < len(r)]
    return ordered


def assign_replicas(
    brokers: Sequence[int] | Mapping[int, str | None],
    partitions: range,
    replication_factor: int,
    start: int | None = None,
    shift: int | None = None,
) -> dict[int, list[int]]:
    """Spread replicas round-robin with a shifting follower offset (Kafka's algorithm).

    Leaders rotate over the brokers from a random start, so topics do not all lead on
    the first broker. With racks (a mapping broker -> rack), brokers are interleaved by
    rack and each partition's replicas avoid sharing a rack while any rack is unused.
    """
    racks = dict(brokers) if isinstance(brokers, Mapping) else dict.fromkeys(brokers)
    rack_aware = any(racks.values())
    ordered = _rack_alternated(racks) if rack_aware else sorted(racks)
    n = len(ordered)
    start = random.randrange(n) if start is None else start
    shift = random.randrange(n) if shift is None else shift
    placement: dict[int, list[int]] = {}
    for p in partitions:
        if p > 0 and (start + p) % n == 0:
            shift += 1
        first = (start + p) % n
        replicas = [ordered[first]]
        if n > 1:
            candidates = [ordered[_replica_index(first, shift, k, n)] for k in range(n - 1)]
            used_racks = {racks[ordered[first]]}
            for candidate in candidates:
                if len(replicas) == replication_factor:
                    break
                all_racks_used = len(used_racks) >= len(set(racks.values()))
                if rack_aware and racks[candidate] in used_racks and not all_racks_used:
                    continue
                replicas.append(candidate)
                used_racks.add(racks[candidate])
            for candidate in candidates:  # racks exhausted: fill with the rest in order
                if len(replicas) == replication_factor:
                    break
                if candidate not in replicas:
                    replicas.append(candidate)
        placement[p] = replicas
    return placement


class TopicAdmin:
    def __init__(self, config: BrokerConfig, store: MetadataStore,
                 replicas: ReplicaManager) -> None:
        self.config = config
        self.broker_id = config.broker_id
        self.store = store
        self.replicas = replicas  # the budget, and the builder for synchronous creates
        self._lock = asyncio.Lock()
        self._in_flight: set[str] = set()  # names being created by a request in progress

    def _defaults(self) -> tuple[int, int]:
        config = self.config
        return config.get_int("num.partitions"), config.get_int("default.replication.factor")

    def plan_create(self, spec: TopicSpec) -> tuple[dict[int, list[int]], dict[str, str]]:
        """Validate a creation and return (assignments, configs); raises MetadataError."""
        validate_topic_name(spec.name)
        image = self.store.image()
        if spec.name in image.topics or spec.name in self._in_flight:
            raise MetadataError(ErrorCode.topic_already_exists, f"Topic '{spec.name}' already exists.")
        default_partitions, default_rf = self._defaults()
        try:
            configs = validate_topic_overrides(spec.configs)
        except InvalidConfig as exc:
            raise MetadataError(ErrorCode.invalid_config, str(exc)) from exc
        if spec.assignments:
            if spec.num_partitions != -1 or spec.replication_factor != -1:
                raise MetadataError(
                    ErrorCode.invalid_request,
                    "Both numPartitions or replicationFactor and replicasAssignments were set.",
                )
            return self._check_assignments(spec.assignments, range(len(spec.assignments))), configs
        partitions = default_partitions if spec.num_partitions == -1 else spec.num_partitions
        rf = default_rf if spec.replication_factor == -1 else spec.replication_factor
        if partitions <= 0:
            raise MetadataError(ErrorCode.invalid_partitions, "Number of partitions must be larger than 0.")
        if rf <= 0:
            raise MetadataError(
                ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0."
            )
        brokers = list(image.brokers)
        if rf > len(brokers):
            raise MetadataError(
                ErrorCode.invalid_replication_factor,
                f"Replication factor: {rf} larger than available brokers: {len(brokers)}.",
            )
        racks = {b.broker_id: b.rack for b in image.brokers.values()}
        return assign_replicas(racks, range(partitions), rf), configs

    def _check_assignments(
        self, assignments: Mapping[int, Sequence[int]], expected: range
    ) -> dict[int, list[int]]:
        brokers = set(self.store.image().brokers)
        if sorted(assignments) != list(expected):
            raise MetadataError(
                ErrorCode.invalid_replica_assignment,
                f"Partitions should be a consecutive 0-based integer sequence from {expected}",
            )
        sizes = {len(r) for r in assignments.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise MetadataError(
                ErrorCode.invalid_replica_assignment, "All partitions should have the same number of replicas"
            )
        for p, replicas in assignments.items():
            if len(set(replicas)) != len(replicas):
                raise MetadataError(
                    ErrorCode.invalid_replica_assignment, f"Duplicate brokers in partition {p}'s replicas"
                )
            unknown = set(replicas) - brokers
            if unknown:
                raise MetadataError(
                    ErrorCode.invalid_replica_assignment,
                    f"Unknown broker(s) {sorted(unknown)} in partition {p}",
                )
        return {p: list(r) for p, r in assignments.items()}

    # --- budget ---------------------------------------------------------------------------

    def _here(self, placement: Mapping[int, Sequence[int]]) -> list[int]:
        me = self.broker_id
        return [p for p, replicas in placement.items() if me in replicas]

    def check_budget(self, adding: int, *, pending: int = 0, free: int | None = None) -> None:
        """Refuse ``adding`` more partitions here (``pending`` already accepted in the same
        request, ``free`` descriptors left for them) with POLICY_VIOLATION when over the
        partition or descriptor budget."""
        replicas = self.replicas
        image = self.store.image()
        keep = (0 if OFFSETS_TOPIC in image.topics
                else self.config.get_int("offsets.topic.num.partitions"))
        try:
            replicas.budget.check(replicas.hosted_count() + pending, adding, keep_room=keep,
                                  free=free)
        except BudgetExceeded as exc:
            raise MetadataError(ErrorCode.policy_violation, str(exc)) from exc

    def _blueprints(self, name: str, partitions: Iterable[int],
                    configs: Mapping[str, str]) -> list[Blueprint]:
        return [Blueprint((name, p), configs) for p in partitions]

    # --- synchronous creation (auto-creation, internal topics) ------------------------------

    def create(self, spec: TopicSpec, *, internal: bool = False) -> TopicInfo:
        """Create one small topic now (Metadata auto-creation, ``__consumer_offsets``)."""
        assignments, configs = self.plan_create(spec)
        here = self._here(assignments)
        if not internal:
            self.check_budget(len(here))
        builder = self.replicas.builder
        blueprints = self._blueprints(spec.name, here, configs)
        failed = builder.prepare_now(blueprints)
        if failed:
            builder.discard(bp.key for bp in blueprints)
            raise _storage_error(spec.name, failed)
        try:
            topic = self.store.create_topic(spec.name, assignments, configs,
                                                   internal=internal)
        finally:
            builder.discard(bp.key for bp in blueprints)  # what the image did not adopt
        log.info(
            "created topic %s with %d partition(s), replication factor %d",
            spec.name, len(assignments), len(assignments[0]),
        )
        return topic

    # --- CreateTopics ----------------------------------------------------------------------

    async def create_topics(self, specs: Sequence[TopicSpec],
                            validate_only: bool) -> list[CreatePlan]:
        """Validate, budget, build and write a CreateTopics request; one plan per spec."""
        if sum(_declared_records(s) for s in specs) > MAX_RECORDS_PER_USER_OP:
            # refuse before planning: placing 2.7M partitions alone took 400 MiB (fuzzing)
            return [CreatePlan(s, error=MetadataError(ErrorCode.policy_violation, EXCESSIVE_BATCH))
                    for s in specs]
        async with self._lock:
            plans = await self._plan_all(specs)
            valid = [p for p in plans if p.error is None]
            if sum(p.records for p in valid) > MAX_RECORDS_PER_USER_OP:
                for plan in plans:
                    plan.error = MetadataError(ErrorCode.policy_violation, EXCESSIVE_BATCH)
                return plans
            self._budget_all(valid)
            valid = [p for p in valid if p.error is None]
            if validate_only or not valid:
                return plans
            names = {p.spec.name for p in valid}
            self._in_flight |= names
            try:
                await self._write(self.store, valid)
            finally:
                self._in_flight -= names
            _log_created([p for p in valid if p.error is None])
            return plans

    async def _plan_all(self, specs: Sequence[TopicSpec]) -> list[CreatePlan]:
        slicer = Slicer()
        plans = []
        for spec in specs:
            plan = CreatePlan(spec)
            try:
                plan.assignments, plan.configs = self.plan_create(spec)
            except MetadataError as exc:
                plan.error = exc
            plans.append(plan)
            await slicer.tick()
        return plans

    def _budget_all(self, plans: Sequence[CreatePlan]) -> None:
        """Accept topics in request order while they fit; refuse the rest."""
        accepted = 0
        free = self.replicas.budget.free_descriptors()
        for plan in plans:
            adding = len(self._here(plan.assignments))
            try:
                self.check_budget(adding, pending=accepted,
                                  free=None if free is None else free - accepted)
            except MetadataError as exc:
                plan.error = exc
                continue
            accepted += adding

    async def _write(self, store: Any, plans: Sequence[CreatePlan]) -> None:
        """One store write for the whole batch where the store can (the local file);
        otherwise topic by topic on a worker thread (ZooKeeper round trips)."""
        batch = getattr(store, "create_topics", None)
        if batch is not None:
            results = batch([NewTopic(p.spec.name, p.assignments, p.configs) for p in plans])
            for plan in plans:
                _settle(plan, results[plan.spec.name])
            return
        for plan in plans:
            try:
                topic = await asyncio.to_thread(store.create_topic, plan.spec.name,
                                                plan.assignments, plan.configs)
            except MetadataError as exc:
                topic = exc
            _settle(plan, topic)

    def auto_create(self, name: str) -> TopicInfo:
        return self.create(TopicSpec(name, -1, -1, {}, {}))

    def plan_partitions(
        self, name: str, count: int, assignments: Sequence[Sequence[int]] | None
    ) -> dict[int, list[int]]:
        image = self.store.image()
        topic = image.topics.get(name)
        if topic is None:
            raise MetadataError(ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist")
        current = topic.partition_count
        if count < current:
            raise MetadataError(
                ErrorCode.invalid_partitions,
                f"Topic currently has {current} partitions, which is higher than the requested {count}.",
            )
        if count == current:
            raise MetadataError(ErrorCode.invalid_partitions, f"Topic already has {current} partitions.")
        new = range(current, count)
        if len(new) > MAX_RECORDS_PER_USER_OP:
            raise MetadataError(ErrorCode.policy_violation, EXCESSIVE_BATCH)
        rf = len(topic.partitions[0].replicas)
        if assignments:
            if len(assignments) != len(new):
                raise MetadataError(
                    ErrorCode.invalid_replica_assignment,
                    f"Increasing the number of partitions by {len(new)} but {len(assignments)} "
                    "assignments provided.",
                )
            return self._check_assignments(dict(zip(new, assignments, strict=True)), new)
        return assign_replicas({b.broker_id: b.rack for b in image.brokers.values()}, new, rf)

    async def add_partitions(self, name: str, count: int,
                             assignments: Sequence[Sequence[int]] | None,
                             validate_only: bool) -> None:
        """CreatePartitions for one topic: plan, budget, then write; the replica manager
        builds the new logs when the image names them."""
        async with self._lock:
            placement = self.plan_partitions(name, count, assignments)
            self.check_budget(len(self._here(placement)))
            if validate_only:
                return
            await self._call_store("add_partitions", name, placement)
        log.info("topic %s now has %d partition(s)", name, max(placement) + 1)

    async def _call_store(self, method: str, *args: Any) -> Any:
        """The local store writes on the loop (its listeners must run there); a remote
        store's round trips run on a worker thread."""
        store = self.store
        if hasattr(store, "create_topics"):
            return getattr(store, method)(*args)
        return await asyncio.to_thread(getattr(store, method), *args)

    # --- DeleteTopics ----------------------------------------------------------------------

    async def delete_topics(self, names: Sequence[str]) -> dict[str, MetadataError | None]:
        """Delete topics in one metadata write where the store can; files go later."""
        if not self.config.get_bool("delete.topic.enable"):
            refused = MetadataError(ErrorCode.topic_deletion_disabled, "Topic deletion is disabled.")
            return dict.fromkeys(names, refused)
        async with self._lock:
            store = self.store
            batch = getattr(store, "delete_topics", None)
            if batch is not None:
                results: dict[str, MetadataError | None] = batch(names)
            else:
                results = {}
                for name in names:
                    try:
                        results[name] = await asyncio.to_thread(store.delete_topic, name)
                    except MetadataError as exc:
                        results[name] = exc
        deleted = [n for n in names if results[n] is None]
        if len(deleted) <= LOGGED_ONE_BY_ONE:
            for name in deleted:
                log.info("deleted topic %s", name)
        else:
            log.info("deleted %d topics", len(deleted))
        return results


def _settle(plan: CreatePlan, outcome: TopicInfo | MetadataError) -> None:
    if isinstance(outcome, MetadataError):
        plan.error = outcome
    else:
        plan.topic_id = outcome.topic_id


def _storage_error(name: str, failed: Mapping[Key, OSError]) -> MetadataError:
    key, exc = next(iter(failed.items()))
    return MetadataError(
        ErrorCode.kafka_storage_error,
        f"Cannot create the log of {len(failed)} partition(s) of {name} (first "
        f"{key[0]}-{key[1]}: {exc.strerror or exc}); nothing was written.",
    )


def _log_created(plans: Sequence[CreatePlan]) -> None:
    if len(plans) > LOGGED_ONE_BY_ONE:
        total = sum(len(p.assignments) for p in plans)
        log.info("created %d topics with %d partition(s) in all", len(plans), total)
        return
    for plan in plans:
        log.info("created topic %s with %d partition(s), replication factor %d",
                 plan.spec.name, len(plan.assignments), len(plan.assignments[0]))

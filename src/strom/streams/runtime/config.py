"""`StreamsConfig`: an application's settings, with Kafka Streams' defaults and names.

| setting | Kafka Streams name | default |
|---|---|---|
| application_id | application.id | required: group id, internal topic prefix |
| bootstrap_servers | bootstrap.servers | required |
| state_dir | state.dir | `<tmp>/strom-streams` (the app's stores under `<state_dir>/<application_id>`) |
| commit_interval_ms | commit.interval.ms | 30000 (at-least-once), 100 (exactly-once) |
| processing_guarantee | processing.guarantee | `at_least_once`, or `exactly_once_v2` |
| replication_factor | replication.factor | -1: the broker's default |
| auto_offset_reset | auto.offset.reset (consumer) | `earliest`, as Kafka Streams sets it |
| poll_ms | poll.ms | 100 |
| client_properties | (client prefixes) | librdkafka properties for every client |
| consumer_properties | main.consumer.* | librdkafka properties of the group consumer only |
| metrics_port | (JMX) | None: Prometheus `/metrics` on this port when set |
| repartition_purge_interval_ms | repartition.purge.interval.ms | 30000 (and at close) |
| application_server | application.server | None; `host:port` serves interactive queries |
| task_timeout_ms | task.timeout.ms | 300000: how long a commit retries while brokers are away |
| max_task_idle_ms | max.task.idle.ms | 0: a task waits for an empty input partition with lag |
| num_standby_replicas | num.standby.replicas | 0; > 0: warm copies of other instances' tasks |
| acceptable_recovery_lag | acceptable.recovery.lag | 10000: lag that still counts as caught up |
| max_warmup_replicas | max.warmup.replicas | 2: warm-up replicas placed at a time |
| probing_rebalance_interval_ms | probing.rebalance.interval.ms | 600000: rejoin after warm-ups |
| num_stream_threads | num.stream.threads | 1: stream threads (group members) in this instance |
| skip_bad_records | default.deserialization.exception.handler | False: fail; True: log and continue |
| continue_on_processing_error | processing.exception.handler | False: fail; True: log and continue |
| dead_letter_topic | errors.dead.letter.queue.topic.name | None; bad records go there with the error |
| query_key_parser | - | `str`: turns a key in a query URL into the store's key type |
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strom.streams.serdes import BytesSerde, Serde
from strom.streams.timestamps import FailOnInvalidTimestamp, TimestampExtractor

AT_LEAST_ONCE = "at_least_once"
EXACTLY_ONCE_V2 = "exactly_once_v2"
GUARANTEES = (AT_LEAST_ONCE, EXACTLY_ONCE_V2)


@dataclass
class StreamsConfig:
    application_id: str
    bootstrap_servers: str
    state_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "strom-streams")
    commit_interval_ms: int | None = None  # None: 30000, or 100 under exactly-once
    processing_guarantee: str = AT_LEAST_ONCE
    replication_factor: int = -1
    auto_offset_reset: str = "earliest"
    poll_ms: int = 100
    max_poll_records: int = 1000
    default_key_serde: Serde[Any] = field(default_factory=BytesSerde)
    default_value_serde: Serde[Any] = field(default_factory=BytesSerde)
    timestamp_extractor: TimestampExtractor = field(default_factory=FailOnInvalidTimestamp)
    skip_bad_records: bool = False
    continue_on_processing_error: bool = False
    dead_letter_topic: str | None = None
    client_properties: Mapping[str, Any] = field(default_factory=dict)
    consumer_properties: Mapping[str, Any] = field(default_factory=dict)
    metrics_port: int | None = None
    repartition_purge_interval_ms: int = 30_000
    application_server: str | None = None
    task_timeout_ms: int = 300_000
    max_task_idle_ms: int = 0
    num_standby_replicas: int = 0
    acceptable_recovery_lag: int = 10_000
    max_warmup_replicas: int = 2
    probing_rebalance_interval_ms: int = 600_000
    num_stream_threads: int = 1
    query_key_parser: Callable[[str], Any] = str

    def __post_init__(self) -> None:
        if not self.application_id:
            raise ValueError("application_id is required")
        if self.processing_guarantee not in GUARANTEES:
            raise ValueError(f"processing_guarantee must be one of {GUARANTEES}, "
                             f"not {self.processing_guarantee!r}")
        if self.commit_interval_ms is None:
            self.commit_interval_ms = 100 if self.exactly_once else 30_000
        self.state_dir = Path(self.state_dir)

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == EXACTLY_ONCE_V2

    def group_timing(self) -> tuple[int, int, int]:
        """(session, heartbeat interval, rebalance timeout) in ms: the consumer's
        session.timeout.ms, heartbeat.interval.ms and max.poll.interval.ms."""
        props = self.consumer_properties
        return (int(props.get("session.timeout.ms", 45_000)),
                int(props.get("heartbeat.interval.ms", 3_000)),
                int(props.get("max.poll.interval.ms", 300_000)))

    @property
    def app_state_dir(self) -> Path:
        return self.state_dir / self.application_id

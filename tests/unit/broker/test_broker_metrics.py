"""Broker metrics counters and their Prometheus exposition, without a broker process."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

from kio.schema.errors import ErrorCode
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from strom.broker.observability.metrics import (
    LATENCY_BUCKETS,
    ApiStats,
    BrokerCollector,
    BrokerMetrics,
    count_records,
    response_errors,
)
from strom.cluster.image import MetadataImage, PartitionInfo, TopicInfo
from strom.protocol import apis, records
from strom.protocol.schema import build


def test_count_records_reads_batch_headers_and_ignores_a_torn_tail() -> None:
    one = records.encode_batch([(None, b"a")] * 3, timestamp_ms=0)
    two = records.encode_batch([(b"k", b"b" * 100)] * 5, timestamp_ms=0)
    assert count_records(one) == 3
    assert count_records(one + two) == 8
    assert count_records(memoryview(one + two)) == 8
    assert count_records(one + two[:-1]) == 3
    assert count_records(b"") == 0


def test_response_errors_finds_nested_error_codes() -> None:
    body = build(apis.response_type(0, 9), {"responses": [
        {"name": "t", "partition_responses": [
            {"index": 0, "error_code": ErrorCode.none, "base_offset": 0,
             "log_append_time": -1, "log_start_offset": 0},
            {"index": 1, "error_code": ErrorCode.not_leader_or_follower, "base_offset": -1,
             "log_append_time": -1, "log_start_offset": -1},
        ]}]})
    assert response_errors(body) == [ErrorCode.not_leader_or_follower]
    metrics = BrokerMetrics(0)
    metrics.request_done(0, 0.002, body)
    metrics.request_done(0, 0.3, None)  # acks=0: no response
    metrics.request_failed(0, 0.001)
    stats = metrics.apis[0]
    assert stats.requests == 3
    assert stats.errors == {"NOT_LEADER_OR_FOLLOWER": 1, "UNKNOWN_SERVER_ERROR": 1}


def test_latency_buckets_are_upper_bounds() -> None:
    stats = ApiStats()
    for seconds in (0.0005, 0.0006, 10.0, 11.0):
        stats.observe(seconds)
    assert stats.buckets[0] == 1  # 0.0005 <= le="0.0005"
    assert stats.buckets[1] == 1
    assert stats.buckets[len(LATENCY_BUCKETS) - 1] == 1  # 10.0
    assert stats.buckets[-1] == 1  # above every bound: +Inf only


def _image(isr: tuple[int, ...], leader: int = 1, controller: int = 1) -> MetadataImage:
    partition = PartitionInfo(0, leader, 3, (1, 2, 3), isr)
    topic = TopicInfo("t", uuid.UUID(int=1), {0: partition})
    return MetadataImage("cluster", controller, {}, {"t": topic})


def test_isr_changes_and_leader_changes_from_consecutive_images() -> None:
    metrics = BrokerMetrics(1)
    metrics.topic("t").bytes_in += 5
    metrics.topic("gone").bytes_in += 5
    metrics.on_image(_image((1, 2, 3)))
    assert "gone" not in metrics.topics and metrics.topics["t"].bytes_in == 5
    metrics.on_image(_image((1, 2)))
    metrics.on_image(_image((1,)))
    metrics.on_image(_image((1, 3)))
    assert (metrics.isr_shrinks, metrics.isr_expands) == (2, 1)
    metrics.on_image(_image((2, 3), leader=2))  # led elsewhere now: not ours to count
    assert (metrics.isr_shrinks, metrics.isr_expands, metrics.leader_changes) == (2, 1, 1)


class _Store:
    def __init__(self, image: MetadataImage) -> None:
        self._image = image

    def image(self) -> MetadataImage:
        return self._image


class _Groups:
    class coordinator:  # mimics Broker.groups.coordinator
        groups: dict[str, object] = {}
        skipped_records: dict[tuple[int, str], int] = {}
        failed: dict[int, str] = {}


class _Replicas:
    partitions: dict[tuple[str, int], object] = {}

    def get(self, topic: str, partition: int) -> None:
        return None


class _Logs:  # mimics Broker.logs (LogManager): two log dirs, one taken offline
    log_dirs = [Path("/data/a"), Path("/data/b")]
    offline_dirs = {Path("/data/b"): "append failed: No space left on device"}


class _Cleaning:
    """The log cleaner's state as a scrape reads it: one compacted log cleaned once."""

    def __init__(self) -> None:
        from strom.storage.cleaner_manager import LogCleanState

        self.manager = SimpleNamespace(
            state={("orders", 0): LogCleanState(dirty_ratio=0.25, last_clean_ms=5000,
                                                bytes_cleaned=4096, records_removed=7,
                                                cleans=1)},
            uncleanable={("bad", 1): "CRC"}, last_run_ms=6000)


class _FakeBroker:
    def __init__(self) -> None:
        self.broker_id = 1
        self.cluster_id = "cluster"
        self.metrics = BrokerMetrics(1)
        self.store = _Store(_image((1, 2)))
        self.replicas = _Replicas()
        self.groups = _Groups()
        self.logs = _Logs()
        self.cleaning = _Cleaning()
        self.connections: set[object] = set()
        self.ready = True


def test_exposition_of_a_broker() -> None:
    broker = _FakeBroker()
    broker.metrics.topic("t").bytes_in = 123
    broker.metrics.request_done(3, 0.001, None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(broker))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert 'strom_topic_bytes_in_total{topic="t"} 123.0' in text
    assert 'strom_requests_total{api="Metadata"} 1.0' in text
    assert 'strom_request_duration_seconds_bucket{api="Metadata",le="0.001"} 1.0' in text
    assert "strom_under_replicated_partitions 1.0" in text
    assert "strom_leader_partitions 1.0" in text
    assert "strom_active_controller 1.0" in text
    assert 'strom_broker_info{broker_id="1",cluster_id="cluster"} 1.0' in text
    assert 'strom_log_dir_offline{log_dir="/data/a"} 0.0' in text
    assert 'strom_log_dir_offline{log_dir="/data/b"} 1.0' in text
    assert "strom_storage_errors_total" in text and "strom_corrupt_batches_total" in text
    assert 'strom_log_cleaner_dirty_ratio{partition="0",topic="orders"} 0.25' in text
    assert 'strom_log_cleaner_removed_records_total{partition="0",topic="orders"} 7.0' in text
    assert "strom_log_cleaner_max_dirty_percent 25.0" in text
    assert "strom_log_cleaner_uncleanable_partitions 1.0" in text

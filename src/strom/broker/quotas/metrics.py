"""Client quota metrics for Prometheus, per quota type and sensor (Kafka's `byte-rate`
and `throttle-time` per user/client-id of its Produce and Fetch quota managers).

Computed at scrape time from the sensors; a sensor exists only while quotas of its type
are configured, so a broker without quotas exports the families empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strom.broker.quotas import ClientQuotas


def collect(quotas: ClientQuotas | None) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    labels = ["quota_type", "user", "client_id"]
    rate = GaugeMetricFamily("strom_client_quota_byte_rate", "Bytes per second over the "
                             "quota window, per user/client-id sensor.", labels=labels)
    limit = GaugeMetricFamily("strom_client_quota_limit_bytes_per_second", "The quota that "
                              "applies to the sensor.", labels=labels)
    sent = CounterMetricFamily("strom_client_quota_bytes", "Bytes recorded against the "
                               "quota (produce requests, consumer fetch responses).",
                               labels=labels)
    throttle = CounterMetricFamily("strom_client_quota_throttle_time_ms", "Throttle time "
                                   "given to the sensor's clients (connections muted).",
                                   labels=labels)
    throttled = CounterMetricFamily("strom_client_quota_throttled_requests", "Requests "
                                    "answered with a throttle time.", labels=labels)
    if quotas is not None:
        now_ms = quotas.now_ms()
        for quota_type, manager in (("Produce", quotas.produce), ("Fetch", quotas.fetch)):
            for (user, client_id), sensor in sorted(manager.sensors.items()):
                key = [quota_type, user, client_id]
                rate.add_metric(key, sensor.rate.measure(now_ms))
                if sensor.bound is not None:
                    limit.add_metric(key, sensor.bound)
                sent.add_metric(key, sensor.bytes_total)
                throttle.add_metric(key, sensor.throttle_ms_total)
                throttled.add_metric(key, sensor.throttled)
    yield from (rate, limit, sent, throttle, throttled)

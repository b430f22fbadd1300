"""DescribeLogDirs (35): this broker's log dirs and the size of each partition in them.

`Admin.describeLogDirs` asks it (kafka-log-dirs.sh, and the admin UIs that show topic
sizes); Kafka answers from every broker for the replicas it hosts. Each configured log
dir is listed with its partitions (all topics, or those asked for), their size in bytes
and offset lag (how far the log end is behind the high watermark, 0 on a replica in
step), and since v4 the volume's total and usable bytes. A log dir taken offline by an
I/O error is answered with KAFKA_STORAGE_ERROR and nothing else, as in Kafka.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey

Key = tuple[str, int]


def _wanted(ctx: RequestContext, request: Any) -> Iterator[Key]:
    """The partitions asked for (None: every one) that have a replica on this broker."""
    image = ctx.metadata.image()
    if request.topics is None:
        asked: dict[str, Any] = {name: None for name in image.topics}
    else:
        asked = {t.topic: set(t.partitions) for t in request.topics}
    for name, partitions in asked.items():
        topic = image.topics.get(name)
        if topic is None:
            continue
        for index, info in sorted(topic.partitions.items()):
            if ctx.broker_id in info.replicas and (partitions is None or index in partitions):
                yield name, index


def _volume(path: Path) -> tuple[int, int]:
    try:
        stat = os.statvfs(path)
    except OSError:
        return -1, -1
    return stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize


def _describe(ctx: RequestContext, request: Any) -> list[dict[str, Any]]:
    offline = {os.path.abspath(str(d)) for d in ctx.partitions.offline_dirs}
    dirs: dict[str, dict[str, list[dict[str, Any]]]] = {
        os.path.abspath(d): {} for d in ctx.config.log_dirs}
    for name, index in _wanted(ctx, request):
        partition = ctx.partitions.get(name, index)
        if partition is None:
            continue
        where = os.path.abspath(partition.log.log_dir)
        lag = max(partition.high_watermark - partition.log_end_offset, 0)
        dirs.setdefault(where, {}).setdefault(name, []).append(
            {"partition_index": index, "partition_size": partition.log.size_bytes,
             "offset_lag": lag, "is_future_key": False})
    results = []
    for path, topics in dirs.items():
        if path in offline:
            results.append({"error_code": ErrorCode.kafka_storage_error, "log_dir": path,
                            "topics": [], "total_bytes": -1, "usable_bytes": -1})
            continue
        total, usable = _volume(Path(path))
        results.append({"error_code": NONE, "log_dir": path, "total_bytes": total,
                        "usable_bytes": usable,
                        "topics": [{"name": n, "partitions": p} for n, p in sorted(topics.items())]})
    return results


@dispatch.handles(ApiKey.DESCRIBE_LOG_DIRS, 1, 5)
async def describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    return ctx.respond(throttle_time=0, error_code=NONE, results=_describe(ctx, request))

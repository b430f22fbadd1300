"""Partition logs on disk, in Apache Kafka's layout: segments, indexes, checkpoints.

Plain synchronous Python over files: no asyncio, no network, nothing of ours but the
RecordBatch codec. The broker drives it from its event loop (appends, reads) and a worker
thread (fsync); see ``log.py`` for the threading contract.

    LogManager   every partition of a broker across its log.dirs
    Log          one partition's segments: append, read, truncate, retention, flush, recovery
    PartitionLog a Log with its leader-epoch cache and producer state, kept consistent
                 (Kafka's UnifiedLog; ``partition_log.py``)
    LogConfig    per-topic settings under Kafka's names
"""

from strom.storage.config import LogConfig, now_ms
from strom.storage.errors import (
    CorruptCheckpoint,
    CorruptLog,
    InconsistentLogDirs,
    InvalidAppend,
    KafkaStorageError,
    LogDirLocked,
    OffsetOutOfRange,
    StorageError,
)
from strom.storage.log import AppendInfo, Log, OffsetAndTimestamp, ReadResult, TimestampAndOffset
from strom.storage.manager import LogManager

__all__ = [
    "AppendInfo",
    "CorruptCheckpoint",
    "CorruptLog",
    "InconsistentLogDirs",
    "InvalidAppend",
    "KafkaStorageError",
    "Log",
    "LogConfig",
    "LogDirLocked",
    "LogManager",
    "OffsetAndTimestamp",
    "OffsetOutOfRange",
    "ReadResult",
    "StorageError",
    "TimestampAndOffset",
    "now_ms",
]

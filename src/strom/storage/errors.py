"""Exceptions raised by the storage layer.

They carry Kafka's vocabulary (offset out of range, corrupt record, ...) so the broker can
map each one to a Kafka error code without looking inside storage.
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base class of every error storage raises on purpose."""


class OffsetOutOfRange(StorageError):
    """A read, truncation or DeleteRecords named an offset outside [log start, log end]."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log range "
            f"[{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class InvalidAppend(StorageError):
    """An append was refused: malformed payload or offsets not after the log end."""


class CorruptLog(StorageError):
    """Bytes below the log end that should be a valid batch are not (disk damage).

    Carries the file and byte position so the broker can log where to look and answer
    CORRUPT_MESSAGE, as Kafka does for a stored batch it cannot read.
    """

    def __init__(self, path: Path, position: int, reason: str) -> None:
        super().__init__(f"{path}: {reason} at byte {position}")
        self.path = path
        self.position = position
        self.reason = reason


class KafkaStorageError(StorageError):
    """An I/O error (ENOSPC, EIO, ...) took the log's directory offline.

    Maps to KAFKA_STORAGE_ERROR (56). As in Kafka's JBOD handling, the directory stays
    offline until the broker restarts: every partition in it answers this error, while
    other directories keep serving.
    """

    def __init__(self, log_dir: Path, message: str) -> None:
        super().__init__(message)
        self.log_dir = log_dir


class CorruptCheckpoint(StorageError):
    """A checkpoint or properties file is not in Kafka's format."""


class InconsistentLogDirs(StorageError):
    """meta.properties disagree with the broker (other broker id, other cluster)."""


class LogDirLocked(StorageError):
    """Another process holds the log directory's ``.lock`` (two brokers, one dir)."""

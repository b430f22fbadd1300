"""Every partition log of one broker, across its ``log.dirs``.

The manager owns what is per log directory rather than per partition: the ``.lock``
that keeps two brokers off one directory, ``meta.properties`` (broker and cluster id, so
a restarted broker keeps its cluster), the three offset checkpoints, and the
``.kafka_cleanshutdown`` marker that lets the next start skip recovery. New partitions go
to the directory holding the fewest, as Kafka places them.

Periodic work is exposed as plain methods the broker schedules (``flush_dirty``,
``checkpoint``, ``enforce_retention``); the manager starts no threads and reads no clock
except the one it is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from strom.storage.checkpoint import (
    CLEAN_SHUTDOWN_MARKER,
    LOCK_FILE,
    LOG_START_CHECKPOINT,
    META_PROPERTIES,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_CHECKPOINT,
    TopicPartition,
    read_offset_checkpoint,
    read_properties,
    write_meta_properties,
    write_offset_checkpoint,
)
from strom.storage.config import LogConfig, now_ms
from strom.storage.errors import (
    CorruptCheckpoint,
    InconsistentLogDirs,
    KafkaStorageError,
    LogDirLocked,
)
from strom.storage.files import (
    DELETE_DIR_SUFFIX,
    atomic_write,
    fsync_dir,
    parse_partition_dir,
    partition_dir_name,
)
from strom.storage.log import Clock, Log

log = logging.getLogger(__name__)

_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class LogManager:
    """Opens, creates, checkpoints and closes the logs under ``log_dirs``."""

    def __init__(
        self,
        log_dirs: Sequence[Path | str],
        *,
        clock: Clock = now_ms,
        broker_id: int,
        cluster_id: str | None,
    ) -> None:
        if not log_dirs:
            raise ValueError("at least one log dir is needed")
        self.log_dirs = [Path(d) for d in log_dirs]
        self.broker_id = broker_id
        self._clock = clock
        self._lock_fds: list[int] = []
        self.stored_cluster_id: str | None = None  # from meta.properties, if any dir had one
        self._unstamped: list[Path] = []
        try:
            for d in self.log_dirs:
                d.mkdir(parents=True, exist_ok=True)
                self._lock_dir(d)
            self.cluster_id = self._init_meta(cluster_id)
        except BaseException:
            self._unlock()
            raise
        self._logs: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        self._high_watermarks: dict[TopicPartition, int] = {}
        self.offline_dirs: dict[Path, str] = {}  # failed log dirs (JBOD), until a restart
        self._closed = False

    # -- startup ----------------------------------------------------------------------

    def _lock_dir(self, d: Path) -> None:
        fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise LogDirLocked(f"{d} is in use by another process") from exc
        self._lock_fds.append(fd)

    def _init_meta(self, cluster_id: str | None) -> str | None:
        """Check each dir's meta.properties against us; write the missing ones. With no
        `cluster_id` (ZooKeeper mode: the id is ZooKeeper's, known only once connected)
        nothing is written until `adopt_cluster_id`."""
        found: dict[Path, str] = {}
        for d in self.log_dirs:
            props = read_properties(d / META_PROPERTIES)
            if props is None:
                continue
            broker = props.get("broker.id", props.get("node.id"))
            if broker is not None and int(broker) != self.broker_id:
                raise InconsistentLogDirs(
                    f"{d} belongs to broker {broker}, not to broker {self.broker_id}"
                )
            if props.get("cluster.id"):
                found[d] = props["cluster.id"]
        ids = set(found.values())
        if len(ids) > 1:
            raise InconsistentLogDirs(f"log dirs belong to different clusters: {sorted(ids)}")
        self.stored_cluster_id = ids.pop() if ids else None
        self._unstamped = [d for d in self.log_dirs if d not in found]
        chosen = self.stored_cluster_id or cluster_id
        if chosen is not None:
            self.adopt_cluster_id(chosen)
        return chosen

    def adopt_cluster_id(self, cluster_id: str) -> None:
        """Write meta.properties with `cluster_id` in every dir that has none. The caller
        has checked it against `stored_cluster_id`."""
        for d in self._unstamped:
            write_meta_properties(d / META_PROPERTIES, self.broker_id, cluster_id)
        self._unstamped = []
        self.cluster_id = cluster_id

    def load_all(self, config_for: Callable[[str], LogConfig]) -> dict[TopicPartition, Log]:
        """Open every partition directory; recover those not closed cleanly."""
        for d in self.log_dirs:
            marker = d / CLEAN_SHUTDOWN_MARKER
            clean = marker.exists()
            recovery_points = _read_checkpoint(d / RECOVERY_POINT_CHECKPOINT)
            log_starts = _read_checkpoint(d / LOG_START_CHECKPOINT)
            high_watermarks = _read_checkpoint(d / REPLICATION_CHECKPOINT)
            for entry in sorted(os.scandir(d), key=lambda e: e.name):
                if not entry.is_dir():
                    continue
                if entry.name.endswith(DELETE_DIR_SUFFIX):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    continue
                key = parse_partition_dir(entry.name)
                if key is None:
                    continue
                if key in self._logs:
                    raise InconsistentLogDirs(
                        f"{key[0]}-{key[1]} is in both {self._dir_of[key]} and {d}"
                    )
                self._logs[key] = Log.open(
                    Path(entry.path),
                    config_for(key[0]),
                    clock=self._clock,
                    recovery_point=recovery_points.get(key, 0),
                    log_start_offset=log_starts.get(key, 0),
                    clean_shutdown=clean,
                )
                self._logs[key].on_io_error = self._log_failed
                self._dir_of[key] = d
                if key in high_watermarks:
                    self._high_watermarks[key] = high_watermarks[key]
            if clean:
                marker.unlink()
                fsync_dir(d)
        self.checkpoint()
        return dict(self._logs)

    @property
    def high_watermarks(self) -> dict[TopicPartition, int]:
        """The last checkpointed high watermarks, to seed the partitions at startup."""
        return dict(self._high_watermarks)

    # -- logs -------------------------------------------------------------------------

    @property
    def logs(self) -> dict[TopicPartition, Log]:
        return dict(self._logs)

    def get(self, topic: str, partition: int) -> Log | None:
        return self._logs.get((topic, partition))

    def dir_of(self, topic: str, partition: int) -> Path | None:
        return self._dir_of.get((topic, partition))

    def get_or_create(self, topic: str, partition: int, config: LogConfig) -> Log:
        key = (topic, partition)
        existing = self._logs.get(key)
        if existing is not None:
            return existing
        if not _LEGAL_TOPIC.match(topic) or topic in (".", "..") or partition < 0:
            raise ValueError(f"illegal topic partition {topic!r} {partition}")
        if len(self.log_dirs) == 1:
            # one dir: nothing to balance, and counting every partition per create made
            # creating N partitions O(N^2) (10,000 took ~40 s)
            d = self.log_dirs[0]
        else:
            counts = {d: 0 for d in self.log_dirs}
            for d in self._dir_of.values():
                counts[d] += 1
            online = [c for c in self.log_dirs if c not in self.offline_dirs] or self.log_dirs
            d = min(online, key=lambda candidate: counts[candidate])
        if d in self.offline_dirs:
            raise KafkaStorageError(d, f"log dir {d} is offline ({self.offline_dirs[d]})")
        try:
            created = Log.open(d / partition_dir_name(topic, partition), config,
                               clock=self._clock)
            fsync_dir(d)
        except OSError as exc:
            self.fail_dir(d, f"creating {topic}-{partition} failed: {exc.strerror or exc}")
            raise KafkaStorageError(d, f"log dir {d} is offline ({exc})") from exc
        created.on_io_error = self._log_failed
        self._logs[key] = created
        self._dir_of[key] = d
        return created

    def delete_log(self, topic: str, partition: int) -> None:
        """Remove a partition's directory and forget its checkpoint entries."""
        key = (topic, partition)
        removed = self._logs.pop(key, None)
        if removed is None:
            return
        d = self._dir_of.pop(key)
        self._high_watermarks.pop(key, None)
        removed.delete()
        # Stale entries would apply to a topic re-created under the same name.
        self._checkpoint_dir(d)

    # -- log dir failures ---------------------------------------------------------------

    def _log_failed(self, failed: Log, exc: OSError) -> None:
        d = self._dir_of.get((failed.topic, failed.partition), failed.log_dir)
        self.fail_dir(d, failed.offline or str(exc))

    def fail_dir(self, d: Path, reason: str) -> None:
        """Take a log dir offline, as Kafka's LogDirFailureChannel: every partition in it
        answers KAFKA_STORAGE_ERROR, the other dirs keep serving, nothing in it is
        written again (no checkpoint, no clean-shutdown marker: the next start recovers
        it). Logged once, at ERROR."""
        if d in self.offline_dirs:
            return
        self.offline_dirs[d] = reason
        hosted = [lg for key, lg in self._logs.items() if self._dir_of.get(key) == d]
        log.error("log dir %s is offline: %s; its %d partition(s) answer KAFKA_STORAGE_ERROR "
                  "until the broker restarts", d, reason, len(hosted))
        for lg in hosted:
            lg.take_offline(f"log dir offline: {reason}")

    # -- periodic work ----------------------------------------------------------------

    def checkpoint(self, high_watermarks: Mapping[TopicPartition, int] | None = None) -> None:
        """Write the three offset checkpoints of every dir. ``high_watermarks``, when given,
        replaces the remembered ones (a partition missing from it is dropped)."""
        if high_watermarks is not None:
            self._high_watermarks = dict(high_watermarks)
        for d in self.log_dirs:
            if d in self.offline_dirs:
                continue
            try:
                self._checkpoint_dir(d)
            except OSError as exc:
                self.fail_dir(d, f"writing checkpoints failed: {exc.strerror or exc}")

    def _checkpoint_dir(self, d: Path) -> None:
        logs = [(key, lg) for key, lg in list(self._logs.items()) if self._dir_of.get(key) == d]
        hws = self._high_watermarks
        write_offset_checkpoint(
            d / RECOVERY_POINT_CHECKPOINT, {key: lg.recovery_point for key, lg in logs}
        )
        write_offset_checkpoint(
            d / LOG_START_CHECKPOINT, {key: lg.log_start_offset for key, lg in logs}
        )
        write_offset_checkpoint(
            d / REPLICATION_CHECKPOINT, {key: hws[key] for key, _ in logs if key in hws}
        )

    def flush_dirty(self, now_ms: int) -> None:
        """fsync logs due by flush.ms, and rolled segments not yet fsynced.

        The second rule is Kafka's flush-on-roll: it keeps the recovery point at most one
        segment behind, so crash recovery rescans only the active segment.
        """
        for lg in list(self._logs.values()):
            active_base = lg.active_segment.base_offset
            with contextlib.suppress(KafkaStorageError):  # the log reported it, went offline
                if now_ms - lg.last_flush_ms >= lg.config.flush_ms:
                    lg.flush()
                elif lg.recovery_point < active_base:
                    lg.flush(up_to=active_base)

    def enforce_retention(
        self, now_ms: int, high_watermarks: Mapping[TopicPartition, int] | None = None
    ) -> int:
        """Apply retention to every log; return the number of segments deleted."""
        deleted = 0
        for key, lg in list(self._logs.items()):
            hw = None if high_watermarks is None else high_watermarks.get(key)
            if lg.offline is None:
                with contextlib.suppress(KafkaStorageError):
                    deleted += lg.enforce_retention(now_ms, hw)
        return deleted

    def close(self) -> None:
        """Flush and close every log, checkpoint, and mark each dir cleanly shut down."""
        if self._closed:
            return
        for lg in list(self._logs.values()):
            lg.close()
        self.checkpoint()
        for d in self.log_dirs:
            if d not in self.offline_dirs:
                atomic_write(d / CLEAN_SHUTDOWN_MARKER, b"")
        self._unlock()
        self._closed = True

    def _unlock(self) -> None:
        for fd in self._lock_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._lock_fds.clear()


def _read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """A garbled checkpoint is treated as absent: recovery from 0 is slow but safe."""
    try:
        return read_offset_checkpoint(path)
    except CorruptCheckpoint as exc:
        log.warning("ignoring %s", exc)
        return {}

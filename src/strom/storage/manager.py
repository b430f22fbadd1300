"""Every partition log of one broker, across its ``log.dirs``.

The manager owns what is per log directory rather than per partition: the ``.lock``
that keeps two brokers off one directory, ``meta.properties`` (broker and cluster id, so
a restarted broker keeps its cluster), the three offset checkpoints, and the
``.kafka_cleanshutdown`` marker that lets the next start skip recovery. New partitions go
to the directory holding the fewest, as Kafka places them.

Periodic work is exposed as plain methods the broker schedules (``flush_dirty``,
``checkpoint``, ``enforce_retention``); the manager starts no threads and reads no clock
except the one it is given. ``flush_dirty`` and ``checkpoint`` may run in a worker thread
while the event loop appends (the broker runs them there so that their fsyncs never
stall it); checkpoints written from two threads are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
_OFFLINE_LOGGED = 20  # offline partitions named one by one at start; then a count


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
        # partitions whose log could not be opened or created (no file descriptors)
        self.offline: dict[TopicPartition, str] = {}
        # their checkpointed offsets, written back until they open again (a lost log
        # start offset would bring records deleted by DeleteRecords back)
        self._offline_offsets: dict[TopicPartition, tuple[Path, int, int, int | None]] = {}
        self.offline_dirs: dict[Path, str] = {}  # failed log dirs (JBOD), until a restart
        self._checkpoint_lock = threading.Lock()  # one writer of the checkpoint files
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

    def load_all(
        self, config_for: Callable[[str], LogConfig], *, reserve_fds: int = 0
    ) -> dict[TopicPartition, Log]:
        """Open every partition directory; recover those not closed cleanly.

        ``reserve_fds`` descriptors are held while the logs open, so that running out of
        descriptors half way still leaves that many to serve clients with: a log that
        cannot be opened for want of descriptors goes to ``offline`` (logged at ERROR)
        instead of failing the start. Internal topics (``__`` names) open first.
        """
        with _held_descriptors(reserve_fds):
            clean = [d for d in self.log_dirs if self._load_dir(d, config_for)]
        for d in clean:  # outside the reserve: the fsync needs a descriptor
            (d / CLEAN_SHUTDOWN_MARKER).unlink()
            fsync_dir(d)
        self._report_offline()
        self.checkpoint()
        return dict(self._logs)

    def _load_dir(self, d: Path, config_for: Callable[[str], LogConfig]) -> bool:
        """Open the logs of one dir; True if it was shut down cleanly."""
        clean = (d / CLEAN_SHUTDOWN_MARKER).exists()
        recovery_points = _read_checkpoint(d / RECOVERY_POINT_CHECKPOINT)
        log_starts = _read_checkpoint(d / LOG_START_CHECKPOINT)
        high_watermarks = _read_checkpoint(d / REPLICATION_CHECKPOINT)
        for entry in sorted(os.scandir(d), key=_load_order):
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
            offsets = (recovery_points.get(key, 0), log_starts.get(key, 0),
                       high_watermarks.get(key))
            opened = self._open_at_load(key, Path(entry.path), config_for(key[0]), offsets, clean)
            if opened is None:
                self._offline_offsets[key] = (d, *offsets)
                continue
            opened.on_io_error = self._log_failed
            self._logs[key] = opened
            self._dir_of[key] = d
            if key in high_watermarks:
                self._high_watermarks[key] = high_watermarks[key]
        return clean

    def _open_at_load(self, key: TopicPartition, path: Path, config: LogConfig,
                      offsets: tuple[int, int, int | None], clean: bool) -> Log | None:
        recovery_point, log_start = offsets[:2]
        if path.parent in self.offline_dirs:  # an earlier log of this dir failed to load
            self.offline[key] = f"log dir {path.parent} is offline"
            return None
        try:
            return Log.open(path, config, clock=self._clock, recovery_point=recovery_point,
                            log_start_offset=log_start, clean_shutdown=clean)
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:  # EIO and the like: the dir failed
                self.fail_dir(path.parent, f"loading {path.name} failed: {exc.strerror or exc}")
            self.offline[key] = f"cannot open {path}: {exc.strerror}"
            return None

    def _report_offline(self) -> None:
        for key, reason in list(self.offline.items())[:_OFFLINE_LOGGED]:
            log.error("partition %s-%d is offline: %s", *key, reason)
        if len(self.offline) > _OFFLINE_LOGGED:
            log.error("%d partitions in all are offline for want of file descriptors; raise "
                      "`ulimit -n` (the open file limit) and restart", len(self.offline))

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
        d = self.place([key])[key]
        if d in self.offline_dirs:
            raise KafkaStorageError(d, f"log dir {d} is offline ({self.offline_dirs[d]})")
        try:
            created = self.open_new(d, topic, partition, config)
            fsync_dir(d)
        except OSError as exc:
            if exc.errno in OUT_OF_DESCRIPTORS:
                raise
            self.fail_dir(d, f"creating {topic}-{partition} failed: {exc.strerror or exc}")
            raise KafkaStorageError(d, f"log dir {d} is offline ({exc})") from exc
        self.adopt(key, created, d)
        return created

    # -- creation in batches, off the event loop --------------------------------------

    def place(self, keys: Sequence[TopicPartition]) -> dict[TopicPartition, Path]:
        """A log dir for each new partition, the emptiest first (Kafka's placement)."""
        for topic, partition in keys:
            if not _LEGAL_TOPIC.match(topic) or topic in (".", "..") or partition < 0:
                raise ValueError(f"illegal topic partition {topic!r} {partition}")
        if len(self.log_dirs) == 1:
            # one dir: nothing to balance, and counting every partition per create made
            # creating N partitions O(N^2) (10,000 took ~40 s)
            return dict.fromkeys(keys, self.log_dirs[0])
        counts = {d: 0 for d in self.log_dirs}
        for d in self._dir_of.values():
            counts[d] += 1
        placed = {}
        online = [d for d in self.log_dirs if d not in self.offline_dirs] or self.log_dirs
        for key in keys:
            d = min(online, key=lambda candidate: counts[candidate])
            counts[d] += 1
            placed[key] = d
        return placed

    def open_new(self, d: Path, topic: str, partition: int, config: LogConfig) -> Log:
        """Create (or open) one partition's log in ``d``; touches nothing shared, so
        worker threads may run it. The caller fsyncs ``d`` once per batch and then
        registers the log with ``adopt``."""
        return Log.open(d / partition_dir_name(topic, partition), config, clock=self._clock)

    def adopt(self, key: TopicPartition, created: Log, d: Path) -> None:
        created.on_io_error = self._log_failed
        self._logs[key] = created
        self._dir_of[key] = d
        self.offline.pop(key, None)

    def detach(self, topic: str, partition: int) -> Log | None:
        """Forget a partition's log without touching its files; the caller deletes them
        (``Log.delete``) and then checkpoints the dir, so no stale entry outlives it."""
        key = (topic, partition)
        removed = self._logs.pop(key, None)
        if removed is not None:
            self._dir_of.pop(key)
            self._high_watermarks.pop(key, None)
        return removed

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
        with self._checkpoint_lock:
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
        with self._checkpoint_lock:  # the logs are listed under it: none just detached
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
        """Recovery points are read here, not before: each was advanced only after its
        fsync, so the file never claims more than the disk holds."""
        logs = [(key, lg) for key, lg in list(self._logs.items()) if self._dir_of.get(key) == d]
        hws = self._high_watermarks
        offline = [(key, kept) for key, kept in self._offline_offsets.items()
                   if kept[0] == d and key in self.offline]
        write_offset_checkpoint(
            d / RECOVERY_POINT_CHECKPOINT,
            {key: lg.recovery_point for key, lg in logs} | {k: o[1] for k, o in offline},
        )
        write_offset_checkpoint(
            d / LOG_START_CHECKPOINT,
            {key: lg.log_start_offset for key, lg in logs} | {k: o[2] for k, o in offline},
        )
        write_offset_checkpoint(
            d / REPLICATION_CHECKPOINT,
            {key: hws[key] for key, _ in logs if key in hws}
            | {k: o[3] for k, o in offline if o[3] is not None},
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


def _load_order(entry: os.DirEntry[str]) -> tuple[bool, str]:
    """Internal topics first: if descriptors run out, the offsets topic is not the loser."""
    return not entry.name.startswith("__"), entry.name


@contextlib.contextmanager
def _held_descriptors(count: int) -> Iterator[None]:
    """Hold ``count`` descriptors (on /dev/null) for the duration, then free them."""
    held: list[int] = []
    try:
        for _ in range(count):
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        yield
    finally:
        for fd in held:
            os.close(fd)


def _read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """A garbled checkpoint is treated as absent: recovery from 0 is slow but safe."""
    try:
        return read_offset_checkpoint(path)
    except CorruptCheckpoint as exc:
        log.warning("ignoring %s", exc)
        return {}

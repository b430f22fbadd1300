"""Which compacted log the cleaner takes next, where each clean stopped, what it did.

Kafka's LogCleanerManager: a log is due when its dirty ratio reaches
``min.cleanable.dirty.ratio``, when its oldest dirty record waited longer than
``max.compaction.lag.ms``, or (KIP-534) when a tombstone or transaction marker it holds
has passed its delete horizon; the dirtiest due log goes first. Where the last clean of
each log stopped survives restarts in each log dir's ``cleaner-offset-checkpoint``
(Kafka's file and format).

The steps alternate between threads (see ``cleaner``): ``next_job`` and ``install`` on
the thread that owns the logs, ``CleanJob.run`` and ``finish`` in a worker. ``clean_once``
runs them all on the calling thread, for tests and tools.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from strom.storage.checkpoint import TopicPartition, write_offset_checkpoint
from strom.storage.cleaner import (
    CleanerConfig,
    CleanJob,
    CleanPlan,
    Throttler,
    checkpoint_path,
    max_compaction_lag_due,
    plan,
)
from strom.storage.errors import CorruptCheckpoint, CorruptLog, KafkaStorageError
from strom.storage.files import fsync_dir
from strom.storage.manager import LogManager, _read_checkpoint

log = logging.getLogger(__name__)

HighWatermarks = Callable[[TopicPartition], "int | None"]
Producers = Callable[[TopicPartition], Mapping[int, int]]


@dataclass(slots=True)
class LogCleanState:
    """Per log, for metrics and the CLI: how dirty it was last looked at, what cleaning did."""

    dirty_ratio: float = 0.0
    last_clean_ms: int = -1
    bytes_cleaned: int = 0
    records_removed: int = 0
    cleans: int = 0
    horizon_ms: int | None = None  # earliest delete horizon left in the log


class CleanerManager:
    """Cleaning state of every compacted log under a ``LogManager``."""

    def __init__(self, logs: LogManager, config: CleanerConfig) -> None:
        self.logs = logs
        self.config = config
        self.throttle = Throttler(config.io_max_bytes_per_second)
        self.checkpoints: dict[TopicPartition, int] = {}
        for d in logs.log_dirs:
            with contextlib.suppress(CorruptCheckpoint, OSError):
                self.checkpoints.update(_read_checkpoint(checkpoint_path(d)))
        self.state: dict[TopicPartition, LogCleanState] = {}
        self.in_progress: set[TopicPartition] = set()
        # logs whose clean failed (damage, I/O): skipped until a restart, as Kafka does
        self.uncleanable: dict[TopicPartition, str] = {}
        self.bytes_cleaned_total = 0
        self.last_run_ms = -1  # when logs were last looked at (Kafka's time-since-last-run)
        self._lock = threading.Lock()  # checkpoint files: one writer

    def reconfigure(self, config: CleanerConfig) -> None:
        """log.cleaner.* changed at runtime (dynamic broker configs)."""
        self.config = config
        self.throttle.rate = config.io_max_bytes_per_second

    # -- choosing (owner thread) -----------------------------------------------------

    def next_job(
        self,
        now_ms: int,
        high_watermark: HighWatermarks | None = None,
        producers: Producers | None = None,
    ) -> tuple[TopicPartition, CleanJob] | None:
        """The dirtiest due log, marked in progress, with its job; None if none is due."""
        best: tuple[float, TopicPartition, CleanPlan] | None = None
        self.last_run_ms = now_ms
        for key, lg in self.logs.logs.items():
            if (not lg.config.compact or lg.offline is not None or key in self.in_progress
                    or key in self.uncleanable):
                continue
            due = self._due(key, now_ms, high_watermark)
            if due is not None and (best is None or due.dirty_ratio > best[0]):
                best = (due.dirty_ratio, key, due)
        if best is None:
            return None
        _, key, chosen = best
        if producers is not None:
            chosen.producers = dict(producers(key))
        self.in_progress.add(key)
        return key, CleanJob(chosen, self.config, self.throttle)

    def _due(self, key: TopicPartition, now_ms: int,
             high_watermark: HighWatermarks | None) -> CleanPlan | None:
        lg = self.logs.get(*key)
        assert lg is not None
        hw = high_watermark(key) if high_watermark is not None else None
        with contextlib.suppress(KafkaStorageError):
            if max_compaction_lag_due(lg, self.checkpoints.get(key, 0), now_ms):
                lg.maybe_roll_by_time(now_ms + lg.config.segment_ms + 1)
        try:
            candidate = plan(lg, self.checkpoints.get(key), now_ms, high_watermark=hw)
        except (KafkaStorageError, OSError):
            return None
        state = self.state.setdefault(key, LogCleanState())
        state.dirty_ratio = candidate.dirty_ratio
        if not candidate.segments:
            return None
        ratio_due = (candidate.dirty_bytes > 0
                     and candidate.dirty_ratio >= lg.config.min_cleanable_dirty_ratio)
        lag_due = candidate.dirty_bytes > 0 and max_compaction_lag_due(
            lg, candidate.first_dirty, now_ms)
        horizon_due = state.horizon_ms is not None and now_ms >= state.horizon_ms
        return candidate if ratio_due or lag_due or horizon_due else None

    # -- installing (owner thread) ---------------------------------------------------

    def install(self, job: CleanJob) -> bool:
        """Swap every cleaned group in at once; False (all discarded) if the log changed."""
        retired = job.plan.log.replace_segments([(g.cleaned, g.old) for g in job.groups])
        if retired is None:
            job.discard(job.groups)
            return False
        job.retired = retired
        return True

    # -- finishing (worker thread) ---------------------------------------------------

    def finish(self, key: TopicPartition, job: CleanJob, installed: bool) -> None:
        """Make the swap durable, move the checkpoint, record what the clean did."""
        try:
            lg = job.plan.log
            if not installed:
                return
            with contextlib.suppress(OSError):
                for segment in job.retired:
                    segment.delete()
                fsync_dir(lg.dir)
            state = self.state.setdefault(key, LogCleanState())
            state.last_clean_ms = job.plan.now_ms
            state.bytes_cleaned += job.stats.bytes_read
            state.records_removed += job.stats.records_removed
            state.cleans += 1
            state.horizon_ms = job.stats.earliest_horizon_ms
            self.bytes_cleaned_total += job.stats.bytes_read
            self.checkpoints[key] = job.end
            self._write_checkpoint(lg.log_dir)
            log.info("cleaned %s-%d up to offset %d: %d of %d records removed, %d -> %d bytes",
                     *key, job.end, job.stats.records_removed, job.stats.records_read,
                     job.stats.bytes_read, job.stats.bytes_written)
        finally:
            self.in_progress.discard(key)

    def _write_checkpoint(self, log_dir: Path) -> None:
        with self._lock:
            live = {key for key, lg in self.logs.logs.items() if lg.log_dir == log_dir}
            entries = {k: v for k, v in self.checkpoints.items() if k in live}
            try:
                write_offset_checkpoint(checkpoint_path(log_dir), entries)
            except OSError as exc:  # the next clean redoes this one: nothing is lost
                log.warning("cannot write %s: %s", checkpoint_path(log_dir), exc)

    def failed(self, key: TopicPartition, job: CleanJob, exc: BaseException) -> None:
        """A clean raised: discard its files, stop cleaning that log until a restart."""
        job.discard(job.groups)
        self.in_progress.discard(key)
        self.uncleanable[key] = str(exc)
        log.error("cleaning %s-%d failed; the log is not cleaned again until a restart: %s",
                  *key, exc)

    def forget(self, key: TopicPartition) -> None:
        """The log was deleted or truncated below its checkpoint: start over."""
        self.checkpoints.pop(key, None)
        self.state.pop(key, None)

    # -- all at once ------------------------------------------------------------------

    def clean_once(
        self,
        now_ms: int,
        high_watermark: HighWatermarks | None = None,
        producers: Producers | None = None,
    ) -> TopicPartition | None:
        """Clean the dirtiest due log on this thread; which one, or None."""
        chosen = self.next_job(now_ms, high_watermark, producers)
        if chosen is None:
            return None
        key, job = chosen
        try:
            job.run()
        except (CorruptLog, OSError) as exc:
            self.failed(key, job, exc)
            return key
        self.finish(key, job, self.install(job))
        return key

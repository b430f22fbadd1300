"""The log cleaner's place in the broker: choosing and swapping on the event loop, the
I/O in ``log.cleaner.threads`` worker threads.

Each cleaner thread is one asyncio task here: it picks the dirtiest due log (on the
loop, where the segment list lives), hands the rewrite to its worker thread, swaps the
cleaned segments in on the loop (so no fetch ever reads between two segment lists), and
lets the worker make it durable and move the checkpoint. When no log is due it sleeps
``log.cleaner.backoff.ms``. Stopping aborts a clean under way; its ``.cleaned`` files are
removed (or, after a crash, by the next start).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Mapping

from strom.config.broker import BrokerConfig, BrokerConfigChange
from strom.storage import LogManager
from strom.storage.cleaner import CleanAborted, CleanerConfig, CleanJob
from strom.storage.cleaner_manager import CleanerManager
from strom.storage.errors import CorruptLog, KafkaStorageError

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


def cleaner_config(config: BrokerConfig) -> CleanerConfig:
    """The ``log.cleaner.*`` broker settings, under Kafka's names and defaults."""
    raw = config.raw
    return CleanerConfig(
        enable=config.get_bool("log.cleaner.enable"),
        threads=config.get_int("log.cleaner.threads"),
        dedupe_buffer_size=config.get_int("log.cleaner.dedupe.buffer.size"),
        io_buffer_size=config.get_int("log.cleaner.io.buffer.size"),
        io_buffer_load_factor=float(raw("log.cleaner.io.buffer.load.factor") or 0.9),
        io_max_bytes_per_second=float(raw("log.cleaner.io.max.bytes.per.second") or "inf"),
        backoff_ms=config.get_int("log.cleaner.backoff.ms"),
    )


class LogCleaning:
    """Runs the cleaner for the logs of one ``LogManager``; follows dynamic changes of the
    ``log.cleaner.*`` settings (threads are added or retired, the throttle and map size
    apply to the next clean), as Kafka's dynamic broker configs allow."""

    def __init__(
        self,
        logs: LogManager,
        config: BrokerConfig,
        clock: Callable[[], int],
        high_watermark: Callable[[TopicPartition], int | None],
        producers: Callable[[TopicPartition], Mapping[int, int]],
    ) -> None:
        self.config = config
        self.manager = CleanerManager(logs, cleaner_config(config))
        self._clock = clock
        self._high_watermark = high_watermark
        self._producers = producers
        # one single-thread pool per cleaner thread, so threads come and go one by one
        self._workers: list[tuple[asyncio.Task[None], concurrent.futures.ThreadPoolExecutor]] = []
        self._jobs: dict[concurrent.futures.ThreadPoolExecutor, CleanJob] = {}
        self._started = False
        config.subscribe(self._reconfigure)

    def start(self) -> None:
        self._started = True
        config = self.manager.config
        if not config.enable or config.threads < 1:
            log.info("log cleaner disabled: compacted topics are not compacted")
            return
        self._resize(config.threads)

    def _reconfigure(self, change: BrokerConfigChange) -> None:
        if not any(name.startswith("log.cleaner.") for name in change.changed):
            return
        config = cleaner_config(self.config)
        self.manager.reconfigure(config)
        if self._started and config.enable:
            self._resize(config.threads)
        log.info("log cleaner reconfigured: %d thread(s), %s bytes/s, backoff %d ms",
                 config.threads, config.io_max_bytes_per_second, config.backoff_ms)

    def _resize(self, threads: int) -> None:
        while len(self._workers) < threads:
            pool = concurrent.futures.ThreadPoolExecutor(1, f"strom-cleaner-{len(self._workers)}")
            task = asyncio.create_task(self._run(pool), name=f"log-cleaner-{len(self._workers)}")
            self._workers.append((task, pool))
        while len(self._workers) > threads:
            task, pool = self._workers.pop()
            self._retire(task, pool)

    def _retire(self, task: asyncio.Task[None], pool: concurrent.futures.ThreadPoolExecutor
                ) -> None:
        job = self._jobs.get(pool)
        if job is not None:
            job.abort()
        task.cancel()
        pool.shutdown(wait=False)  # its clean stops at the next batch

    async def stop(self) -> None:
        workers, self._workers = self._workers, []
        for task, pool in workers:
            self._retire(task, pool)
        for task, _ in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, pool in workers:
            pool.shutdown(wait=True)

    async def _run(self, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        while True:
            try:
                cleaned = await self.clean_one(pool)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log cleaner iteration failed")
                cleaned = False
            if not cleaned:
                await asyncio.sleep(self.manager.config.backoff_ms / 1000)

    async def clean_one(self, pool: concurrent.futures.ThreadPoolExecutor | None = None) -> bool:
        """Clean the dirtiest due log; False if none was due."""
        chosen = self.manager.next_job(self._clock(), self._high_watermark, self._producers)
        if chosen is None:
            return False
        key, job = chosen
        loop = asyncio.get_running_loop()
        if pool is not None:
            self._jobs[pool] = job
        try:
            await loop.run_in_executor(pool, job.run)
        except (CorruptLog, OSError, KafkaStorageError) as exc:
            self.manager.failed(key, job, exc)
            return True
        except (CleanAborted, asyncio.CancelledError):
            job.discard(job.groups)
            self.manager.in_progress.discard(key)
            raise
        finally:
            if pool is not None:
                self._jobs.pop(pool, None)
        installed = self.manager.install(job)
        await loop.run_in_executor(pool, self.manager.finish, key, job, installed)
        return True

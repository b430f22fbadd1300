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

from strom.config.broker import BrokerConfig
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
    """Runs the cleaner for the logs of one ``LogManager``."""

    def __init__(
        self,
        logs: LogManager,
        config: CleanerConfig,
        clock: Callable[[], int],
        high_watermark: Callable[[TopicPartition], int | None],
        producers: Callable[[TopicPartition], Mapping[int, int]],
    ) -> None:
        self.manager = CleanerManager(logs, config)
        self._clock = clock
        self._high_watermark = high_watermark
        self._producers = producers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[CleanJob] = set()

    def start(self) -> None:
        config = self.manager.config
        if not config.enable or config.threads < 1:
            log.info("log cleaner disabled: compacted topics are not compacted")
            return
        self._pool = concurrent.futures.ThreadPoolExecutor(config.threads, "strom-cleaner")
        self._tasks = [asyncio.create_task(self._run(), name=f"log-cleaner-{i}")
                       for i in range(config.threads)]

    async def stop(self) -> None:
        for job in list(self._jobs):
            job.abort()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # an aborted clean stops at its next batch

    async def _run(self) -> None:
        while True:
            try:
                cleaned = await self.clean_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log cleaner iteration failed")
                cleaned = False
            if not cleaned:
                await asyncio.sleep(self.manager.config.backoff_ms / 1000)

    async def clean_one(self) -> bool:
        """Clean the dirtiest due log; False if none was due."""
        chosen = self.manager.next_job(self._clock(), self._high_watermark, self._producers)
        if chosen is None:
            return False
        key, job = chosen
        loop = asyncio.get_running_loop()
        self._jobs.add(job)
        try:
            await loop.run_in_executor(self._pool, job.run)
        except (CorruptLog, OSError, KafkaStorageError) as exc:
            self.manager.failed(key, job, exc)
            return True
        except (CleanAborted, asyncio.CancelledError):
            job.discard(job.groups)
            self.manager.in_progress.discard(key)
            raise
        finally:
            self._jobs.discard(job)
        installed = self.manager.install(job)
        await loop.run_in_executor(self._pool, self.manager.finish, key, job, installed)
        return True

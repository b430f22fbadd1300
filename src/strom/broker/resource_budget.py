"""File descriptors and the partition budget they allow.

Why this exists: every partition holds open files, and a broker that runs out of file
descriptors half way through creating a 20,000-partition topic was left with metadata
naming partitions it could not open; it then failed every start ("Too many open files").
Three defences, all derived from the same numbers:

* at start the soft ``RLIMIT_NOFILE`` is raised to the hard limit (what Kafka's
  documentation asks operators to do with ``ulimit -n``);
* a partition budget: ``strom.max.partitions`` when set, else what the descriptor limit
  leaves after a reserve for sockets and transient files. CreateTopics and
  CreatePartitions that would exceed it, or that would need more descriptors than are
  free right now, are refused with POLICY_VIOLATION before anything is written;
* the same reserve is held while logs load at start, so a start that runs out of
  descriptors still has some to serve clients with (the partitions that could not be
  opened go offline, see ``ReplicaManager.offline``).

What the storage layer keeps open (checked in ``strom.storage``): one descriptor per
segment ``.log`` file, for every segment of a log, active or rolled. The active segment's
``.index`` and ``.timeindex`` live in memory and hold none; a rolled segment's indexes are
mmapped on first lookup and each mapping holds a duplicated descriptor. So a new partition
costs exactly one descriptor; one with rolled segments costs one per segment plus up to
two per rolled segment that readers have used. The static budget counts one per partition
(what a create really costs) and the live check counts what is open now, which includes
every extra segment.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

MIN_RESERVE = 64  # descriptors kept for sockets, checkpoints and the interpreter itself
RESERVE_FRACTION = 10  # ... or a tenth of the limit when that is more
FDS_PER_NEW_PARTITION = 1  # a new log: its active segment's .log file


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit in force.

    An unlimited hard limit (not on Linux, where it is bounded by fs.nr_open) is capped
    at 1,048,576, Linux's default nr_open, since an infinite soft limit is refused.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open file limit from %d to %d: %s", soft, target, exc)
        return soft
    log.info("raised the open file limit from %d to %d", soft, target)
    return target


def open_file_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def open_descriptors() -> int | None:
    """Descriptors open in this process now (None where /proc or /dev/fd is missing)."""
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(path)) - 1  # listdir's own descriptor
        except OSError:
            continue
    return None


def reserve_for(fd_limit: int) -> int:
    return max(MIN_RESERVE, fd_limit // RESERVE_FRACTION)


class BudgetExceeded(Exception):
    """A create refused by the budget; the message says which limit and how to raise it."""


@dataclass(frozen=True)
class PartitionBudget:
    """How many partition replicas this broker may host, and whether descriptors are free."""

    fd_limit: int
    configured: int = 0  # strom.max.partitions; 0: derived from the descriptor limit

    @property
    def reserve(self) -> int:
        return reserve_for(self.fd_limit)

    @property
    def limit(self) -> int:
        if self.configured > 0:
            return self.configured
        return max(0, (self.fd_limit - self.reserve) // FDS_PER_NEW_PARTITION)

    def free_descriptors(self) -> int | None:
        """Descriptors a create may still use: the limit minus open ones and the reserve."""
        used = open_descriptors()
        return None if used is None else self.fd_limit - self.reserve - used

    def check(self, hosted: int, adding: int, *, keep_room: int = 0,
              free: int | None = None) -> None:
        """Refuse adding ``adding`` partitions to the ``hosted`` ones; ``keep_room`` is
        budget held back for internal topics that do not exist yet. ``free`` descriptors
        are counted now unless given (a batch counts once: listing them costs ~0.5 ms)."""
        if adding <= 0:
            return
        limit = self.limit - keep_room
        if hosted + adding > limit:
            source = ("strom.max.partitions" if self.configured > 0 else
                      f"derived from the open file limit {self.fd_limit}, {self.reserve} "
                      "descriptors reserved; raise `ulimit -n` or set strom.max.partitions")
            held = f", {keep_room} kept for __consumer_offsets" if keep_room else ""
            raise BudgetExceeded(
                f"Creating {adding} partition(s) would make this broker host "
                f"{hosted + adding} partitions, more than its budget of {limit}{held} "
                f"({source})."
            )
        free = self.free_descriptors() if free is None else free
        if free is not None and adding * FDS_PER_NEW_PARTITION > free:
            raise BudgetExceeded(
                f"Creating {adding} partition(s) needs {adding * FDS_PER_NEW_PARTITION} "
                f"file descriptors but only {max(free, 0)} are free under the open file "
                f"limit {self.fd_limit} ({self.reserve} reserved); raise `ulimit -n`."
            )

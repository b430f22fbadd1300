"""The partition budget: derived from RLIMIT_NOFILE or strom.max.partitions, checked
before anything is written, with a message that names the limit to raise."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from strom.broker.resource_budget import (
    MIN_RESERVE,
    BudgetExceeded,
    PartitionBudget,
    open_descriptors,
    reserve_for,
)


def test_the_budget_is_what_the_descriptor_limit_leaves_after_the_reserve() -> None:
    assert reserve_for(256) == MIN_RESERVE
    assert reserve_for(20_000) == 2_000
    assert PartitionBudget(256).limit == 256 - MIN_RESERVE
    assert PartitionBudget(20_000).limit == 18_000
    assert PartitionBudget(20_000, configured=500).limit == 500
    assert PartitionBudget(10).limit == 0


def test_a_create_over_the_budget_is_refused_with_the_limit_to_raise() -> None:
    budget = PartitionBudget(256)
    budget.check(100, 92, free=1000)  # exactly the 192 the limit allows
    with pytest.raises(BudgetExceeded, match=r"host 193 partitions, more than its budget "
                                             r"of 192 \(derived from the open file limit 256"):
        budget.check(100, 93, free=1000)
    with pytest.raises(BudgetExceeded, match="50 kept for __consumer_offsets"):
        budget.check(100, 50, keep_room=50, free=1000)
    with pytest.raises(BudgetExceeded, match=r"\(strom.max.partitions\)"):
        PartitionBudget(256, configured=10).check(5, 6, free=1000)
    budget.check(10_000, 0)  # adding nothing is never refused


def test_a_create_needing_more_descriptors_than_are_free_is_refused() -> None:
    budget = PartitionBudget(100_000)
    with pytest.raises(BudgetExceeded, match="needs 20 file descriptors but only 19 are free"):
        budget.check(0, 20, free=19)
    free, used = budget.free_descriptors(), open_descriptors()
    assert free is not None and used is not None
    assert abs(free - (100_000 - budget.reserve - used)) <= 2


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 200:
        pytest.skip("needs a finite hard limit of at least 200")
    code = ("import resource; from strom.broker.resource_budget import raise_open_file_limit; "
            "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))

    out = subprocess.run([sys.executable, "-c", code], preexec_fn=lower, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(hard), str(hard)]

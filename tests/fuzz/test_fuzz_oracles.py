"""The fuzz oracles have teeth: the strict batch parser that checks what a fuzzed produce
got acknowledged rejects the corrupt corpus and accepts what real clients write.

Without this, a parser that accepted anything would let the frame fuzzing pass over
stored poison. No broker is involved.
"""

from __future__ import annotations

import random

import pytest

from support.fuzz_batches import (
    CODECS,
    CaseContext,
    CorruptCase,
    Header,
    batch,
    compress,
    corrupt_cases,
    records,
)
from support.fuzz_decode import Malformed, check_batch
from support.fuzz_frames import find_batches, load_corpus

pytestmark = pytest.mark.fuzz

# cases whose bytes are a well-formed batch: refused for who sent them or where, or not
# refused at all (Kafka accepts those)
WELL_FORMED = {"timestamp-far-future", "producer-without-sequence", "sequence-without-producer",
               "unknown-producer-seq-5", "sequence-gap", "stale-producer-epoch",
               "transactional-no-transactional-id", "transactional-no-transaction",
               "control-batch-from-client", "offsets-valid-batch", "offsets-garbage-records",
               "valid-batch-then-corrupt", "legacy-magic-1", "batch-length-negative",
               "batch-length-below-header", "batch-length-past-end"}
PARSER_CASES = [c for c in corrupt_cases()
                if c.name not in WELL_FORMED and "bomb" not in c.name]


@pytest.mark.parametrize("case", PARSER_CASES, ids=lambda c: c.name)
def test_strict_parser_rejects_corrupt_batch(case: CorruptCase) -> None:
    data = case.build(CaseContext(rng=random.Random(1)))
    with pytest.raises(Malformed):
        check_batch(data)


@pytest.mark.parametrize("codec", [0, *CODECS.values()])
def test_strict_parser_accepts_valid_batches(codec: int) -> None:
    payload = records(5) if codec == 0 else compress(codec, records(5))
    check_batch(batch(payload, Header(count=5, attributes=codec)))


def test_recorded_client_batches_parse() -> None:
    """Every batch a real client sent (the corpus) passes the strict parser."""
    seen = 0
    for seed in load_corpus():
        for start, size in find_batches(seed.frame):
            check_batch(seed.frame[start : start + size])
            seen += 1
    assert seen >= 10, seen

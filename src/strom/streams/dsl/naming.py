"""Kafka Streams' generated names: `<PREFIX><index as 10 digits>`, one counter per builder.

Generated names follow Kafka's prefixes (KSTREAM-SOURCE-, KSTREAM-MAPVALUES-,
KSTREAM-AGGREGATE-STATE-STORE-, KTABLE-TOSTREAM-, ...) so that `describe()` and the
internal topic names (`<store>-repartition`, `<store>-changelog`) look like those of
the same topology in Java. A name given by the user replaces the generated one.
"""

from __future__ import annotations

import itertools


class Namer:
    def __init__(self) -> None:
        self._index = itertools.count()

    def name(self, prefix: str, given: str | None = None) -> str:
        """`given` if set (no index is used), else the next generated name."""
        if given:
            return given
        return f"{prefix}{next(self._index):010d}"

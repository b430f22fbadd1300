"""Record headers as Connect sees them: an ordered list of (key, schema, value).

Kafka's ConnectHeaders keeps duplicates and order; the runtime turns each into bytes
with the worker's header converter (Kafka's default is the SimpleHeaderConverter; ours,
`StringHeaderConverter`-like, writes strings as UTF-8 and other values as JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from strom.connect.data.schema import Schema


@dataclass(frozen=True)
class Header:
    key: str
    value: Any
    schema: Schema | None = None


class Headers:
    """An ordered, duplicate-keeping collection of headers."""

    def __init__(self, headers: Iterable[Header] = ()) -> None:
        self._headers = list(headers) if headers else []  # most records have none

    def add(self, key: str, value: Any, schema: Schema | None = None) -> Headers:
        self._headers.append(Header(key, value, schema))
        return self

    def remove(self, key: str) -> Headers:
        self._headers = [h for h in self._headers if h.key != key]
        return self

    def last_with_name(self, key: str) -> Header | None:
        for header in reversed(self._headers):
            if header.key == key:
                return header
        return None

    def all_with_name(self, key: str) -> list[Header]:
        return [h for h in self._headers if h.key == key]

    def copy(self) -> Headers:
        return Headers(self._headers)

    def __iter__(self) -> Iterator[Header]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._headers == other._headers

    def __repr__(self) -> str:
        return f"Headers({self._headers!r})"

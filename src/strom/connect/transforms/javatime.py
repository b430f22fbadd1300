"""Java's SimpleDateFormat patterns (`yyyy-MM-dd'T'HH:mm:ss.SSSZ`), formatting and parsing
in UTC, because TimestampConverter and TimestampRouter take their `format` configs in
that syntax and users copy them from Kafka Connect configs.

Supported letters: y M d H h m s S E a Z X z, quoted literals ('T', '' for a quote).
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

from strom.connect.api.errors import ConfigError, DataError

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_LETTERS = set("yMdHhmsSEaZXz")

Token = tuple[str, int]  # (letter, count) or ("'", literal text as count-less marker)


@lru_cache(maxsize=64)
def tokens(pattern: str) -> tuple[tuple[str, str], ...]:
    """The pattern as (kind, text): kind is a letter run like 'yyyy' or '' for a literal."""
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ConfigError("format", pattern, "Unterminated quote")
            found.append(("", "'" if end == i + 1 else pattern[i + 1:end]))
            i = end + 1
        elif ch.isalpha():
            if ch not in _LETTERS:
                raise ConfigError("format", pattern, f"Illegal pattern character '{ch}'")
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            found.append((ch, pattern[i:j]))
            i = j
        else:
            found.append(("", ch))
            i += 1
    return tuple(found)


def _text(value: datetime.datetime, letter: str, run: str) -> str:
    n = len(run)
    numbers = {"y": value.year, "M": value.month, "d": value.day, "H": value.hour,
               "h": (value.hour % 12) or 12, "m": value.minute, "s": value.second}
    if letter == "y" and n == 2:
        return f"{value.year % 100:02d}"
    if letter == "M" and n >= 3:
        name = _MONTHS[value.month - 1]
        return name if n >= 4 else name[:3]
    if letter in numbers:
        return str(numbers[letter]).zfill(n)
    if letter == "S":
        return str(value.microsecond // 1000).zfill(n)
    if letter == "E":
        name = _DAYS[value.weekday()]
        return name if n >= 4 else name[:3]
    if letter == "a":
        return "AM" if value.hour < 12 else "PM"
    return {"Z": "+0000", "X": "Z", "z": "UTC"}[letter]


def format_java(value: datetime.datetime, pattern: str) -> str:
    value = value.astimezone(datetime.UTC)
    return "".join(text if not letter else _text(value, letter, text) for letter, text in tokens(pattern))


_GROUPS = {"y": r"(?P<y>\d{{{n},}})", "M": r"(?P<M>\d{{1,2}})", "d": r"(?P<d>\d{{1,2}})",
           "H": r"(?P<H>\d{{1,2}})", "h": r"(?P<h>\d{{1,2}})", "m": r"(?P<m>\d{{1,2}})",
           "s": r"(?P<s>\d{{1,2}})", "S": r"(?P<S>\d{{1,9}})", "E": r"[A-Za-z]+",
           "a": r"(?P<a>AM|PM)", "Z": r"(?P<Z>[+-]\d{{4}})", "X": r"(?P<X>Z|[+-]\d{{2}}(?::?\d{{2}})?)",
           "z": r"[A-Za-z]+"}


@lru_cache(maxsize=64)
def _parser(pattern: str) -> re.Pattern[str]:
    parts = []
    for letter, text in tokens(pattern):
        if not letter:
            parts.append(re.escape(text))
        elif letter == "M" and len(text) >= 3:
            parts.append(r"(?P<Mname>[A-Za-z]+)")
        else:
            parts.append(_GROUPS[letter].format(n=min(len(text), 4) if len(text) != 2 else 2))
    return re.compile("".join(parts))


def parse_java(text: str, pattern: str) -> datetime.datetime:
    """The UTC instant `text` denotes under `pattern`; DataError if it does not match."""
    match = _parser(pattern).fullmatch(text.strip())
    if match is None:
        raise DataError(f"Could not parse timestamp: value ({text}) does not match pattern ({pattern})")
    g = match.groupdict()
    month = int(g["M"]) if g.get("M") else (_month(g["Mname"]) if g.get("Mname") else 1)
    hour = int(g["H"]) if g.get("H") else int(g.get("h") or 0) % 12 + (12 if g.get("a") == "PM" else 0)
    millis = int((g.get("S") or "0")[:3].ljust(3, "0")) if g.get("S") else 0
    result = datetime.datetime(int(g.get("y") or 1970), month, int(g.get("d") or 1), hour,
                               int(g.get("m") or 0), int(g.get("s") or 0), millis * 1000,
                               tzinfo=datetime.UTC)
    return result - _offset(g.get("Z") or g.get("X"))


def _month(name: str) -> int:
    for i, full in enumerate(_MONTHS):
        if full.lower().startswith(name.lower()[:3]):
            return i + 1
    raise DataError("Unknown month: " + name)


def _offset(zone: str | None) -> datetime.timedelta:
    if not zone or zone == "Z":
        return datetime.timedelta(0)
    digits = zone[1:].replace(":", "").ljust(4, "0")
    delta = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]))
    return delta if zone[0] == "+" else -delta

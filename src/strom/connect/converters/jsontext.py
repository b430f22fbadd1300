"""JSON text as Kafka's Jackson writes it, so our bytes equal connect-json's.

Differences from `json.dumps` that matter for byte equality: no spaces; doubles in
Java's `Double.toString` form (`1.0`, `1.0E10`, `1.0E-4`), FLOAT32 values in
`Float.toString` form (shortest digits that round-trip a 32-bit float); control
characters as `\\u00XX` with upper-case hex except the five short escapes; non-ASCII
written as UTF-8, not escaped.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from typing import Any


class Float32(float):
    """A float to be written as Java's Float.toString writes it."""


class Numeric(Decimal):
    """A decimal to be written as a JSON number in BigDecimal.toString form."""


_ESCAPES: dict[int, str] = {i: f"\\u{i:04X}" for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f",
                 13: "\\r"})


def quote(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _java_digits(shortest: str) -> str:
    """Java's notation for the shortest decimal digits of a finite, non-zero number."""
    sign, digits, exponent = Decimal(shortest).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exponent)  # digits before the decimal point
    magnitude = abs(Decimal(shortest))
    prefix = "-" if sign else ""
    if Decimal("1e-3") <= magnitude < Decimal("1e7"):
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{text}"
        whole = text[:point].ljust(point, "0")
        return f"{prefix}{whole}.{text[point:] or '0'}"
    return f"{prefix}{text[0]}.{text[1:] or '0'}E{point - 1}"


def java_double(value: float) -> str:
    """Double.toString(value)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    return _java_digits(repr(value))


def to_float32(value: float) -> float:
    """`value` rounded to the nearest 32-bit float."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def java_float(value: float) -> str:
    """Float.toString(value): the shortest digits that read back as the same float32."""
    single = to_float32(value)
    if math.isnan(single) or math.isinf(single) or single == 0:
        return java_double(single)
    for precision in range(1, 10):
        candidate = f"{single:.{precision}g}"
        if to_float32(float(candidate)) == single:
            return _java_digits(candidate)
    return _java_digits(repr(single))


def dumps(node: Any) -> str:
    """Compact JSON text of a tree of None/bool/int/float/str/list/dict (and Float32, Numeric)."""
    parts: list[str] = []
    _write(node, parts)
    return "".join(parts)


def _write(node: Any, parts: list[str]) -> None:
    if isinstance(node, str):
        parts.append(quote(node))
    elif node is None:
        parts.append("null")
    elif isinstance(node, bool):
        parts.append("true" if node else "false")
    elif isinstance(node, int):
        parts.append(str(node))
    elif isinstance(node, float):
        parts.append(java_float(node) if isinstance(node, Float32) else java_double(node))
    elif isinstance(node, dict):
        _write_object(node, parts)
    elif isinstance(node, list | tuple):
        _write_array(node, parts)
    elif isinstance(node, Decimal):
        parts.append(str(node))
    else:
        raise TypeError(f"not a JSON value: {type(node).__name__}")


def _write_object(node: dict[str, Any], parts: list[str]) -> None:
    parts.append("{")
    first = True
    for key, value in node.items():
        if not first:
            parts.append(",")
        first = False
        parts.append(quote(key))
        parts.append(":")
        _write(value, parts)
    parts.append("}")


def _write_array(node: list[Any] | tuple[Any, ...], parts: list[str]) -> None:
    parts.append("[")
    for i, value in enumerate(node):
        if i:
            parts.append(",")
        _write(value, parts)
    parts.append("]")

"""Text grammars of `strom topic consume` output and `strom topic produce` input.

Output (kcat's `-f`): `%t` topic, `%p` partition, `%o` offset, `%k` key, `%v` (or `%s`)
value, `%h` headers as `k=v,k2=v2`, `%T` timestamp in ms, `%K`/`%S` key/value length
(-1 for null), `%%` a percent sign, and the escapes `\\n`, `\\t`, `\\r`, `\\\\`, `\\0`.
The word `json` instead of a format prints one JSON envelope per record:
`{"topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value",
"headers": [{"key", "value"}]}`; a key or value that is not UTF-8 is base64 and flagged
with `key_encoding`/`value_encoding` = "base64".

Input (rpk's `-f`): the same field letters, in a pattern matched against each line:
`%k`, `%v`, `%h` (`k=v,k2=v2`), `%p`, `%T`, separated by literal text, e.g.
`-f '%k:%v'` or `-f '%T %p %k %v'`. Each field but the last stops at the first
occurrence of the text after it. `json` reads the consume envelope back.

Decoders show keys and values: `auto` (UTF-8 as is; invalid bytes and control characters escaped as `\\xNN`),
`raw` (bytes as they are), `text` (UTF-8, invalid bytes replaced), `hex`, `base64`,
`json` (pretty-printed with `--pretty`, else compact; non-JSON falls back to auto) and
`int` (a big-endian signed integer of 1, 2, 4 or 8 bytes, as Kafka's serializers write).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.cli.common import fail

DECODERS = ("auto", "raw", "text", "hex", "base64", "json", "int")
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", "0": b"\0"}
OUTPUT_FIELDS = set("tpokvshTKS")
INPUT_FIELDS = set("kvhpT")

Decoder = Callable[[bytes], bytes]


# --- decoding keys and values ------------------------------------------------------------


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _escape_binary(data: bytes) -> bytes:
    """UTF-8 text as it is; invalid bytes and control characters (but tab, CR, LF) as
    `\\xNN`, so binary data cannot garble a terminal."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "backslashreplace")
    else:
        if not _CONTROL.search(text):
            return data
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text).encode()


def _as_int(data: bytes) -> bytes:
    if len(data) in (1, 2, 4, 8):
        return str(int.from_bytes(data, "big", signed=True)).encode()
    return _escape_binary(data)


def decoder(name: str, pretty: bool = False) -> Decoder:
    if name not in DECODERS:
        fail(f"unknown decoder {name!r}; use one of {', '.join(DECODERS)}",
             name="INVALID_ARGUMENT")

    def as_json(data: bytes) -> bytes:
        try:
            value = json.loads(data)
        except ValueError:
            return _escape_binary(data)
        return json.dumps(value, indent=2 if pretty else None, ensure_ascii=False).encode()

    table: dict[str, Decoder] = {
        "auto": _escape_binary,
        "raw": lambda d: d,
        "text": lambda d: d.decode("utf-8", "replace").encode(),
        "hex": lambda d: binascii.hexlify(d),
        "base64": lambda d: base64.b64encode(d),
        "json": as_json,
        "int": _as_int,
    }
    return table[name]


def _json_field(data: bytes | None, how: str, pretty: bool) -> tuple[Any, str | None]:
    """A key or value for the JSON envelope: (value, encoding marker or None)."""
    if data is None:
        return None, None
    if how == "json":
        try:
            return json.loads(data), None
        except ValueError:
            pass
    if how == "hex":
        return data.hex(), "hex"
    if how == "base64":
        return base64.b64encode(data).decode(), "base64"
    if how == "int" and len(data) in (1, 2, 4, 8):
        return int.from_bytes(data, "big", signed=True), None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        if how == "text":
            return data.decode("utf-8", "replace"), None
        return base64.b64encode(data).decode(), "base64"


# --- consume output ----------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """What the renderers need of a consumed message (confluent's Message has the same)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None
    timestamp: int
    timestamp_type: str


TIMESTAMP_TYPES = {0: "NotAvailable", 1: "CreateTime", 2: "LogAppendTime"}


def record_of(msg: Any) -> Record:
    ts_type, ts = msg.timestamp()
    return Record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                  msg.headers(), ts, TIMESTAMP_TYPES.get(ts_type, "NotAvailable"))


def _tokens(fmt: str, fields: set[str]) -> list[tuple[str, bytes]]:
    """('lit', bytes) and ('field', letter) tokens of a format string."""
    tokens: list[tuple[str, bytes]] = []
    literal = bytearray()
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        nxt = fmt[i + 1] if i + 1 < len(fmt) else ""
        if ch == "\\" and nxt in _ESCAPES:
            literal += _ESCAPES[nxt]
            i += 2
        elif ch == "%" and nxt == "%":
            literal += b"%"
            i += 2
        elif ch == "%" and nxt in fields:
            if literal:
                tokens.append(("lit", bytes(literal)))
                literal.clear()
            tokens.append(("field", nxt.encode()))
            i += 2
        elif ch == "%":
            fail(f"unknown field %{nxt} in format {fmt!r}; fields are "
                 f"{' '.join('%' + f for f in sorted(fields))}", name="INVALID_ARGUMENT")
        else:
            literal += ch.encode()
            i += 1
    if literal:
        tokens.append(("lit", bytes(literal)))
    return tokens


class Renderer:
    """Turns consumed records into output bytes by a kcat format or the JSON envelope."""

    def __init__(self, fmt: str, key_decoder: str = "auto", value_decoder: str = "auto",
                 pretty: bool = False) -> None:
        self.json = fmt == "json"
        self.pretty = pretty
        self.key_how = key_decoder
        self.value_how = value_decoder
        self.decode_key = decoder(key_decoder, pretty)
        self.decode_value = decoder(value_decoder, pretty)
        self.tokens = [] if self.json else _tokens(fmt, OUTPUT_FIELDS)

    def __call__(self, rec: Record) -> bytes:
        if self.json:
            return self._json(rec)
        out = bytearray()
        for kind, value in self.tokens:
            if kind == "lit":
                out += value
            else:
                out += self._field(value.decode(), rec)
        return bytes(out)

    def _field(self, letter: str, rec: Record) -> bytes:
        if letter == "v" or letter == "s":
            return b"" if rec.value is None else self.decode_value(rec.value)
        if letter == "k":
            return b"" if rec.key is None else self.decode_key(rec.key)
        if letter == "t":
            return rec.topic.encode()
        if letter == "p":
            return str(rec.partition).encode()
        if letter == "o":
            return str(rec.offset).encode()
        if letter == "T":
            return str(rec.timestamp).encode()
        if letter == "K":
            return str(-1 if rec.key is None else len(rec.key)).encode()
        if letter == "S":
            return str(-1 if rec.value is None else len(rec.value)).encode()
        # "h"
        return b",".join(k.encode() + b"=" + _escape_binary(v or b"")
                         for k, v in rec.headers or [])

    def _json(self, rec: Record) -> bytes:
        key, key_enc = _json_field(rec.key, self.key_how, self.pretty)
        value, value_enc = _json_field(rec.value, self.value_how, self.pretty)
        envelope: dict[str, Any] = {
            "topic": rec.topic,
            "partition": rec.partition,
            "offset": rec.offset,
            "timestamp": rec.timestamp,
            "timestamp_type": rec.timestamp_type,
            "key": key,
            "value": value,
            "headers": [{"key": k, "value": _json_field(v, "auto", False)[0]}
                        for k, v in rec.headers or []],
        }
        if key_enc:
            envelope["key_encoding"] = key_enc
        if value_enc:
            envelope["value_encoding"] = value_enc
        text = json.dumps(envelope, ensure_ascii=False, indent=2 if self.pretty else None)
        return text.encode() + b"\n"


# --- produce input -----------------------------------------------------------------------


@dataclass
class Input:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None
    timestamp: int | None = None


def parse_headers(text: bytes) -> list[tuple[str, bytes]]:
    headers = []
    for item in text.split(b","):
        if not item:
            continue
        k, _, v = item.partition(b"=")
        headers.append((k.decode("utf-8", "replace"), v))
    return headers


class LineParser:
    """Parses one input line (without its newline) into an `Input`."""

    def __init__(self, fmt: str | None = None, key_delimiter: str | None = None,
                 null_empty: bool = False) -> None:
        self.json = fmt == "json"
        self.null_empty = null_empty
        self.key_delimiter = key_delimiter.encode() if key_delimiter else None
        self.pattern: re.Pattern[bytes] | None = None
        self.fields: list[str] = []
        if fmt and not self.json:
            if key_delimiter:
                fail("use either -f/--format or -K/--key-delimiter", name="INVALID_ARGUMENT")
            self.pattern = self._compile(fmt)

    def _compile(self, fmt: str) -> re.Pattern[bytes]:
        tokens = _tokens(fmt.rstrip("\n").removesuffix("\\n"), INPUT_FIELDS)
        parts: list[bytes] = []
        fields = [t for t in tokens if t[0] == "field"]
        seen = 0
        for kind, value in tokens:
            if kind == "lit":
                parts.append(re.escape(value))
                continue
            letter = value.decode()
            if letter in self.fields:
                fail(f"field %{letter} appears twice in {fmt!r}", name="INVALID_ARGUMENT")
            self.fields.append(letter)
            seen += 1
            greedy = seen == len(fields)
            parts.append(b"(.*)" if greedy else b"(.*?)")
        if "v" not in self.fields:
            fail(f"input format {fmt!r} has no %v", name="INVALID_ARGUMENT")
        return re.compile(b"".join(parts), re.DOTALL)

    def _nullable(self, data: bytes) -> bytes | None:
        return None if self.null_empty and not data else data

    def __call__(self, line: bytes, number: int) -> Input:
        if self.json:
            return self._json(line, number)
        if self.pattern is not None:
            return self._pattern(line, number)
        if self.key_delimiter is not None:
            key, sep, value = line.partition(self.key_delimiter)
            if not sep:
                return Input(self._nullable(line))
            return Input(self._nullable(value), self._nullable(key))
        return Input(self._nullable(line))

    def _pattern(self, line: bytes, number: int) -> Input:
        assert self.pattern is not None
        match = self.pattern.fullmatch(line)
        if match is None:
            fail(f"line {number} does not match the input format: {line[:80]!r}",
                 name="INVALID_INPUT")
        item = Input(None)
        for letter, text in zip(self.fields, match.groups(), strict=True):
            if letter == "v":
                item.value = self._nullable(text)
            elif letter == "k":
                item.key = self._nullable(text)
            elif letter == "h":
                item.headers = parse_headers(text)
            else:
                try:
                    number_value = int(text)
                except ValueError:
                    fail(f"line {number}: %{letter} must be an integer, got {text[:40]!r}",
                         name="INVALID_INPUT")
                if letter == "p":
                    item.partition = number_value
                else:
                    item.timestamp = number_value
        return item

    def _json(self, line: bytes, number: int) -> Input:
        try:
            doc = json.loads(line)
        except ValueError as exc:
            fail(f"line {number} is not JSON: {exc}", name="INVALID_INPUT")
        if not isinstance(doc, dict):
            fail(f"line {number}: expected a JSON object", name="INVALID_INPUT")
        headers_doc = doc.get("headers") or []
        if isinstance(headers_doc, dict):
            headers_doc = [{"key": k, "value": v} for k, v in headers_doc.items()]
        headers = [(str(h.get("key")), _from_json(h.get("value"), None) or b"")
                   for h in headers_doc]
        return Input(
            value=_from_json(doc.get("value"), doc.get("value_encoding")),
            key=_from_json(doc.get("key"), doc.get("key_encoding")),
            headers=headers or None,
            partition=doc.get("partition"),
            timestamp=doc.get("timestamp"),
        )


def _from_json(value: Any, encoding: str | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        if encoding == "base64":
            return base64.b64decode(value)
        if encoding == "hex":
            return bytes.fromhex(value)
        return value.encode()
    return json.dumps(value, ensure_ascii=False).encode()


# --- time and offsets --------------------------------------------------------------------

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_timestamp(text: str, now_ms: int | None = None) -> int:
    """Milliseconds since the epoch from `1700000000000`, `now`, a relative `-15m`/`-2h`/
    `-1d`, or ISO-8601 (`2024-05-01`, `2024-05-01T12:00:00+02:00`; no zone = local time)."""
    import time

    now = int(time.time() * 1000) if now_ms is None else now_ms
    text = text.strip()
    if text == "now":
        return now
    if text.isdigit():
        return int(text)
    relative = _RELATIVE.match(text)
    if relative:
        return now - int(float(relative.group(1)) * _UNIT_MS[relative.group(2)])
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"cannot read {text!r} as a time; use milliseconds since the epoch, ISO-8601 "
             "like 2024-05-01T12:00:00Z, or relative like -15m, -2h, -1d",
             name="INVALID_ARGUMENT")
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class StartOffset:
    """Where consumption starts: `kind` is beginning, end, stored, offset, tail, from_start
    or timestamp; `value` the number that goes with it."""

    kind: str
    value: int = 0


def parse_offset(text: str) -> tuple[StartOffset | None, int | None]:
    """kcat's -o grammar. Returns (start, stop timestamp); either may be None.

    `beginning`/`start`/`earliest`, `end`/`latest`, `stored`, `N` (absolute), `-N` (N
    before the end), `+N` (N after the start), `s@TIME` or `@TIME` (first record at or
    after TIME), `e@TIME` (stop before TIME).
    """
    text = text.strip()
    lowered = text.lower()
    if lowered in ("beginning", "start", "earliest", "oldest"):
        return StartOffset("beginning"), None
    if lowered in ("end", "latest", "newest"):
        return StartOffset("end"), None
    if lowered == "stored":
        return StartOffset("stored"), None
    if lowered.startswith("e@"):
        return None, parse_timestamp(text[2:])
    if lowered.startswith(("s@", "@")):
        return StartOffset("timestamp", parse_timestamp(text.split("@", 1)[1])), None
    if re.fullmatch(r"-\d+", text):
        return StartOffset("tail", int(text[1:])), None
    if re.fullmatch(r"\+\d+", text):
        return StartOffset("from_start", int(text[1:])), None
    if text.isdigit():
        return StartOffset("offset", int(text)), None
    fail(f"cannot read offset {text!r}; use beginning, end, stored, N, -N, +N, s@TIME or "
         "e@TIME", name="INVALID_ARGUMENT")

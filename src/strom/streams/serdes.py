"""Serdes: how keys and values become bytes and back, byte-compatible with Kafka's.

Each serde is one object with `serialize(topic, value)` and `deserialize(topic, data)`;
None maps to None both ways, as Kafka's serializers map null to null (a tombstone stays a
tombstone). The fixed-width numbers are big-endian like Java's `ByteBuffer`:
`IntegerSerde` is Kafka's IntegerSerializer (4 bytes), `LongSerde` its LongSerializer
(8 bytes), `DoubleSerde` its DoubleSerializer (IEEE 754, 8 bytes). `JsonSerde` uses orjson.

`SchemaRegistrySerde` is the hook for a schema registry: it writes Confluent's wire format
(magic byte 0, a 4-byte schema id, the payload) around any `SchemaCodec`, with the schema
ids coming from a `SchemaRegistryClient` the application supplies (a REST client, or a
dict in tests). Strom ships no registry of its own.

`TimeWindowedSerde` and `SessionWindowedSerde` serialize a `Windowed` key the way Kafka
Streams' TimeWindowedSerializer and SessionWindowedSerializer do, so a windowed output
topic reads the same from Java.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import orjson

from strom.streams.errors import SerializationError

if TYPE_CHECKING:
    from strom.streams.windows import Windowed

T = TypeVar("T")

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")
_SCHEMA_HEADER = struct.Struct(">bI")


class Serde(Generic[T]):
    """Serializer and deserializer of one type. Subclasses override `to_bytes`/`from_bytes`;
    None is handled here once."""

    def serialize(self, topic: str, value: T | None) -> bytes | None:
        return None if value is None else self.to_bytes(value)

    def deserialize(self, topic: str, data: bytes | None) -> T | None:
        return None if data is None else self.from_bytes(data)

    def to_bytes(self, value: T) -> bytes:
        raise NotImplementedError

    def from_bytes(self, data: bytes) -> T:
        raise NotImplementedError

    def resolved(self, default: Serde[Any]) -> Serde[T]:
        """This serde with the application's default filling any unknown inner serde
        (a windowed key or a table change around a serde nobody named)."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BytesSerde(Serde[bytes]):
    """Bytes as they are (Kafka's ByteArraySerde)."""

    # serialize/deserialize are overridden on the hot serdes: every record goes through
    # several of them, and skipping the generic None check's extra call is measurable
    def serialize(self, topic: str, value: bytes | None) -> bytes | None:
        if value is None or value.__class__ is bytes:
            return value
        return self.to_bytes(value)

    def deserialize(self, topic: str, data: bytes | None) -> bytes | None:
        if data is None or data.__class__ is bytes:
            return data
        return bytes(data)

    def to_bytes(self, value: bytes) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SerializationError(f"BytesSerde needs bytes, got {type(value).__name__}")
        return bytes(value)

    def from_bytes(self, data: bytes) -> bytes:
        return bytes(data)


class StringSerde(Serde[str]):
    """UTF-8 text (Kafka's StringSerde with its default encoding)."""

    def serialize(self, topic: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        if value.__class__ is str:
            return value.encode()
        return self.to_bytes(value)

    def deserialize(self, topic: str, data: bytes | None) -> str | None:
        if data is None:
            return None
        try:
            return data.decode()
        except (AttributeError, UnicodeDecodeError):
            return self.from_bytes(data)

    def to_bytes(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise SerializationError(f"StringSerde needs str, got {type(value).__name__}")
        return value.encode()

    def from_bytes(self, data: bytes) -> str:
        try:
            return bytes(data).decode()
        except UnicodeDecodeError as exc:
            raise SerializationError(f"not UTF-8: {exc}") from exc


class _StructSerde(Serde[T]):
    """A fixed-width number; a payload of another size is an error, as in Kafka."""

    codec: struct.Struct
    kind: str

    def deserialize(self, topic: str, data: bytes | None) -> T | None:
        if data is None:
            return None
        if len(data) == self.codec.size:
            found: T = self.codec.unpack(data)[0]
            return found
        return self.from_bytes(data)

    def to_bytes(self, value: T) -> bytes:
        try:
            return self.codec.pack(value)
        except struct.error as exc:
            raise SerializationError(f"{self.kind}: {value!r}: {exc}") from exc

    def from_bytes(self, data: bytes) -> T:
        if len(data) != self.codec.size:
            raise SerializationError(
                f"Size of data received by {self.kind}Deserializer is not {self.codec.size}")
        value: T = self.codec.unpack(data)[0]
        return value


class IntegerSerde(_StructSerde[int]):
    """Kafka's IntegerSerializer: 4 bytes, big-endian, signed."""

    codec = _INT
    kind = "Integer"


class LongSerde(_StructSerde[int]):
    """Kafka's LongSerializer: 8 bytes, big-endian, signed."""

    codec = _LONG
    kind = "Long"


class DoubleSerde(_StructSerde[float]):
    """Kafka's DoubleSerializer: IEEE 754 binary64, big-endian."""

    codec = _DOUBLE
    kind = "Double"


class JsonSerde(Serde[Any]):
    """JSON via orjson; `default` converts types orjson does not know (dataclasses and
    datetimes it knows already)."""

    def __init__(self, default: Callable[[Any], Any] | None = None) -> None:
        self._default = default

    def to_bytes(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value, default=self._default)
        except TypeError as exc:
            raise SerializationError(f"JSON: {exc}") from exc

    def from_bytes(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"JSON: {exc}") from exc


class SchemaRegistryClient(Protocol):
    """What `SchemaRegistrySerde` needs from a schema registry."""

    def register(self, subject: str, schema: str) -> int: ...

    def schema(self, schema_id: int) -> str: ...


class SchemaCodec(Protocol):
    """Encodes values under a schema (Avro, Protobuf, JSON Schema: the application's)."""

    def encode(self, schema: str, value: Any) -> bytes: ...

    def decode(self, schema: str, payload: bytes) -> Any: ...


class SchemaRegistrySerde(Serde[Any]):
    """Confluent's wire format around a codec: 0x00, the schema id (4 bytes BE), payload.

    The subject follows the TopicNameStrategy (`<topic>-key` or `<topic>-value`); the
    schema is registered once per subject and its id cached.
    """

    def __init__(self, registry: SchemaRegistryClient, codec: SchemaCodec, schema: str, *,
                 is_key: bool = False) -> None:
        self._registry = registry
        self._codec = codec
        self._schema = schema
        self._suffix = "-key" if is_key else "-value"
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, str] = {}

    def serialize(self, topic: str, value: Any) -> bytes | None:
        if value is None:
            return None
        subject = topic + self._suffix
        schema_id = self._ids.get(subject)
        if schema_id is None:
            schema_id = self._ids[subject] = self._registry.register(subject, self._schema)
        return _SCHEMA_HEADER.pack(0, schema_id) + self._codec.encode(self._schema, value)

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) < _SCHEMA_HEADER.size or data[0] != 0:
            raise SerializationError("Unknown magic byte!")
        schema_id = _SCHEMA_HEADER.unpack_from(data)[1]
        schema = self._schemas.get(schema_id)
        if schema is None:
            schema = self._schemas[schema_id] = self._registry.schema(schema_id)
        return self._codec.decode(schema, bytes(data[_SCHEMA_HEADER.size:]))


class TimeWindowedSerde(Serde["Windowed"]):
    """A time-windowed key: the inner key's bytes then the window start (8 bytes BE), as
    Kafka's TimeWindowedSerializer writes it. The end is start + `window_size_ms`."""

    def __init__(self, inner: Serde[Any] | None, window_size_ms: int) -> None:
        self.inner: Serde[Any] = inner  # type: ignore[assignment]  # None until resolved
        self.window_size_ms = window_size_ms

    def resolved(self, default: Serde[Any]) -> Serde[Windowed]:
        return self if self.inner is not None else TimeWindowedSerde(default, self.window_size_ms)

    def serialize(self, topic: str, value: Windowed | None) -> bytes | None:
        if value is None:
            return None
        key = self.inner.serialize(topic, value.key) or b""
        return key + _LONG.pack(value.window.start)

    def deserialize(self, topic: str, data: bytes | None) -> Windowed | None:
        from strom.streams.windows import Window, Windowed

        if data is None:
            return None
        start = _LONG.unpack_from(data, len(data) - 8)[0]
        key = self.inner.deserialize(topic, bytes(data[:-8]))
        return Windowed(key, Window(start, start + self.window_size_ms))


class SessionWindowedSerde(Serde["Windowed"]):
    """A session-windowed key: inner key, end, start (8 bytes BE each), as Kafka's
    SessionWindowedSerializer (SessionKeySchema) writes it."""

    def __init__(self, inner: Serde[Any] | None) -> None:
        self.inner: Serde[Any] = inner  # type: ignore[assignment]  # None until resolved

    def resolved(self, default: Serde[Any]) -> Serde[Windowed]:
        return self if self.inner is not None else SessionWindowedSerde(default)

    def serialize(self, topic: str, value: Windowed | None) -> bytes | None:
        if value is None:
            return None
        key = self.inner.serialize(topic, value.key) or b""
        return key + _LONG.pack(value.window.end) + _LONG.pack(value.window.start)

    def deserialize(self, topic: str, data: bytes | None) -> Windowed | None:
        from strom.streams.windows import Window, Windowed

        if data is None:
            return None
        end, start = struct.unpack_from(">qq", data, len(data) - 16)
        return Windowed(self.inner.deserialize(topic, bytes(data[:-16])), Window(start, end))


class Serdes:
    """Shared instances, Kafka-style: `Serdes.String`, `Serdes.Long`, ..."""

    Bytes: Serde[bytes] = BytesSerde()
    String: Serde[str] = StringSerde()
    Integer: Serde[int] = IntegerSerde()
    Long: Serde[int] = LongSerde()
    Double: Serde[float] = DoubleSerde()
    Json: Serde[Any] = JsonSerde()

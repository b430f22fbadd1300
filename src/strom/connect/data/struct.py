"""`Struct`: a value of a STRUCT schema, fields by name, validated against the schema.

Kafka's Struct is mutable until sent, and `put` checks each value against the field's
schema at once, so an error names the field where it was made rather than surfacing
later in a converter. `equals` compares schema and values, which transforms' tests and
the JSON converter's round trips rely on.
"""

from __future__ import annotations

from typing import Any

from strom.connect.api.errors import DataError
from strom.connect.data.schema import Schema, Type, validate_value


class Struct:
    """Field values of one STRUCT schema."""

    __slots__ = ("_values", "schema")

    def __init__(self, schema: Schema) -> None:
        if schema.type is not Type.STRUCT:
            raise DataError("Not a struct schema: " + repr(schema))
        self.schema = schema
        self._values: list[Any] = [None] * len(schema.fields)

    def put(self, name: str, value: Any) -> Struct:
        """Set field `name`; DataError for an unknown field or a value that does not fit."""
        found = self._lookup(name)
        validate_value(found.schema, value, name)
        self._values[found.index] = value
        return self

    def get(self, name: str) -> Any:
        """The field's value, or its schema default when unset."""
        found = self._lookup(name)
        value = self._values[found.index]
        return found.schema.default if value is None else value

    def get_without_default(self, name: str) -> Any:
        return self._values[self._lookup(name).index]

    def validate(self) -> None:
        for f in self.schema.fields:
            validate_value(f.schema, self._values[f.index], f.name)

    def items(self) -> list[tuple[str, Any]]:
        return [(f.name, self.get(f.name)) for f in self.schema.fields]

    def _lookup(self, name: str) -> Any:
        found = self.schema.field(name)
        if found is None:
            raise DataError(f"{name} is not a valid field name")
        return found

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Struct) and self.schema == other.schema
                and self._values == other._values)

    def __hash__(self) -> int:
        return hash((self.schema.name, tuple(map(repr, self._values))))

    def __repr__(self) -> str:
        inner = ",".join(f"{name}={value!r}" for name, value in self.items())
        return f"Struct{{{inner}}}"

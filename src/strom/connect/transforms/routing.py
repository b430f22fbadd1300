"""Topic routing and filtering: RegexRouter, TimestampRouter, Filter, and the predicates
TopicNameMatches, HasHeaderKey, RecordIsTombstone.

Java regular expressions and Python's agree on the patterns routers use; replacements
are written Java's way (`$1`) and translated once at configure time.
"""

from __future__ import annotations

import re
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance, non_empty_string
from strom.connect.api.errors import ConfigError, DataError
from strom.connect.api.records import ConnectRecord
from strom.connect.data.schema import from_epoch_millis
from strom.connect.transforms.base import Predicate, Transformation
from strom.connect.transforms.javatime import format_java, tokens


def _compile(name: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(name, pattern, "Invalid regex: " + str(exc)) from exc


def java_replacement(replacement: str) -> str:
    """A Java Matcher replacement (`$1`, `${name}`, `\\$`) in Python's `\\g<1>` syntax."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        ch = replacement[i]
        if ch == "\\" and i + 1 < len(replacement):
            out.append(replacement[i + 1].replace("\\", "\\\\"))
            i += 2
        elif ch == "$":
            match = re.match(r"\$(?:\{(\w+)\}|(\d))", replacement[i:])
            if match is None:
                raise ConfigError("replacement", replacement, "Illegal group reference")
            out.append(f"\\g<{match.group(1) or match.group(2)}>")
            i += match.end()
        else:
            out.append(ch.replace("\\", "\\\\"))
            i += 1
    return "".join(out)


class RegexRouter(Transformation):
    """Rename the topic when the whole name matches `regex`."""

    def config(self) -> ConfigDef:
        return (ConfigDef()
                .define("regex", ConfigType.STRING, importance=Importance.HIGH,
                        documentation="Regular expression to use for matching.")
                .define("replacement", ConfigType.STRING, importance=Importance.HIGH,
                        documentation="Replacement string."))

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.regex = _compile("regex", self.settings.get_string("regex"))
        self.replacement = java_replacement(self.settings.get_string("replacement"))

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        if self.regex.fullmatch(record.topic) is None:
            return record
        topic = self.regex.sub(self.replacement, record.topic, count=1)
        return record.new_record(topic, record.kafka_partition, record.key_schema, record.key,
                                 record.value_schema, record.value, record.timestamp)


class TimestampRouter(Transformation):
    """Route to `topic.format` with ${topic} and ${timestamp} (the record's, formatted)."""

    def config(self) -> ConfigDef:
        return (ConfigDef()
                .define("topic.format", ConfigType.STRING, "${topic}-${timestamp}", Importance.HIGH,
                        "Format string which can contain ${topic} and ${timestamp} as placeholders.",
                        validator=non_empty_string)
                .define("timestamp.format", ConfigType.STRING, "yyyyMMdd", Importance.HIGH,
                        "Format string for the timestamp that is compatible with "
                        "java.text.SimpleDateFormat.", validator=non_empty_string))

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.topic_format = self.settings.get_string("topic.format")
        self.timestamp_format = self.settings.get_string("timestamp.format")
        tokens(self.timestamp_format)

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        if record.timestamp is None:
            raise DataError(f"Timestamp missing on record: {record}")
        stamp = format_java(from_epoch_millis(record.timestamp), self.timestamp_format)
        topic = self.topic_format.replace("${topic}", record.topic).replace("${timestamp}", stamp)
        return record.new_record(topic, record.kafka_partition, record.key_schema, record.key,
                                 record.value_schema, record.value, record.timestamp)


class Filter(Transformation):
    """Drop every record it is applied to; used with a predicate."""

    def config(self) -> ConfigDef:
        return ConfigDef()

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        return None


class TopicNameMatches(Predicate):
    """True when the whole topic name matches `pattern`."""

    def config(self) -> ConfigDef:
        return ConfigDef().define("pattern", ConfigType.STRING, importance=Importance.MEDIUM,
                                  documentation="A Java regular expression for matching against the "
                                                "name of a record's topic.",
                                  validator=non_empty_string)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.pattern = _compile("pattern", self.settings.get_string("pattern"))

    def test(self, record: ConnectRecord) -> bool:
        return record.topic is not None and self.pattern.fullmatch(record.topic) is not None


class HasHeaderKey(Predicate):
    """True when the record has at least one header called `name`."""

    def config(self) -> ConfigDef:
        return ConfigDef().define("name", ConfigType.STRING, importance=Importance.MEDIUM,
                                  documentation="The header name.", validator=non_empty_string)

    def configure(self, configs: Any) -> None:
        super().configure(configs)
        self.name = self.settings.get_string("name")

    def test(self, record: ConnectRecord) -> bool:
        return record.headers.last_with_name(self.name) is not None


class RecordIsTombstone(Predicate):
    """True when the value is null."""

    def config(self) -> ConfigDef:
        return ConfigDef()

    def test(self, record: ConnectRecord) -> bool:
        return record.value is None

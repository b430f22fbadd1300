"""Converters between Connect data and bytes: JSON (Kafka's envelope), string, bytes."""

from strom.connect.converters.base import NULL, Converter, SchemaAndValue
from strom.connect.converters.json_converter import JsonConverter
from strom.connect.converters.simple import ByteArrayConverter, StringConverter

__all__ = ["NULL", "ByteArrayConverter", "Converter", "JsonConverter", "SchemaAndValue",
           "StringConverter"]

"""The base of the DSL's stateful processors."""

from __future__ import annotations

from typing import Any

from strom.streams.processor import Processor, ProcessorContext


class StoreProcessor(Processor):
    """A processor working on one state store: named when the topology is built, looked
    up when the task initialises the processor (the store exists only in the task)."""

    def __init__(self, store: str) -> None:
        self._store_name = store

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self._store: Any = context.get_state_store(self._store_name)

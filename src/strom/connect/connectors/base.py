"""What most built-in connectors are: one ConfigDef, checked when the connector starts,
and tasks that each get the connector's own properties. The connector itself holds
nothing (its tasks own files, clients and connections), so it has nothing to release.

A connector lists its definition in `config_def` and its task class in `task_class`;
one that splits work among its tasks overrides `task_configs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from strom.connect.api.config import ConfigDef
from strom.connect.api.connector import Connector
from strom.connect.version import VERSION


class PropsConnector(Connector):
    """Mixed in before SourceConnector or SinkConnector."""

    config_def: ClassVar[ConfigDef]
    max_tasks: ClassVar[int | None] = None  # None: as many as `tasks.max` asks

    def version(self) -> str:
        return VERSION

    def config(self) -> ConfigDef:
        return self.config_def

    def start(self, props: Mapping[str, str]) -> None:
        self.config_def.parse(props)  # a bad config fails the connector, not its tasks
        self.props = dict(props)

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        count = max_tasks if self.max_tasks is None else min(max_tasks, self.max_tasks)
        return [dict(self.props) for _ in range(count)]

    def stop(self) -> None:
        """Nothing to release: the tasks own what they open."""

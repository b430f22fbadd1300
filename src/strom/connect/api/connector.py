"""What a connector author subclasses: `SourceConnector` or `SinkConnector`.

As in Kafka Connect, a connector is the configuration-level object: it validates its
config (`config()` returns a `ConfigDef`), splits the work into at most `max_tasks` task
configs (`task_configs`), and names its task class. The runtime starts the tasks, each
on its own thread. A connector never imports the runtime; the runtime hands it a
`ConnectorContext` to ask for a reconfiguration or to report a failure.

    class MySource(SourceConnector):
        def version(self) -> str: return "1.0"
        def config(self) -> ConfigDef: return ConfigDef().define("topic", Type.STRING, ...)
        def start(self, props): self.props = props
        def task_class(self): return MySourceTask
        def task_configs(self, max_tasks): return [self.props]
        def stop(self): pass
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from strom.connect.api.config import ConfigDef, ConfigValue
    from strom.connect.api.task import Task


class ConnectorContext(Protocol):
    """The runtime, as far as a connector may see it."""

    def request_task_reconfiguration(self) -> None:
        """Ask the runtime to call `task_configs` again and restart the tasks."""

    def raise_error(self, error: Exception) -> None:
        """Fail the connector (its status becomes FAILED with this error's trace)."""


class ExactlyOnceSupport(Enum):
    SUPPORTED = "SUPPORTED"
    UNSUPPORTED = "UNSUPPORTED"


class Connector(ABC):
    """The base of both kinds; see the module docstring."""

    context: ConnectorContext | None = None

    def initialize(self, context: ConnectorContext) -> None:
        self.context = context

    @abstractmethod
    def version(self) -> str:
        """The connector's version, shown by `/connector-plugins`."""

    @abstractmethod
    def start(self, props: Mapping[str, str]) -> None:
        """Start with a validated config (values as strings, as Kafka passes them)."""

    @abstractmethod
    def task_class(self) -> type[Task]:
        """The task class the runtime instantiates."""

    @abstractmethod
    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        """One config per task to run, at most `max_tasks` of them."""

    @abstractmethod
    def stop(self) -> None:
        """Release what `start` acquired."""

    @abstractmethod
    def config(self) -> ConfigDef:
        """The connector's own configuration definition."""

    def validate(self, connector_configs: Mapping[str, str]) -> list[ConfigValue]:
        """Each definition's value and errors (Kafka's Connector.validate)."""
        return self.config().validate(connector_configs)

    def alter_offsets(self, config: Mapping[str, str], offsets: Mapping[Any, Any]) -> bool:
        """Called before offsets are altered or reset (KIP-875); None offsets mean reset.
        Return True if the connector handled offsets it keeps outside Connect too; raise
        to refuse the change. The default, False, lets Connect change its own offsets and
        says that external ones are untouched (Kafka's wording in the REST answer)."""
        return False


class SourceConnector(Connector):
    """A connector whose tasks read from another system and write to Kafka."""

    def exactly_once_support(self, props: Mapping[str, str]) -> ExactlyOnceSupport | None:
        return None


class SinkConnector(Connector):
    """A connector whose tasks read from Kafka and write to another system."""

    TOPICS_CONFIG = "topics"
    TOPICS_REGEX_CONFIG = "topics.regex"

"""Helpers for the Java interop suite (tests/interop): a broker as a target for Kafka's
own command-line tools, run from the jars `tools/kafka_dist.py` keeps in its cache."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import kafka_dist  # noqa: E402

TOOL_TIMEOUT = 120


@dataclass
class Target:
    """A running broker (Strom, or Apache Kafka as the oracle) the Java clients and tools
    are pointed at."""

    name: str
    bootstrap: str
    node_id: int

    def tool(self, main_class: str, *args: str, input: str | None = None,
             timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run one of Kafka's tools, e.g. `TopicCommand`, `consumer.ConsoleConsumer`."""
        if not main_class.startswith(("org.", "kafka.")):
            main_class = "org.apache.kafka.tools." + main_class
        return kafka_dist.run_tool(main_class, *args, input=input, timeout=timeout)

    def tool_ok(self, main_class: str, *args: str, input: str | None = None,
                timeout: float = TOOL_TIMEOUT) -> str:
        """Run a tool, assert it exited 0, and return its stdout."""
        result = self.tool(main_class, *args, input=input, timeout=timeout)
        assert result.returncode == 0, (
            f"{main_class} {' '.join(args)} exited {result.returncode} against {self.name}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
        return result.stdout

    def tool_popen(self, main_class: str, *args: str) -> subprocess.Popen[str]:
        """Start a long-running tool (e.g. a console consumer in a group)."""
        if not main_class.startswith(("org.", "kafka.")):
            main_class = "org.apache.kafka.tools." + main_class
        return subprocess.Popen(kafka_dist.tool_command(main_class, *args), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

"""pytest fixtures for a Strom broker in the test process; loaded automatically.

Installing Strom registers this module under pytest's `pytest11` entry point as the
plugin ``strom`` (disable it with ``-p no:strom``). A test only names a fixture:

    def test_orders(strom_bootstrap):
        producer = Producer({"bootstrap.servers": strom_bootstrap})

- `strom_broker` (session): one `StromBroker` for the whole run, started at first use.
  Override `strom_broker_properties` (session) in a `conftest.py` to configure it.
- `strom_bootstrap` (session): its ``host:port``.
- `strom_broker_factory` (function): ``start(**StromBroker kwargs)`` returns a started
  broker of the test's own; all are stopped when the test ends.

The plugin defines fixtures and nothing else: no hooks, no options, no broker code
imported until a fixture is used, so suites that never ask for a broker pay nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strom.testing.broker import PropertyValue, StromBroker

BrokerFactory = Callable[..., StromBroker]


@pytest.fixture(scope="session")
def strom_broker_properties() -> dict[str, PropertyValue]:
    """Broker properties of the session broker; override this fixture to set some."""
    return {}


@pytest.fixture(scope="session")
def strom_broker(strom_broker_properties: dict[str, PropertyValue]) -> Iterator[StromBroker]:
    """One broker shared by every test of the session; tests keep to their own topics
    (and group ids), as they would on a shared Kafka cluster."""
    with StromBroker(properties=strom_broker_properties) as broker:
        yield broker


@pytest.fixture(scope="session")
def strom_bootstrap(strom_broker: StromBroker) -> str:
    """``bootstrap.servers`` of the session broker."""
    return strom_broker.bootstrap_servers


@pytest.fixture
def strom_broker_factory() -> Iterator[BrokerFactory]:
    """Brokers of one test's own (custom properties, restarts, several at once)."""
    with contextlib.ExitStack() as stopping:  # stops every broker even if one stop fails

        def start(**kwargs: Any) -> StromBroker:
            broker = StromBroker(**kwargs)
            stopping.callback(broker.stop)
            return broker.start()

        yield start

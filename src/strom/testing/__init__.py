"""Strom for the tests of Python applications: a real broker inside the test process.

`StromBroker` runs the broker `strom server` runs, on a background thread, on a free
loopback port with a throw-away data dir; `strom.testing.pytest_plugin` (registered as a
pytest plugin when Strom is installed) offers it as the `strom_broker`, `strom_bootstrap`
and `strom_broker_factory` fixtures. Nothing in `strom` itself imports this package, and
importing it loads no broker code until a broker starts.
"""

from strom.testing.broker import TEST_DEFAULTS, BrokerThreadError, StromBroker, free_port

__all__ = ["TEST_DEFAULTS", "BrokerThreadError", "StromBroker", "free_port"]

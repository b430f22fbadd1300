"""Running a broker in the foreground until SIGINT or SIGTERM, then stopping cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from strom.cli import logs
from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig


def parse_overrides(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidConfig(f"--override expects key=value, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _skip_test_only_imports() -> None:
    """kio registers Hypothesis strategies whenever Hypothesis is importable, which costs a
    broker ~0.2 s of startup on machines with the test extras installed. A broker never
    needs them, so the import is made to fail (kio treats that as "not installed")."""
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]


def run(config_path: Path | None, override_items: list[str], log_level: str,
        log_format: str = "text") -> int:
    _skip_test_only_imports()
    try:
        logs.configure(log_level, log_format)
    except ValueError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return 2
    try:
        config = BrokerConfig.from_file(config_path, parse_overrides(override_items))
        _check(config)
    except (InvalidConfig, OSError) as exc:
        print(f"strom: invalid configuration: {exc}", file=sys.stderr)
        return 2
    import uvloop

    return uvloop.run(_serve(config))


def _check(config: BrokerConfig) -> None:
    """Refuse, before anything is opened or bound, what the broker would get wrong:
    listeners whose security protocol Strom does not speak, malformed connection limits."""
    from strom.broker.network.connection_limits import ConnectionLimits
    from strom.config.security_protocols import check_listeners

    check_listeners(config)
    from strom.broker.security.listener import check as check_listener_security

    check_listener_security(config)  # keystores, truststores, SASL users load
    from strom.broker.observability.admin_access import AdminAccess

    AdminAccess.from_config(config)  # the metrics port's credentials and certificate
    ConnectionLimits(config)


async def _serve(config: BrokerConfig) -> int:
    from strom.broker.server import Broker
    from strom.cluster.store import InconsistentClusterId

    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await broker.start()
    except (OSError, InconsistentClusterId) as exc:
        logging.getLogger("strom").error("cannot start: %s", exc)
        return 1
    print(f"strom broker {broker.broker_id} ready on "
          f"{', '.join(str(p) for p in broker.bound_ports)}", flush=True)
    if broker.metrics_url is not None:
        print(f"strom broker {broker.broker_id} metrics on {broker.metrics_url} "
              "(also /healthz, /readyz)", flush=True)
    await stop.wait()
    await broker.stop()
    return 0

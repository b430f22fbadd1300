"""Client quotas per broker, as Kafka's ClientQuotaManager applies them.

One `ClientQuotaManager` per quota key (`producer_byte_rate` for Produce,
`consumer_byte_rate` for consumer Fetch). Each client is measured by a sensor whose key
(Kafka's metric tags: a user and a client id, either possibly empty) says who shares the
measured rate, and whose bound is the quota found for it in Kafka's precedence order:

    1. users/<user>/clients/<client-id>      5. users/<default>/clients/<default>
    2. users/<user>/clients/<default>        6. users/<default>
    3. users/<user>                          7. clients/<client-id>
    4. users/<default>/clients/<client-id>   8. clients/<default>

The key follows the kinds of entity that have this quota at all (Kafka's
`quotaTypesEnabled`): only client-id entities → one sensor per client id; only user
entities → per user (all of a user's clients share it); only (user, client) → per pair;
several kinds → the first level above that exists decides, so a quota on `users/alice`
is shared by all of alice's clients while `clients/<default>` gives every other client id
its own. With no entity holding the key, nothing is recorded at all: the check is one
attribute read on the request path.

The user is the principal's name (`User:alice` → `alice`, anonymous → `ANONYMOUS`).
Sensors idle for an hour are dropped (Kafka's inactive sensor expiry).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from strom.broker.quotas.rate import Rate, throttle_time_ms
from strom.cluster.quotas import DEFAULT, desanitize, parse_value, sanitize

USER_LEVEL, CLIENT_LEVEL, PAIR_LEVEL = 1, 2, 4
INACTIVE_MS = 3_600_000
_sanitized = functools.lru_cache(maxsize=4096)(sanitize)  # per principal, not per request
_DEF = "\x00<default>"  # the default entity: unlike any sanitized user or real client id
_SWEEP_EVERY_MS = 60_000

Key = tuple[str, str]
"""A sensor's metric tags: (sanitized user or "", client id or "")."""


@dataclass
class Sensor:
    """One measured client (or group of clients sharing a quota)."""

    rate: Rate
    bound: float | None
    last_ms: int
    throttle_ms_total: int = 0
    throttled: int = 0
    bytes_total: float = 0.0


@dataclass
class QuotaTable:
    """One quota key's values by (user part, client part) of the entity path (sanitized
    names, `<default>`, or None for an absent part), and which kinds are present."""

    values: dict[tuple[str | None, str | None], float] = field(default_factory=dict)
    """By (sanitized user, client id): `_DEF` for a default entity, None when absent."""
    kinds: int = 0

    @classmethod
    def build(cls, client_quotas: Mapping[str, Mapping[str, str]], key: str) -> QuotaTable:
        table = cls()
        for path, quotas in client_quotas.items():
            text = quotas.get(key)
            if text is None:
                continue
            parts = path.split("/")
            user = _part(parts[1], sanitized=True) if parts[0] == "users" else None
            client = _part(parts[-1], sanitized=False) if parts[-2] == "clients" else None
            table.values[(user, client)] = parse_value(text)
            table.kinds |= (PAIR_LEVEL if user is not None and client is not None
                            else USER_LEVEL if user is not None else CLIENT_LEVEL)
        return table

    def key(self, user: str, client: str) -> Key:
        """Kafka's quotaMetricTags for a sanitized user and a client id."""
        kinds = self.kinds
        if kinds in (0, CLIENT_LEVEL):
            return "", client
        if kinds == USER_LEVEL:
            return user, ""
        if kinds == PAIR_LEVEL:
            return user, client
        has = self.values.__contains__
        if has((user, client)) or has((user, _DEF)):
            return user, client
        if has((user, None)):
            return user, ""
        if has((_DEF, client)) or has((_DEF, _DEF)):
            return user, client
        if has((_DEF, None)):
            return user, ""
        return "", client

    def bound(self, key: Key) -> float | None:
        """The quota of a sensor key (Kafka's quotaLimit), None when none applies."""
        user, client = key
        get = self.values.get
        if user and client:
            levels: tuple[tuple[str | None, str | None], ...] = (
                (user, client), (user, _DEF), (_DEF, client), (_DEF, _DEF))
        elif user:
            levels = ((user, None), (_DEF, None))
        elif client:
            levels = ((None, client), (None, _DEF))
        else:
            return None
        for level in levels:
            value = get(level)
            if value is not None:
                return value
        return None


def _part(name: str, *, sanitized: bool) -> str:
    """A path part as the table keys it: users stay sanitized (Kafka's metric tag),
    client ids are the client's own."""
    if name == DEFAULT:
        return _DEF
    return name if sanitized else desanitize(name)


class ClientQuotaManager:
    """The sensors and bounds of one quota key on this broker."""

    def __init__(self, key: str, samples: int = 11, window_ms: int = 1000) -> None:
        self.key = key
        self.samples = samples
        self.window_ms = window_ms
        self.enabled = False
        self.table = QuotaTable()
        self.sensors: dict[Key, Sensor] = {}
        self._swept_ms = 0

    def update(self, client_quotas: Mapping[str, Mapping[str, str]]) -> None:
        """New quotas from a metadata image: bounds of existing sensors follow (their
        samples stay, as Kafka changes a metric's config in place)."""
        table = QuotaTable.build(client_quotas, self.key)
        if table.values == self.table.values:
            return
        self.table = table
        self.enabled = bool(table.values)
        if not self.enabled:
            self.sensors.clear()
            return
        for key, sensor in self.sensors.items():
            sensor.bound = table.bound(key)

    def sensor(self, user: str, client_id: str, now_ms: int) -> Sensor:
        key = self.table.key(_sanitized(user), client_id)
        sensor = self.sensors.get(key)
        if sensor is None:
            self._sweep(now_ms)
            sensor = self.sensors[key] = Sensor(Rate(self.samples, self.window_ms),
                                                self.table.bound(key), now_ms)
        return sensor

    def record(self, user: str, client_id: str, value: float, now_ms: int) -> int:
        """Record `value` for this client; the throttle time in ms (0: within quota)."""
        sensor = self.sensor(user, client_id, now_ms)
        sensor.last_ms = now_ms
        sensor.rate.record(value, now_ms)
        sensor.bytes_total += value
        bound = sensor.bound
        if bound is None:
            return 0
        rate = sensor.rate.measure(now_ms)
        if rate <= bound:
            return 0
        return throttle_time_ms(rate, bound, sensor.rate.window_size_ms(now_ms))

    def unrecord(self, user: str, client_id: str, value: float, now_ms: int) -> None:
        """Take back a recorded value (a throttled fetch answers nothing)."""
        sensor = self.sensor(user, client_id, now_ms)
        sensor.rate.record(-value, now_ms)
        sensor.bytes_total -= value

    def throttled(self, user: str, client_id: str, throttle_ms: int, now_ms: int) -> None:
        """Count a throttle (the broker mutes the connection for it)."""
        sensor = self.sensor(user, client_id, now_ms)
        sensor.throttle_ms_total += throttle_ms
        sensor.throttled += 1

    def max_value_in_window(self, user: str, client_id: str, now_ms: int) -> float | None:
        """The most one request may take without being throttled for sure (Kafka caps a
        consumer's fetch size with it); None without a quota."""
        bound = self.sensor(user, client_id, now_ms).bound
        if bound is None:
            return None
        return bound * (self.samples - 1) * self.window_ms / 1000

    def _sweep(self, now_ms: int) -> None:
        if now_ms - self._swept_ms < _SWEEP_EVERY_MS:
            return
        self._swept_ms = now_ms
        for key in [k for k, s in self.sensors.items() if now_ms - s.last_ms > INACTIVE_MS]:
            del self.sensors[key]

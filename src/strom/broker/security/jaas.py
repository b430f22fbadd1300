"""Kafka's inline JAAS text (`sasl.jaas.config`), parsed as data, never executed.

    org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="admin-secret" user_alice="alice-secret";

One or more entries `<login module class> <flag> (<option>=<value>)* ;`, the flag one of
required / requisite / sufficient / optional, a value a bare word or a double-quoted
string (backslash escapes). For PLAIN, the `user_<name>="<password>"` options are the
users a broker accepts (Kafka's PlainServerCallbackHandler).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.config.defs import InvalidConfig

FLAGS = frozenset({"required", "requisite", "sufficient", "optional"})
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class LoginModule:
    name: str
    flag: str
    options: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # options hold passwords: never in a log line
        return f"LoginModule({self.name}, {self.flag}, options={sorted(self.options)})"


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Words, '=' and ';' as (token, quoted); quoted strings unescaped."""
    tokens: list[tuple[str, bool]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "=;":
            tokens.append((char, False))
            i += 1
        elif char == '"':
            value, i = _quoted(text, i + 1)
            tokens.append((value, True))
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in '=;"':
                i += 1
            tokens.append((text[start:i], False))
    return tokens


def _quoted(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise InvalidConfig("sasl.jaas.config: unterminated quoted value")


def parse(text: str) -> list[LoginModule]:
    """Every login module entry of a JAAS config value; InvalidConfig (without the
    value, which holds secrets) when malformed."""
    tokens = _tokens(text)
    modules: list[LoginModule] = []
    i = 0
    while i < len(tokens):
        name, flag = tokens[i][0], tokens[i + 1][0] if i + 1 < len(tokens) else ""
        if flag.lower() not in FLAGS or name in ("=", ";"):
            raise InvalidConfig("sasl.jaas.config: expected '<LoginModule> <flag>' where "
                                "flag is required, requisite, sufficient or optional")
        i += 2
        options: dict[str, str] = {}
        while i < len(tokens) and tokens[i] != (";", False):
            if i + 2 >= len(tokens) or tokens[i + 1] != ("=", False):
                raise InvalidConfig("sasl.jaas.config: expected option=value or ';'")
            options[tokens[i][0]] = tokens[i + 2][0]
            i += 3
        if i >= len(tokens):
            raise InvalidConfig("sasl.jaas.config: an entry does not end with ';'")
        i += 1
        modules.append(LoginModule(name, flag.lower(), options))
    if not modules:
        raise InvalidConfig("sasl.jaas.config has no login module")
    return modules


def plain_users(text: str) -> dict[str, str]:
    """The users a PLAIN listener accepts: `user_<name>` options of PlainLoginModule."""
    users: dict[str, str] = {}
    for module in parse(text):
        if module.name != PLAIN_MODULE:
            continue
        for key, value in module.options.items():
            if key.startswith("user_") and len(key) > len("user_"):
                users[key[len("user_"):]] = value
    return users

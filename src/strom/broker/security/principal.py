"""The principal of a TLS client: its certificate's subject through Kafka's
`ssl.principal.mapping.rules`.

Kafka names a TLS client `User:<distinguished name>` (RFC 2253 form, most specific RDN
first), or whatever the first matching rule makes of it. A rule is
`RULE:pattern/replacement/[LU]`; the pattern must match the whole name, `$1`.. refer to
its groups, `L`/`U` fold the result's case; `DEFAULT` keeps the name as it is. A name no
rule matches fails the connection, as in Kafka. Without a certificate the principal is
`User:ANONYMOUS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANONYMOUS = "User:ANONYMOUS"


class NoMatchingRule(ValueError):
    """No `ssl.principal.mapping.rules` rule matched a certificate's name."""


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str = ""
    case: str = ""  # "", "L" or "U"

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        match = self.pattern.fullmatch(name)
        if match is None:
            return None
        result = match.expand(_java_template(self.replacement))
        if self.case == "L":
            return result.lower()
        return result.upper() if self.case == "U" else result


def _java_template(replacement: str) -> str:
    """Java's `$1` group references and `\\x` escapes as Python's `\\g<1>` template."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        char = replacement[i]
        if char == "\\" and i + 1 < len(replacement):
            out.append(replacement[i + 1].replace("\\", "\\\\"))
            i += 2
            continue
        if char == "$":
            digits = re.match(r"\d+", replacement[i + 1:])
            if digits:
                out.append(f"\\g<{digits.group()}>")
                i += 1 + len(digits.group())
                continue
        out.append("\\\\" if char == "\\" else char)
        i += 1
    return "".join(out)


def _until_slash(text: str, start: int) -> tuple[str, int]:
    """The text up to the next unescaped '/', and the index of that '/'."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "/":
            return text[start:i], i
        i += 1
    raise ValueError(f"Invalid rule: {text[start:]}")


def parse_rules(raw: str | None) -> list[Rule]:
    """Kafka's rule list: comma-separated `DEFAULT` and `RULE:p/r/[LU]` entries (a
    pattern may itself contain commas). An empty setting means DEFAULT."""
    text = (raw or "").strip()
    if not text:
        return [Rule(None)]
    rules: list[Rule] = []
    i = 0
    while i < len(text):
        i = _skip(text, i, " \t\n,")
        if i >= len(text):
            break
        if text.startswith("DEFAULT", i):
            rules.append(Rule(None))
            i += len("DEFAULT")
        elif text.startswith("RULE:", i):
            rule, i = _parse_rule(text, i + len("RULE:"))
            rules.append(rule)
        else:
            raise ValueError(f"Invalid rule: {text[i:]}")
    return rules


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _parse_rule(text: str, i: int) -> tuple[Rule, int]:
    pattern, i = _until_slash(text, i)
    replacement, i = _until_slash(text, i + 1)
    i += 1
    case = ""
    if i < len(text) and text[i] in "LU":
        case, i = text[i], i + 1
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"Invalid rule pattern {pattern!r}: {exc}") from exc
    return Rule(compiled, replacement, case), i


def map_name(rules: list[Rule], name: str) -> str:
    """The short name the first matching rule gives `name`."""
    for rule in rules:
        result = rule.apply(name)
        if result is not None:
            return result
    raise NoMatchingRule(f"No rules apply to {name}, rules {rules}")


def certificate_principal(der: bytes | None, rules: list[Rule]) -> str:
    """`User:<mapped subject>` of a DER certificate, `User:ANONYMOUS` without one."""
    if not der:
        return ANONYMOUS
    from cryptography import x509

    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return f"User:{map_name(rules, subject)}"

"""One module per API family; `registry` imports each, which registers its handlers."""

from __future__ import annotations


def register_all() -> None:
    """Fill the dispatch table (idempotent: a module registers once, when first imported).

    The import is here rather than at the top so that importing one handler module (a
    handler test) does not import them all.
    """
    from strom.broker.handlers import registry

    assert registry.MODULES  # the import is what registers

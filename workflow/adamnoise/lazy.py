"""Names a package exports but imports only when first used (their modules import torch)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` (PEP 562) for ``package``: ``where`` maps an exported name to
    the submodule that defines it, imported on first access."""

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

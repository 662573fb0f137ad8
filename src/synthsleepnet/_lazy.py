"""Attach a package's public names lazily: each is imported from its module on first use.

Keeps ``import synthsleepnet`` and the command line's start fast (no torch, pandas or SciPy until
something needs them), while ``__all__`` still lists the public API explicitly (MNE's
``lazy_loader`` pattern, in a dozen lines).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(package: str, api: Mapping[str, str], namespace: dict[str, Any]
           ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` serving ``api`` (name → relative module)."""

    def __getattr__(name: str) -> Any:
        if name in api:
            value = getattr(importlib.import_module(api[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(api))

    return __getattr__, __dir__

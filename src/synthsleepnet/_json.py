"""JSON that other tools can read: undefined numbers are written as null.

Python's ``json`` writes NaN and infinity as the bare words ``NaN`` and ``Infinity``, which jq,
JavaScript and most JSON readers refuse; an undefined statistic (the R latency of a night
without REM, an AHI without sleep) is NaN here, so every JSON a user or a tool reads goes
through :func:`strict_json`.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["strict_json"]


def _finite(value: Any) -> Any:
    """``value`` with NaN and ±inf as None, and NumPy scalars as Python numbers."""
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        value = value.item()  # a NumPy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def strict_json(value: Any, *, indent: int | None = 1) -> str:
    """``value`` as strict JSON (RFC 8259): NaN and ±inf become null.

    >>> strict_json({"TST_min": 3.0, "R_latency_min": float("nan")}, indent=None)
    '{"TST_min": 3.0, "R_latency_min": null}'
    """
    return json.dumps(_finite(value), indent=indent, allow_nan=False)

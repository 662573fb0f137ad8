"""Input checks with messages that name the value, what was allowed and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "AnnotationError",
    "ChannelNotFoundError",
    "PSGReadError",
    "SignalQualityError",
    "check_option",
    "check_path_exists",
    "check_positive",
]


class PSGReadError(ValueError):
    """A recording file cannot be read (not an EDF, truncated, inconsistent header)."""


class ChannelNotFoundError(ValueError):
    """A required channel or modality is absent from a recording."""


class SignalQualityError(ValueError):
    """A channel's samples are unusable (NaN, flat, implausible units)."""


class AnnotationError(ValueError):
    """A scoring file cannot be parsed or does not belong to the recording."""


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a ValueError that lists them."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_positive(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number above zero."""
    if not isinstance(value, int | float) or not value > 0 or value != value:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_path_exists(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path

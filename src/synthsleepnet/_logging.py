"""Package logging: one logger, a NullHandler, and a per-call ``verbose`` switch.

The library never configures the root logger; the CLI installs handlers.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import typing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["log_to_stderr", "logger", "set_log_level", "use_log_level", "verbose"]

logger = logging.getLogger("synthsleepnet")
logger.addHandler(logging.NullHandler())

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}

F = TypeVar("F", bound=Callable[..., Any])


def _as_level(value: bool | str | int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return logging.INFO if value else logging.WARNING
    if isinstance(value, int):
        return value
    key = str(value).lower()
    if key not in _LEVELS:
        raise ValueError(f"verbose must be a bool, an int or one of {sorted(_LEVELS)}, got {value!r}")
    return _LEVELS[key]


def set_log_level(value: bool | str | int) -> None:
    """Set the package log level for the rest of the session."""
    level = _as_level(value)
    if level is not None:
        logger.setLevel(level)


def log_to_stderr(level: int) -> None:
    """Print the package's records from ``level`` up to stderr as ``LEVEL: message``, replacing any
    handler installed before: what the command line and batch worker processes show."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)] + [handler]
    logger.setLevel(level)


@contextlib.contextmanager
def use_log_level(value: bool | str | int | None) -> Iterator[None]:
    """Apply a log level for the duration of a block, then restore the old one."""
    level = _as_level(value)
    if level is None:
        yield
        return
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def verbose(func: F) -> F:
    """Decorate a public function so its keyword-only ``verbose`` applies for the call only."""
    if "verbose" not in inspect.signature(func).parameters:
        raise TypeError(f"{func.__name__} must take a keyword-only 'verbose' parameter")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with use_log_level(kwargs.get("verbose")):
            return func(*args, **kwargs)

    return typing.cast(F, wrapper)

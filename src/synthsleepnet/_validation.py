"""Input checks with messages that name the value, what was allowed and the fix.

Every domain error is a ``ValueError`` subclass, so callers (and the CLI) catch one family, and
every message names the parameter or file, the value received and what is accepted (MNE's
``_check_option`` style).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the command line's --help imports these checks, not NumPy
    import numpy as np

__all__ = [
    "AnnotationError",
    "ChannelNotFoundError",
    "CheckpointError",
    "ConfigError",
    "FetchError",
    "ModelOutputError",
    "PSGReadError",
    "ResumeError",
    "SignalQualityError",
    "StoreError",
    "Lights",
    "check_fname",
    "check_fraction",
    "check_int",
    "check_option",
    "check_path_exists",
    "failure_text",
    "check_positive",
    "check_finite_output",
    "clock_time",
]

T = TypeVar("T")


class PSGReadError(ValueError):
    """A recording file cannot be read (not an EDF, truncated, inconsistent header)."""


class ChannelNotFoundError(ValueError):
    """A required channel or modality is absent from a recording."""


class SignalQualityError(ValueError):
    """A channel's samples are unusable (NaN, flat, implausible units)."""


class AnnotationError(ValueError):
    """A scoring file cannot be parsed or does not belong to the recording."""


class ConfigError(ValueError):
    """A setting (from a file, a flag or a checkpoint) has the wrong type or an invalid value."""


class CheckpointError(ValueError):
    """A checkpoint is damaged, of another kind than expected, or does not fit the data."""


class ResumeError(ValueError):
    """A run cannot be resumed: its saved state is damaged or belongs to another run."""


class ModelOutputError(ValueError):
    """A model produced non-finite outputs; they are never turned into a result."""


class StoreError(ValueError):
    """An epoch store lacks a night, a channel or a label asked for."""


class FetchError(ValueError):
    """A cohort's file or listing could not be fetched; the message says why and what to do."""


def check_option(name: str, value: T, allowed: Iterable[Any]) -> T:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a ValueError listing them.

    Examples
    --------
    >>> check_option("task", "stage", ["stage", "apnea"])
    'stage'
    """
    options = list(allowed)
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number above zero (or zero, if allowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        limit = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {limit}, got {value!r}")
    return float(value)


#: Lights off and on as clock times (``"22:45"`` or ``datetime.time``), None where not given.
Lights = tuple[str | dt.time | None, str | dt.time | None]


def clock_time(value: str | dt.time, name: str = "clock time") -> dt.time:
    """A time of day from ``HH:MM`` or ``HH:MM:SS`` (or a ``datetime.time``), e.g. lights off;
    ``name`` says which in an error.

    >>> clock_time("22:45"), clock_time("06:30:15")
    (datetime.time(22, 45), datetime.time(6, 30, 15))
    """
    if isinstance(value, dt.time):
        return value
    if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", str(value).strip()):
        raise ValueError(f"{name} must be HH:MM or HH:MM:SS (24-hour), got {value!r}")
    hour, minute, *second = (int(part) for part in str(value).strip().split(":"))
    try:
        return dt.time(hour, minute, second[0] if second else 0)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a time of day (hours 0-23, minutes and seconds 0-59)") from None


def failure_text(error: BaseException, *files: str | Path | None) -> str:
    """``Type: message`` for one night's or file's failure in a batch, naming the file: the
    message as it is when it names one of ``files`` already, else after the first of them.

    >>> failure_text(ValueError("night.edf: channel 'EEG' is flat"), "night.edf", "night.xml")
    "ValueError: night.edf: channel 'EEG' is flat"
    >>> failure_text(OSError("No space left on device"), "night.edf")
    'OSError: night.edf: No space left on device'
    """
    text = str(error)
    named = text if any(f is not None and str(f) in text for f in files) else f"{files[0]}: {text}"
    return f"{type(error).__name__}: {named}"


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` if it is an integer in ``[low, high]`` (bounds keep allocations sane)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def check_fraction(name: str, value: Any, *, closed_low: bool = False) -> float:
    """Return ``value`` if it lies in (0, 1] (or [0, 1] with ``closed_low``)."""
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) \
        and (0 <= value if closed_low else 0 < value) and value <= 1
    if not ok:
        raise ValueError(f"{name} must be in {'[' if closed_low else '('}0, 1], got {value!r}")
    return float(value)


def check_path_exists(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def check_fname(path: str | Path, *, overwrite: bool, what: str = "output") -> Path:
    """Return ``path`` if it may be written: refuse an existing one unless ``overwrite``.

    A folder where a file is expected (or a file where the folder of an output should be) is
    refused too, before any work is done.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{what} {path} exists; pass overwrite=True (--overwrite) to replace it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"cannot write {what} {path}: {parent} is a file, not a folder")
            break
    return path


def check_finite_output(values: np.ndarray, source: str, *, what: str = "probabilities") -> np.ndarray:
    """Return a model's per-epoch ``values`` if every one is finite; NaN or inf never become a result.

    A damaged or diverged model yields NaN; ``argmax`` would silently call every such epoch
    Wake. ``source`` names the model (its checkpoint) in the error.
    """
    import numpy as np

    bad = ~np.isfinite(values)
    if bad.any():
        rows = int(bad.reshape(len(values), -1).any(axis=1).sum()) if values.ndim else 1
        raise ModelOutputError(f"{source} produced non-finite {what} for {rows} of {len(values)} epochs "
                               "(NaN or inf): the model is damaged or diverged; no result is produced from it")
    return values

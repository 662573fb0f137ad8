"""Body position from a PSG's position channel: one position per second, in the codes its
recorder writes (:mod:`synthsleepnet.io.position_codes`: where they come from).

A night whose position codes are unknown, or whose channel holds values the codes do not name,
is scored without positional indices, with a note saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .position_codes import POSITIONS, UNKNOWN_POSITION, codes_from_transducer

if TYPE_CHECKING:
    from .channels import ChannelTable
    from .recording import Recording, Signal

__all__ = ["channel_codes", "decode_positions", "read_body_position"]

#: How far (in code units) a sample may lie from a whole number and still be read as that code.
CODE_TOLERANCE = 0.1
#: The share of a channel's samples allowed outside the codes (transitions, a few glitches).
MAX_UNNAMED_SHARE = 0.05


def decode_positions(values: np.ndarray, sfreq: float, codes: Mapping[int, str], *, source: str) -> np.ndarray:
    """One position per second from a position channel: the index in
    :data:`~synthsleepnet.io.position_codes.POSITIONS` of the
    code sampled nearest each second's middle, :data:`UNKNOWN_POSITION` where that sample names
    no position.

    Raises
    ------
    ValueError
        Naming ``source`` when more than :data:`MAX_UNNAMED_SHARE` of the samples are not codes
        of the table (another recorder's codes, or a continuous signal such as a voltage): the
        values found are listed, so the right table can be written.
    """
    x = np.asarray(values, dtype=float)
    if sfreq <= 0 or x.size == 0:
        raise ValueError(f"{source}: the position channel holds no samples")
    index = {code: POSITIONS.index(name) for code, name in codes.items()}
    finite = np.isfinite(x)
    nearest = np.round(np.where(finite, x, 0.0)).astype(np.int64)
    named = finite & (np.abs(x - nearest) <= CODE_TOLERANCE) & np.isin(nearest, list(index))
    unnamed = 1.0 - float(np.count_nonzero(named)) / x.size
    if unnamed > MAX_UNNAMED_SHARE:
        seen = np.unique(np.round(x[finite & ~named], 2))
        shown = ", ".join(f"{v:g}" for v in seen[:8]) + (", ..." if seen.size > 8 else "")
        raise ValueError(f"{source}: {100 * unnamed:.0f} % of the position samples are not among the codes "
                         f"{dict(codes)} (values {shown}); state the recorder's codes in a channel file's "
                         "[position] section")
    n_seconds = int(np.floor(x.size / sfreq + 1e-9))
    at = np.minimum(((np.arange(n_seconds) + 0.5) * sfreq).astype(np.int64), x.size - 1)
    keys = np.array(sorted(index), dtype=np.int64)
    positions = np.array([index[k] for k in sorted(index)], dtype=np.int8)
    out = np.full(n_seconds, UNKNOWN_POSITION, dtype=np.int8)
    ok = named[at]
    out[ok] = positions[np.searchsorted(keys, nearest[at][ok])]
    return out


def channel_codes(signal: Signal, table: ChannelTable) -> tuple[dict[int, str], str]:
    """The codes of a position channel and whence they come: its transducer field, else the
    channel file's ``[position]`` section; ``({}, "")`` when neither states them."""
    spelt = codes_from_transducer(signal.transducer)
    if spelt:
        return spelt, "its transducer field"
    return (dict(table.position_codes), "the channel file's [position] section") if table.position_codes else ({}, "")


def read_body_position(recording: Recording, table: ChannelTable) -> tuple[np.ndarray, str] | None:
    """The recording's body position at 1 Hz (:func:`decode_positions`) and the label it was read
    from; None when the recording has no position channel.

    Raises
    ------
    ValueError
        Naming the file and channel when its codes are unknown or do not fit its values.
    """
    label = table.position_label(recording.labels)
    if label is None:
        return None
    signal = recording.signal(label)
    codes, _ = channel_codes(signal, table)
    if not codes:
        raise ValueError(f"{recording.path}: {label}: its position codes are unknown (each recorder has its own); "
                         "state them in a channel file's [position] section, e.g. codes = { 0 = \"right\", "
                         "1 = \"supine\", 2 = \"left\", 3 = \"prone\" }")
    return decode_positions(signal.data, signal.sfreq, codes, source=f"{recording.path}: {label}"), label

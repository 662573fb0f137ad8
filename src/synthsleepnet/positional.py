"""Sleep and breathing by body position: the positional part of a sleep report (AASM: sleep
time and AHI supine and non-supine).

Definitions (positions at 1 Hz as :func:`~synthsleepnet.io.body_position.decode_positions` gives
them, −1 unknown; hypnogram codes 0 W, 1 N1, 2 N2, 3 N3, 4 R, −1 unscored; event onsets in
seconds from the recording start):

- **Sleep in a position**: the seconds of sleep epochs within time in bed spent in it; its share
  of the sleep whose position is known (``position_known_sleep_pct`` says how much that is).
- **AHI in a position**: apneas and hypopneas (every hypopnea, as the night's ``AHI``; with
  SpO2 also by the AASM 3 % and 4 % hypopnea rules) starting in sleep in bed, each in the
  position of its onset second, per hour of sleep in that position — not given (NaN) under
  :data:`MIN_SLEEP_MIN` minutes of sleep there (one event in 30 s of supine sleep would read as
  120/h). **Non-supine** is every known position but supine (lateral, prone, upright).
- **Positional OSA** (Cartwright's criterion): an AHI of at least 5/h with the supine AHI at
  least :data:`POSITIONAL_RATIO` times the non-supine one, both measured; None when either is not.
- **Position changes**: how often the known position changes within time in bed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .io.position_codes import POSITIONS, UNKNOWN_POSITION
from .respiratory import HYPOPNEA_RULES, counted_by_rule, seconds_asleep, seconds_in_bed
from .tasks import RESPIRATORY_EVENTS

__all__ = ["MIN_SLEEP_MIN", "POSITIONAL_RATIO", "describe_position", "epoch_positions", "position_measures"]

#: The least sleep (minutes) in a position for an AHI in it.
MIN_SLEEP_MIN = 15.0
#: Supine AHI over non-supine AHI from which sleep apnea is positional (Cartwright, 1984).
POSITIONAL_RATIO = 2.0
_SUPINE = POSITIONS.index("supine")


def position_measures(positions: np.ndarray | list[int], stages: np.ndarray, events: pd.DataFrame | None = None,
                      epoch_s: float = 30.0, *, in_bed: slice | None = None,
                      desaturations_measured: bool = False) -> dict[str, Any]:
    """Sleep time, its share and the AHI in each position, supine and non-supine (see the
    module's definitions); the AHIs are NaN without ``events`` (no respiratory scoring). With
    ``desaturations_measured`` (the events carry
    :func:`~synthsleepnet.respiratory.confirm_hypopneas`' columns, measured on the night's
    SpO2), also the AHI supine and non-supine by the AASM hypopnea rules (``AHI_3pct_supine``,
    ``AHI_4pct_nonsupine``, ...: :func:`~synthsleepnet.respiratory.counted_by_rule`).

    Examples
    --------
    One hour of N2: 20 minutes supine with four apneas, then 40 minutes on the left with one.

    >>> pos = np.r_[np.zeros(1200), np.ones(2400)].astype(int)
    >>> ev = pd.DataFrame({"onset_s": [100.0, 400.0, 700.0, 1000.0, 2000.0],
    ...                    "event": ["apnea_obstructive"] * 4 + ["hypopnea"]})
    >>> m = position_measures(pos, np.full(120, 2), ev)
    >>> m["supine_sleep_pct"], m["AHI_supine"], m["AHI_nonsupine"], m["positional_osa"]
    (33.3, 12.0, 1.5, True)
    """
    codes = np.asarray(stages, dtype=int)
    trace = np.asarray(positions, dtype=int)
    bed = seconds_in_bed(in_bed or slice(0, codes.size), trace.size, epoch_s)
    asleep = bed & seconds_asleep(codes, trace.size, epoch_s)
    known = asleep & (trace != UNKNOWN_POSITION)
    seconds = {name: int(np.count_nonzero(known & (trace == i))) for i, name in enumerate(POSITIONS)}
    total = sum(seconds.values())

    def counts_of(table: pd.DataFrame) -> dict[str, int]:
        """The events of ``table`` starting in sleep, by the position of their onset second."""
        counts = dict.fromkeys(POSITIONS, 0)
        at = table["onset_s"].to_numpy(dtype=float).astype(int)
        at = at[(at >= 0) & (at < trace.size)]
        for i in trace[at[known[at]]]:
            counts[POSITIONS[i]] += 1
        return counts

    def ahi(n: int, sleep_s: int) -> float:
        return n / (sleep_s / 3600) if events is not None and sleep_s >= MIN_SLEEP_MIN * 60 else float("nan")

    respiratory = events[events["event"].isin(RESPIRATORY_EVENTS)] if events is not None else None
    counts = counts_of(respiratory) if respiratory is not None else dict.fromkeys(POSITIONS, 0)
    nonsupine_s = total - seconds["supine"]
    out: dict[str, Any] = {
        "sleep_min": {name: s / 60 for name, s in seconds.items()},
        "sleep_pct": {name: round(100 * s / total, 1) if total else float("nan") for name, s in seconds.items()},
        "AHI_by_position": {name: ahi(counts[name], s) for name, s in seconds.items()},
        "supine_sleep_min": seconds["supine"] / 60, "nonsupine_sleep_min": nonsupine_s / 60,
        "supine_sleep_pct": round(100 * seconds["supine"] / total, 1) if total else float("nan"),
        "AHI_supine": ahi(counts["supine"], seconds["supine"]),
        "AHI_nonsupine": ahi(sum(counts.values()) - counts["supine"], nonsupine_s),
        "position_known_sleep_pct": round(100 * total / np.count_nonzero(asleep), 1) if asleep.any() else float("nan"),
    }
    if respiratory is not None and desaturations_measured:
        for rule in HYPOPNEA_RULES:
            ruled = counts_of(respiratory[counted_by_rule(respiratory, rule)])
            out[f"AHI_{rule}_supine"] = ahi(ruled["supine"], seconds["supine"])
            out[f"AHI_{rule}_nonsupine"] = ahi(sum(ruled.values()) - ruled["supine"], nonsupine_s)
    out["positional_osa"] = _positional(out["AHI_supine"], out["AHI_nonsupine"], sum(counts.values()), total)
    in_bed_known = trace[bed & (trace != UNKNOWN_POSITION)]
    out["position_changes"] = int(np.count_nonzero(np.diff(in_bed_known)))
    return out


def _positional(supine: float, nonsupine: float, n_events: int, sleep_s: int) -> bool | None:
    if not (math.isfinite(supine) and math.isfinite(nonsupine)):
        return None
    return n_events / (sleep_s / 3600) >= 5.0 and supine >= POSITIONAL_RATIO * nonsupine


def epoch_positions(positions: np.ndarray | list[int], n_epochs: int, epoch_s: float = 30.0) -> list[str]:
    """The position held longest in each epoch (``""`` where none is known), for ``epochs.csv``."""
    step = int(round(epoch_s))
    trace = np.full(n_epochs * step, UNKNOWN_POSITION, dtype=int)
    given = np.asarray(positions, dtype=int)[:trace.size]
    trace[:given.size] = given
    per_epoch = trace.reshape(n_epochs, step)
    counts = np.stack([(per_epoch == i).sum(axis=1) for i in range(len(POSITIONS))], axis=1)
    return [POSITIONS[int(np.argmax(c))] if c.max() else "" for c in counts]


def describe_position(measures: Mapping[str, Any] | None) -> str:
    """The positional picture in words.

    >>> describe_position({"supine_sleep_pct": 38.2, "AHI_supine": 31.24, "AHI_nonsupine": 9.4,
    ...                    "positional_osa": True})
    'supine 38 % of sleep; AHI supine 31.2/h, non-supine 9.4/h (positional)'
    """
    if measures is None:
        return "no body position"
    pct = measures["supine_sleep_pct"]
    if not math.isfinite(pct):
        return "no body position in sleep"
    text = f"supine {pct:.0f} % of sleep"
    supine, nonsupine = measures["AHI_supine"], measures["AHI_nonsupine"]
    if not (math.isfinite(supine) or math.isfinite(nonsupine)):
        return text
    short = f"n/a (< {MIN_SLEEP_MIN:g} min)"
    text += "; AHI supine " + (f"{supine:.1f}/h" if math.isfinite(supine) else short)
    text += ", non-supine " + (f"{nonsupine:.1f}/h" if math.isfinite(nonsupine) else short)
    return text + (" (positional)" if measures.get("positional_osa") else "")

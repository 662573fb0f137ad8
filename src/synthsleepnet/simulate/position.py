"""Body position through a simulated night, and the channel a recorder writes for it.

The sleeper turns when awake and at some arousals, and lies still between. In about half of
adults with obstructive sleep apnea the events cluster in supine sleep (positional OSA); the
simulator draws the positions after the night's breathing, with a generator of their own (so a
night's other signals do not depend on them): for a positional subject, the stretches between
turns that hold the most events are mostly supine, for the others supine is drawn regardless
of the events. The channel holds a code per second, its EDF transducer field spelling the
codes (:data:`POSITION_CODES`), which :mod:`synthsleepnet.io.body_position` reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.position_codes import POSITIONS
from .architecture import W

__all__ = ["POSITION_CODES", "POSITION_TRANSDUCER", "position_channel", "simulate_positions"]

#: The simulated recorder's codes.
POSITION_CODES = {0: "right", 1: "supine", 2: "left", 3: "prone", 4: "upright"}
#: Its EDF transducer field: the codes, spelt out.
POSITION_TRANSDUCER = "codes " + " ".join(f"{code}={name}" for code, name in POSITION_CODES.items())
#: Share of subjects with events whose apnea is positional; chance of a turn on waking, at an arousal.
_POSITIONAL_SHARE, _TURN_ON_WAKING, _TURN_AT_AROUSAL = 0.55, 0.8, 0.08
#: Side and prone positions away from supine, and how often each is taken.
_OTHERS = {"left": 0.47, "right": 0.43, "prone": 0.10}


def _turns(hyp: np.ndarray, arousals: list[tuple[float, float]], rng: np.random.Generator,
           epoch_s: float) -> np.ndarray:
    """Seconds at which the sleeper turns: on lying down to sleep (the first sleep epoch), and on
    waking and at arousals some of the time."""
    wake = np.r_[False, hyp == W]
    starts = [a * epoch_s for a in np.flatnonzero(wake[1:] & ~wake[:-1]) if rng.random() < _TURN_ON_WAKING]
    moving = [onset for onset, _ in arousals if rng.random() < _TURN_AT_AROUSAL]
    asleep = np.flatnonzero(hyp != W)
    onset = [asleep[0] * epoch_s] if asleep.size else []
    return np.unique(np.r_[0.0, onset, starts, moving].astype(int))


def simulate_positions(hyp: np.ndarray, events: pd.DataFrame, arousals: list[tuple[float, float]],
                       seed: int, epoch_s: float = 30.0) -> np.ndarray:
    """The position (index in :data:`~synthsleepnet.io.position_codes.POSITIONS`) of each second."""
    rng = np.random.default_rng([seed, 2])
    n_seconds = int(hyp.size * epoch_s)
    turns = _turns(hyp, arousals, rng, epoch_s)
    bounds = np.r_[turns, n_seconds]
    onsets = np.asarray(events["onset_s"] if len(events) else [], dtype=float)
    asleep = np.repeat(hyp != W, int(epoch_s))
    rates = np.array([np.count_nonzero((onsets >= a) & (onsets < b)) / max(asleep[a:b].sum(), 60)
                      for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    positional = bool(len(onsets)) and rng.random() < _POSITIONAL_SHARE
    clustered = rates > np.median(rates) if positional else np.zeros(rates.size, dtype=bool)
    out = np.empty(n_seconds, dtype=np.int8)
    previous = ""
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        supine_chance = (0.9 if clustered[i] else 0.1) if positional else 0.4
        if i == 0 and not asleep[a:b].any() and rng.random() < 0.3:
            name = "upright"  # sitting up in bed before falling asleep
        elif rng.random() < supine_chance:
            name = "supine"
        else:
            choices = [p for p in _OTHERS if p != previous]
            weights = np.array([_OTHERS[p] for p in choices])
            name = str(rng.choice(choices, p=weights / weights.sum()))
        out[a:b] = POSITIONS.index(name)
        previous = name
    return out


def position_channel(positions: np.ndarray) -> np.ndarray:
    """The recorder's codes (:data:`POSITION_CODES`) for positions as
    :func:`simulate_positions` gives them, one per second."""
    code_of = {POSITIONS.index(name): code for code, name in POSITION_CODES.items()}
    return np.array([code_of[int(p)] for p in range(len(POSITIONS))], dtype=float)[positions]

"""psgscoring (open AASM respiratory scoring) as a judge: its default profile on one EDF.

Lives in the benchmark environment only (``make bench-env``), never in the package.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

STAGES = ("W", "N1", "N2", "N3", "R")
#: psgscoring's event types in our names (an untyped apnea stays ``apnea``).
TYPES = {"obstructive": "apnea_obstructive", "central": "apnea_central", "mixed": "apnea_mixed",
         "hypopnea": "hypopnea"}


@dataclasses.dataclass(frozen=True)
class PsgscoringNight:
    """psgscoring's events (``onset_s``, ``duration_s``, ``event`` in our names), AHI and ODIs."""

    events: pd.DataFrame
    ahi: float
    odi3: float
    odi4: float


def psgscoring_night(edf: Path, hypnogram: np.ndarray) -> PsgscoringNight:
    """Run psgscoring's default profile (``aasm_v3_rec``) on ``edf`` given the hypnogram (0–4)."""
    import mne
    from psgscoring import run_pneumo_analysis

    logging.getLogger("psgscoring").setLevel(logging.ERROR)
    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_pneumo_analysis(raw, [STAGES[int(s)] for s in hypnogram])
    rows = [(float(e["onset_s"]), float(e["duration_s"]), TYPES.get(str(e.get("type")), "apnea"))
            for e in out["respiratory"]["events"]]
    spo2 = out.get("spo2", {}).get("summary", {})
    return PsgscoringNight(pd.DataFrame(rows, columns=["onset_s", "duration_s", "event"]),
                           float(out["respiratory"]["summary"]["ahi_total"]),
                           float(spo2.get("odi_3pct", np.nan)), float(spo2.get("odi_4pct", np.nan)))

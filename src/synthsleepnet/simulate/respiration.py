"""Breathing and respiratory events: airflow, thoracic/abdominal effort, SpO2, and their
consequences elsewhere (arousals, heart-rate changes).

Event physiology follows the AASM 2012 rules: obstructive apnea = airflow drop ≥ 90 % for ≥ 10 s
with continued (paradoxical) effort; central apnea = airflow and effort absent; mixed = central
start, obstructive end; hypopnea = airflow drop ≥ 30 % for ≥ 10 s with a ≥ 3 % desaturation or an
arousal. SpO2 falls with a circulatory lag and recovers after the event.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .architecture import N1, N2, N3, REM, SubjectProfile, W
from .noise import colored_noise, epoch_envelope

__all__ = ["RespiratorySignals", "place_events", "simulate_respiration"]

#: (airflow factor, effort factor) during each event type; mixed switches half-way.
_FACTORS = {"apnea_obstructive": (0.04, 1.1), "apnea_central": (0.03, 0.04),
            "apnea_mixed": (0.04, 0.04), "hypopnea": (0.45, 0.75)}
_TYPE_P = {"apnea_obstructive": 0.45, "apnea_central": 0.1, "apnea_mixed": 0.05, "hypopnea": 0.4}


def place_events(hyp: np.ndarray, profile: SubjectProfile, rng: np.random.Generator,
                 epoch_s: float = 30.0) -> pd.DataFrame:
    """Respiratory events during sleep at the subject's AHI, REM-weighted, never overlapping.

    Returns columns ``onset_s``, ``duration_s``, ``event`` plus the consequences each event
    draws: ``desaturation_pct`` and ``arousal`` (hypopneas without an arousal desaturate ≥ 3 %).
    """
    asleep = hyp != W
    tst_h = asleep.sum() * epoch_s / 3600
    n_events = int(rng.poisson(profile.ahi * tst_h))
    weights = np.array([{W: 0, N1: 1.0, N2: 1.0, N3: 0.3, REM: 2.0}[int(s)] for s in hyp])
    if n_events == 0 or weights.sum() == 0:
        return pd.DataFrame(columns=["onset_s", "duration_s", "event", "desaturation_pct", "arousal"])
    rows: list[dict[str, object]] = []
    busy: list[tuple[float, float]] = []
    attempts = 0
    while len(rows) < n_events and attempts < 20 * n_events:
        attempts += 1
        epoch = int(rng.choice(hyp.size, p=weights / weights.sum()))
        kind = str(rng.choice(list(_TYPE_P), p=list(_TYPE_P.values())))
        duration = float(rng.uniform(10, 40) if kind != "hypopnea" else rng.uniform(10, 35))
        onset = round(float((epoch + rng.random()) * epoch_s), 1)
        end = onset + duration
        if end + 15 > hyp.size * epoch_s:  # the event and its recovery fit in the recording
            continue
        last = int(end // epoch_s)
        if not asleep[epoch:last + 1].all():
            continue
        if any(onset < b + 15 and end + 15 > a for a, b in busy):
            continue
        busy.append((onset, end))
        arousal = bool(kind != "hypopnea" or rng.random() < 0.6)
        low, high = (3.0, 6.0) if kind == "hypopnea" else (4.5, 10.0)
        desat = float(rng.uniform(low, high) * np.clip(duration / 25, 0.7, 1.4))
        if kind == "hypopnea" and not arousal:
            desat = max(desat, 3.5)
        rows.append({"onset_s": onset, "duration_s": round(duration, 1), "event": kind,
                     "desaturation_pct": round(desat, 1), "arousal": arousal})
    return pd.DataFrame(rows).sort_values("onset_s").reset_index(drop=True)


@dataclasses.dataclass
class RespiratorySignals:
    """Airflow, thoracic and abdominal effort (arbitrary units), SpO2 (%), and side effects."""

    airflow: np.ndarray
    thorax: np.ndarray
    abdomen: np.ndarray
    spo2: np.ndarray
    heart_rate_offset: np.ndarray
    desaturations: pd.DataFrame
    breathing_hz: float


def simulate_respiration(hyp: np.ndarray, events: pd.DataFrame, profile: SubjectProfile,
                         resp_sfreq: float, spo2_sfreq: float, rng: np.random.Generator,
                         epoch_s: float = 30.0) -> RespiratorySignals:
    """Breathing with stage-dependent regularity, shaped by the respiratory events."""
    duration_s = hyp.size * epoch_s
    n = int(round(duration_s * resp_sfreq))
    breathing_hz = float(rng.uniform(0.22, 0.28))
    irregular = epoch_envelope(np.array([{W: 0.25, N1: 0.15, N2: 0.08, N3: 0.04, REM: 0.3}[int(s)]
                                         for s in hyp]), n, resp_sfreq, epoch_s)
    freq = breathing_hz * (1 + irregular * colored_noise(n, resp_sfreq, 2.0, rng, 0.01))
    phase = 2 * np.pi * np.cumsum(freq) / resp_sfreq
    depth = 1 + irregular * colored_noise(n, resp_sfreq, 2.0, rng, 0.01)
    flow_gain, effort_gain = np.ones(n), np.ones(n)
    abdo_shift = np.zeros(n)
    heart_rate_offset = np.zeros(int(duration_s))
    spo2 = np.full(int(duration_s * spo2_sfreq), rng.uniform(94.5, 97.5))
    desaturations = []
    for onset, dur, kind, desat in zip(events["onset_s"], events["duration_s"], events["event"],
                                       events["desaturation_pct"], strict=True):
        a, b = int(onset * resp_sfreq), int((onset + dur) * resp_sfreq)
        flow, effort = _FACTORS[kind]
        flow_gain[a:b] = flow
        if kind == "apnea_mixed":
            mid = (a + b) // 2
            effort_gain[a:mid], effort_gain[mid:b] = 0.04, 1.1
        else:
            effort_gain[a:b] = effort * (np.linspace(0.8, 1.3, b - a) if kind == "apnea_obstructive" else 1)
        if kind in ("apnea_obstructive", "apnea_mixed", "hypopnea"):
            abdo_shift[a:b] = np.pi * (0.7 if kind != "hypopnea" else 0.3)  # paradoxical effort
        rec = int(min(12, dur / 2) * resp_sfreq)
        flow_gain[b:b + rec] = 1.7
        effort_gain[b:b + rec] = 1.4
        s0, s1 = int(onset), int(onset + dur)
        heart_rate_offset[s0:s1] -= 5
        heart_rate_offset[s1:s1 + 10] += 12
        _desaturate(spo2, onset, dur, float(desat), spo2_sfreq)
        desaturations.append((onset + 20, dur, "desaturation"))
    airflow = depth * flow_gain * np.sin(phase) + 0.03 * rng.standard_normal(n)
    thorax = depth * effort_gain * np.sin(phase + 0.15) + 0.03 * rng.standard_normal(n)
    abdomen = depth * effort_gain * np.sin(phase + abdo_shift) + 0.03 * rng.standard_normal(n)
    spo2 = np.round(np.clip(spo2 + 0.3 * colored_noise(spo2.size, spo2_sfreq, 2.0, rng, 0.01), 70, 100), 1)
    table = pd.DataFrame(desaturations, columns=["onset_s", "duration_s", "event"])
    return RespiratorySignals(airflow, thorax, abdomen, spo2, heart_rate_offset, table, breathing_hz)


def _desaturate(spo2: np.ndarray, onset: float, duration: float, depth: float, sfreq: float) -> None:
    """Fall of ``depth`` % from onset + 20 s (circulatory lag) to event end + 20 s, recovery 15 s."""
    lag = 20.0
    fall = np.arange(int(onset + lag), int(onset + duration + lag)) * sfreq
    for i, k in enumerate(fall.astype(int)):
        if k < spo2.size:
            spo2[k] -= depth * (i + 1) / max(fall.size, 1)
    rise_start = int((onset + duration + lag) * sfreq)
    rise = int(15 * sfreq)
    for i in range(rise):
        if rise_start + i < spo2.size:
            spo2[rise_start + i] -= depth * (1 - (i + 1) / rise)

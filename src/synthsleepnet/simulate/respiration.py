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
from scipy.ndimage import uniform_filter1d

from .architecture import N1, N2, N3, REM, SubjectProfile, W
from .noise import colored_noise, epoch_envelope

__all__ = ["BreathingRhythm", "RespiratorySignals", "breath_volume", "place_events", "simulate_respiration"]

#: (airflow factor, effort factor) during each event type; mixed switches half-way.
_FACTORS = {"apnea_obstructive": (0.03, 1.1), "apnea_central": (0.02, 0.03),
            "apnea_mixed": (0.03, 0.04), "hypopnea": (0.45, 0.75)}
_TYPE_P = {"apnea_obstructive": 0.45, "apnea_central": 0.1, "apnea_mixed": 0.05, "hypopnea": 0.4}


@dataclasses.dataclass(frozen=True)
class BreathingRhythm:
    """The night's breath timing and depth before any event shapes them.

    ``cycles`` counts breaths at each sample: breath ``k`` starts (end-expiration, the start of
    inspiration) where ``cycles`` passes ``k``. Drawn before the events so that events can be
    placed on whole breaths, as scorers mark them.
    """

    cycles: np.ndarray
    depth: np.ndarray
    breathing_hz: float
    sfreq: float

    @classmethod
    def simulate(cls, hyp: np.ndarray, sfreq: float, rng: np.random.Generator,
                 epoch_s: float = 30.0) -> BreathingRhythm:
        """Stage-dependent regularity: steady in N3, irregular in wake and REM."""
        n = int(round(hyp.size * epoch_s * sfreq))
        breathing_hz = float(rng.uniform(0.22, 0.28))
        irregular = epoch_envelope(np.array([{W: 0.25, N1: 0.15, N2: 0.08, N3: 0.04, REM: 0.3}[int(s)]
                                             for s in hyp]), n, sfreq, epoch_s)
        freq = breathing_hz * (1 + irregular * colored_noise(n, sfreq, 2.0, rng, 0.01))
        depth = 1 + irregular * colored_noise(n, sfreq, 2.0, rng, 0.01)
        return cls(np.cumsum(freq) / sfreq, depth, breathing_hz, sfreq)

    @property
    def duration_s(self) -> float:
        """Length of the night in seconds."""
        return self.cycles.size / self.sfreq

    def breath_onsets_s(self) -> np.ndarray:
        """Seconds at which each breath starts (end-expiration)."""
        return (np.flatnonzero(np.diff(np.floor(self.cycles)) > 0) + 1) / self.sfreq


def _on_whole_breaths(onset: float, duration: float, breaths: np.ndarray) -> tuple[float, float]:
    """The event widened to whole breaths: from the end-expiration at or before ``onset`` to the
    first breath start at least ``duration`` later (AASM: the first reduced breath to the first
    recovery breath). Returns ``(onset, end)`` in seconds."""
    start = breaths[max(int(np.searchsorted(breaths, onset, side="right")) - 1, 0)]
    end_i = min(int(np.searchsorted(breaths, start + duration, side="left")), breaths.size - 1)
    return float(start), float(breaths[end_i])


def place_events(hyp: np.ndarray, profile: SubjectProfile, rng: np.random.Generator,
                 breath_onsets_s: np.ndarray, epoch_s: float = 30.0) -> pd.DataFrame:
    """Respiratory events during sleep at the subject's AHI, REM-weighted, never overlapping,
    each spanning whole breaths (``breath_onsets_s``: :meth:`BreathingRhythm.breath_onsets_s`).

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
        onset, end = _on_whole_breaths((epoch + rng.random()) * epoch_s, duration, breath_onsets_s)
        if end - onset < 10:  # the night's last breaths
            continue
        duration = end - onset
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
        rows.append({"onset_s": round(onset, 3), "duration_s": round(duration, 3), "event": kind,
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


def _smoothstep(u: np.ndarray) -> np.ndarray:
    return u * u * (3 - 2 * u)


def breath_volume(cycle: np.ndarray, inspiration: float = 0.4) -> np.ndarray:
    """Lung volume (0 → 1 → 0) over the fraction of each breath cycle in ``cycle``.

    Inspiration fills the first ``inspiration`` of the cycle smoothly (its flow is a half sine);
    expiration is passive, fast at first and slow at the end (flow peaks early and decays), as in
    nasal-pressure and pneumotachograph traces. The flow, the volume's derivative, therefore
    leads the effort belts, which follow volume, by about a quarter cycle.
    """
    frac = np.mod(cycle, 1.0)
    insp = frac < inspiration
    x_in = frac / inspiration
    x_ex = np.clip((frac - inspiration) / (1 - inspiration), 0, 1)
    return np.where(insp, 0.5 * (1 - np.cos(np.pi * x_in)), 1 - _smoothstep(x_ex ** 0.6))


def _flatten(flow: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Inspiratory flow limitation: the inspiratory lobe plateaus at ``1 − amount`` of its peak
    (a partially collapsed airway caps flow however hard the effort)."""
    cap = np.percentile(flow[flow > 0], 95) if np.any(flow > 0) else 1.0
    limited = np.minimum(flow, cap * (1 - amount))
    return np.where(flow > 0, limited, flow)


def simulate_respiration(events: pd.DataFrame, profile: SubjectProfile, rhythm: BreathingRhythm,
                         spo2_sfreq: float, rng: np.random.Generator) -> RespiratorySignals:
    """The night's breathing (``rhythm``) shaped by the respiratory events.

    Airflow is the derivative of an asymmetric breath volume (:func:`breath_volume`); thorax and
    abdomen follow volume with their own gains, a small abdominal lag and their own noise, and
    move in antiphase (paradox) against an obstructed airway. Obstructive apneas keep (rising)
    effort without flow; central apneas stop both, leaving cardiogenic oscillations in the flow
    and, in phase, on both belts; mixed apneas are central, then obstructive; hypopneas reduce
    flow with inspiratory flattening. Sensor noise is small and low-pass, as in real
    transducers, so it never looks like breathing during an apnea.
    """
    duration_s = rhythm.duration_s
    resp_sfreq, cycles, depth, breathing_hz = rhythm.sfreq, rhythm.cycles, rhythm.depth, rhythm.breathing_hz
    n = cycles.size
    flow_gain, effort_gain, flattening = np.ones(n), np.ones(n), np.zeros(n)
    paradox = np.zeros(n)  # abdominal phase shift, in cycles
    cardiac = np.zeros(n)  # where the airway is open without breathing
    heart_rate_offset = np.zeros(int(duration_s))
    spo2 = np.full(int(duration_s * spo2_sfreq), rng.uniform(94.5, 97.5))
    desaturations = []
    for onset, dur, kind, desat in zip(events["onset_s"], events["duration_s"], events["event"],
                                       events["desaturation_pct"], strict=True):
        a, b = int(round(onset * resp_sfreq)), int(round((onset + dur) * resp_sfreq))
        flow, effort = _FACTORS[kind]
        flow_gain[a:b] = flow
        if kind == "apnea_central":
            effort_gain[a:b], cardiac[a:b] = effort, 1.0
        elif kind == "apnea_mixed":
            mid = (a + b) // 2
            effort_gain[a:mid], cardiac[a:mid] = 0.04, 1.0
            effort_gain[mid:b], paradox[mid:b] = 1.1, 0.4
        else:
            ramp = np.linspace(0.8, 1.3, b - a) if kind == "apnea_obstructive" else 1.0
            effort_gain[a:b] = effort * ramp
            paradox[a:b] = 0.4 if kind == "apnea_obstructive" else 0.12
            if kind == "hypopnea":
                flattening[a:b] = 0.35
        rec = int(min(12, dur / 2) * resp_sfreq)
        flow_gain[b:b + rec] = 1.7
        effort_gain[b:b + rec] = 1.4
        s0, s1 = int(onset), int(onset + dur)
        heart_rate_offset[s0:s1] -= 5
        heart_rate_offset[s1:s1 + 10] += 12
        _desaturate(spo2, onset, dur, float(desat), spo2_sfreq)
        desaturations.append((onset + 20, dur, "desaturation"))
    smooth = max(int(2 * resp_sfreq), 1)  # gains change over a breath or two, not in a sample
    flow_gain, effort_gain, flattening, paradox, cardiac = (
        uniform_filter1d(x, smooth, mode="nearest") for x in (flow_gain, effort_gain, flattening, paradox, cardiac))
    volume = breath_volume(cycles) - 0.45
    raw_flow = np.gradient(volume) * resp_sfreq / (2 * np.pi * breathing_hz)
    beat_hz = profile.heart_rate_bpm / 60
    t = np.arange(n) / resp_sfreq
    flow_noise, thorax_noise, abdomen_noise = (_sensor_noise(rng.standard_normal(n), resp_sfreq) for _ in range(3))
    heartbeat = cardiac * np.sin(2 * np.pi * beat_hz * t)  # the beating heart moves air and chest wall
    airflow = depth * flow_gain * _flatten(raw_flow, flattening) + 0.01 * heartbeat + 0.012 * flow_noise
    thorax = depth * effort_gain * volume + 0.05 * heartbeat + 0.015 * thorax_noise
    abdomen = (1.3 * depth * effort_gain * (breath_volume(cycles - 0.04 - paradox) - 0.45)
               + 0.05 * heartbeat + 0.015 * abdomen_noise)
    spo2 = np.round(np.clip(spo2 + 0.3 * colored_noise(spo2.size, spo2_sfreq, 2.0, rng, 0.01), 70, 100), 1)
    table = pd.DataFrame(desaturations, columns=["onset_s", "duration_s", "event"])
    return RespiratorySignals(airflow, thorax, abdomen, spo2, heart_rate_offset, table, breathing_hz)


def _sensor_noise(white: np.ndarray, sfreq: float, corner_hz: float = 1.0) -> np.ndarray:
    """Unit-variance transducer noise: white noise through a 2nd-order low-pass at ``corner_hz``
    (pressure transducers and belts are band-limited; white noise up to Nyquist would look like
    fast residual breathing in an apnea)."""
    freqs = np.fft.rfftfreq(white.size, 1 / sfreq)
    x = np.fft.irfft(np.fft.rfft(white) / (1 + (freqs / corner_hz) ** 2), white.size)
    return x / (x.std() + 1e-12)


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

"""Simulate whole PSG nights and write them as real files: EDF+ signals and NSRR-style XML."""

from __future__ import annotations

import dataclasses
import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from .._atomic import atomic_write_bytes
from .._config import SimulationConfig
from .architecture import SubjectProfile, W, simulate_hypnogram
from .noise import band_noise
from .position import POSITION_TRANSDUCER, position_channel, simulate_positions
from .respiration import BreathingRhythm, place_events, simulate_respiration
from .signals import simulate_ecg, simulate_eeg, simulate_emg, simulate_eog
from .variability import Traits, vary

__all__ = ["SimulatedNight", "edf_bytes", "nsrr_xml", "simulate_night", "write_night"]

#: NSRR concept names of the AASM stages (R&K codes after the bar, as NSRR writes them).
NSRR_STAGES = {0: "Wake|0", 1: "Stage 1 sleep|1", 2: "Stage 2 sleep|2", 3: "Stage 3 sleep|3",
               4: "REM sleep|5"}
NSRR_EVENTS = {"apnea_obstructive": "Obstructive apnea|Obstructive Apnea",
               "apnea_central": "Central apnea|Central Apnea",
               "apnea_mixed": "Mixed apnea|Mixed Apnea", "hypopnea": "Hypopnea|Hypopnea",
               "desaturation": "SpO2 desaturation|SpO2 desaturation", "arousal": "Arousal|Arousal ()"}


@dataclasses.dataclass
class SimulatedNight:
    """A simulated night: signals at native rates with ground truth.

    ``signals`` maps an EDF label to ``(data, sfreq, unit)``; ``events`` holds respiratory events,
    desaturations and arousals (``onset_s``, ``duration_s``, ``event``), as a scorer marks them;
    ``respiratory_truth`` holds the respiratory events as designed, with the SpO2 fall each causes
    (``desaturation_pct``) and whether it ends in an arousal — what an ODI is checked against;
    ``traits`` are the subject's and site's draws at the night's variability;
    ``window_start_s`` is where a recording of part of the night starts, in seconds after lights
    off (None: the whole night, lights off to lights on, is recorded); ``body_position`` is the
    position of each second (index in :data:`~synthsleepnet.io.position_codes.POSITIONS`), which
    the ``Position`` channel writes in its recorder's codes.
    """

    name: str
    profile: SubjectProfile
    start: dt.datetime
    hypnogram: np.ndarray
    events: pd.DataFrame
    signals: dict[str, tuple[np.ndarray, float, str]]
    epoch_s: float = 30.0
    respiratory_truth: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    traits: Traits = Traits()
    window_start_s: float | None = None
    body_position: np.ndarray | None = None


def _arousals(hyp: np.ndarray, resp_events: pd.DataFrame, rng: np.random.Generator,
              config: SimulationConfig) -> list[tuple[float, float]]:
    """Arousals at the end of respiratory events plus spontaneous ones in sleep (3–15 s)."""
    out = [(float(o + d), float(rng.uniform(3, 12))) for o, d, a in
           zip(resp_events.get("onset_s", []), resp_events.get("duration_s", []),
               resp_events.get("arousal", []), strict=True) if a]
    asleep = np.flatnonzero(hyp != W)
    hours = hyp.size * config.epoch_s / 3600
    for epoch in rng.choice(asleep, size=min(rng.poisson(config.spontaneous_arousals_per_hour * hours),
                                             asleep.size), replace=False) if asleep.size else []:
        out.append((float((epoch + rng.random()) * config.epoch_s), float(rng.uniform(3, 14))))
    return sorted(out)


def _artefacts(signals: dict[str, np.ndarray], rates: dict[str, float], hyp: np.ndarray,
               rng: np.random.Generator, config: SimulationConfig) -> None:
    """Mains hum, electrode pops (one EEG lead) and movement bursts in wake, in place."""
    hours = hyp.size * config.epoch_s / 3600
    for label, x in signals.items():
        t = np.arange(x.size) / rates[label]
        x += config.mains_uv * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * config.mains_hz * t)
    pop_label = "C3-M2"
    fs = rates[pop_label]
    tau = np.exp(-np.arange(int(2 * fs)) / (0.4 * fs))
    for onset in rng.uniform(0, hyp.size * config.epoch_s, rng.poisson(config.electrode_pops_per_hour * hours)):
        k = int(onset * fs)
        seg = signals[pop_label][k:k + tau.size]
        seg += rng.choice([-1, 1]) * rng.uniform(100, 300) * tau[:seg.size]
    wake = np.flatnonzero(hyp == W)
    n_moves = min(rng.poisson(config.movements_per_hour * hours), wake.size)
    for epoch in rng.choice(wake, size=n_moves, replace=False) if wake.size else []:
        onset, length = (epoch + rng.random() * 0.7) * config.epoch_s, rng.uniform(2, 8)
        for label, x in signals.items():
            fs = rates[label]
            a, b = int(onset * fs), min(int((onset + length) * fs), x.size)
            x[a:b] += rng.uniform(80, 250) * band_noise(b - a, fs, 0.5, min(0.45 * fs, 60), rng)


def _window(hyp: np.ndarray, window_hours: float, seed: int, epoch_s: float) -> slice:
    """The epochs of a ``window_hours`` window of ``hyp``, placed uniformly at random by a
    generator of its own, so the night's other draws do not depend on it."""
    length = int(round(window_hours * 3600 / epoch_s))
    if not 0 < length <= hyp.size:
        raise ValueError(f"window_hours must be in (0, the night's {hyp.size * epoch_s / 3600:g} h], "
                         f"got {window_hours:g}")
    first = int(np.random.default_rng([seed, 1]).integers(0, hyp.size - length + 1))
    return slice(first, first + length)


def simulate_night(seed: int, hours: float = 8.0, *, name: str | None = None, ahi: float | None = None,
                   config: SimulationConfig | None = None, variability: str = "normal",
                   window_hours: float | None = None) -> SimulatedNight:
    """Simulate one night of PSG (deterministic for a seed).

    Parameters
    ----------
    seed : int
        Seeds everything: the subject, the hypnogram, every signal.
    hours : float
        Time in bed, from lights off.
    name : str | None
        Night name; ``sim-<seed>`` by default.
    ahi : float | None
        Apnea-hypopnea index; drawn from a cohort-like mix when None.
    config : SimulationConfig | None
        Native rates and artefact rates.
    variability : str
        ``low``, ``normal`` or ``high`` between-subject and between-site variation
        (:mod:`synthsleepnet.simulate.variability`); ``high`` may change the EEG/EOG rates,
        amplifier band, mains and artefact rates of ``config``.
    window_hours : float | None
        Record only this long a part of the night, placed at random (drawn from ``seed``): its
        hypnogram is that part of the ``hours``-long night's, so short recordings hold every
        stage in whole-night proportions rather than only the first cycle. None records it all.
    """
    rng = np.random.default_rng(seed)
    profile = SubjectProfile.random(rng, ahi)
    profile, traits, config = vary(profile, config or SimulationConfig(), variability, seed)
    hyp = simulate_hypnogram(profile, hours, rng, config.epoch_s)
    window = None if window_hours is None else _window(hyp, window_hours, seed, config.epoch_s)
    if window is not None:
        hyp = hyp[window]
    rhythm = BreathingRhythm.simulate(hyp, config.resp_sfreq, rng, config.epoch_s)
    resp_events = place_events(hyp, profile, rng, rhythm.breath_onsets_s(), config.epoch_s)
    arousals = _arousals(hyp, resp_events, rng, config)
    resp = simulate_respiration(resp_events, profile, rhythm, config.spo2_sfreq, rng)
    c4, c3 = simulate_eeg(hyp, profile, arousals, config.eeg_sfreq, rng, config.epoch_s, traits=traits)
    e1, e2 = simulate_eog(hyp, c4, config.eog_sfreq, rng, config.epoch_s, traits.rem_density_gain)
    emg = simulate_emg(hyp, arousals, config.emg_sfreq, rng, config.epoch_s)
    ecg, _ = simulate_ecg(hyp, profile, resp.heart_rate_offset, resp.breathing_hz, config.ecg_sfreq,
                          rng, config.epoch_s, traits.hrv_gain)
    bio = {"C4-M1": c4, "C3-M2": c3, "E1-M2": e1, "E2-M2": e2, "Chin": emg, "ECG": ecg}
    rates = {"C4-M1": config.eeg_sfreq, "C3-M2": config.eeg_sfreq, "E1-M2": config.eog_sfreq,
             "E2-M2": config.eog_sfreq, "Chin": config.emg_sfreq, "ECG": config.ecg_sfreq}
    _artefacts(bio, rates, hyp, rng, config)
    if traits.band_hz is not None:  # the site amplifier's pass band (2nd-order, zero phase)
        from ..preprocessing.signal import bandpass

        for label in ("C4-M1", "C3-M2", "E1-M2", "E2-M2"):
            bio[label] = bandpass(bio[label], rates[label], traits.band_hz, order=2)
    signals = {("EEG " + k if k.startswith("C") and k[1].isdigit() else
                "EOG " + k if k.startswith("E") and k[1].isdigit() else
                "EMG Chin" if k == "Chin" else k): (v, rates[k], "uV") for k, v in bio.items()}
    signals.update({"Airflow": (resp.airflow, config.resp_sfreq, "au"),
                    "Thor": (resp.thorax, config.resp_sfreq, "au"),
                    "Abdo": (resp.abdomen, config.resp_sfreq, "au"),
                    "SpO2": (resp.spo2, config.spo2_sfreq, "%")})
    positions = simulate_positions(hyp, resp_events, arousals, seed, config.epoch_s)
    signals["Position"] = (position_channel(positions), 1.0, "")
    arousal_table = pd.DataFrame([(o, d, "arousal") for o, d in arousals],
                                 columns=["onset_s", "duration_s", "event"])
    events = pd.concat([resp_events[["onset_s", "duration_s", "event"]], resp.desaturations, arousal_table],
                       ignore_index=True).sort_values(["onset_s", "event"], kind="stable").reset_index(drop=True)
    lights_off = dt.datetime(2024, 1, 1, 22, 0) + dt.timedelta(days=seed % 365, minutes=int(rng.integers(0, 90)))
    window_start_s = None if window is None else window.start * config.epoch_s
    start = lights_off + dt.timedelta(seconds=window_start_s or 0.0)
    return SimulatedNight(name or f"sim-{seed:04d}", profile, start, hyp, events, signals, config.epoch_s,
                          resp_events.reset_index(drop=True), traits, window_start_s, positions)


def nsrr_xml(night: SimulatedNight) -> bytes:
    """The night's scoring as NSRR XML (stages, respiratory events, desaturations, arousals)."""
    root = ET.Element("PSGAnnotation")
    ET.SubElement(root, "SoftwareVersion").text = "synthsleepnet simulate"
    ET.SubElement(root, "EpochLength").text = f"{night.epoch_s:g}"
    scored = ET.SubElement(root, "ScoredEvents")

    def add(event_type: str, concept: str, start: float, duration: float, **extra: str) -> None:
        ev = ET.SubElement(scored, "ScoredEvent")
        ET.SubElement(ev, "EventType").text = event_type
        ET.SubElement(ev, "EventConcept").text = concept
        ET.SubElement(ev, "Start").text = f"{start:.1f}"
        ET.SubElement(ev, "Duration").text = f"{duration:.1f}"
        for key, value in extra.items():
            ET.SubElement(ev, key).text = value

    total = night.hypnogram.size * night.epoch_s
    add("", "Recording Start Time", 0.0, total, ClockTime=night.start.strftime("00.00.00 %H.%M.%S"))
    hyp = night.hypnogram
    change = np.flatnonzero(np.diff(hyp)) + 1
    for a, b in zip(np.r_[0, change], np.r_[change, hyp.size], strict=True):
        add("Stages|Stages", NSRR_STAGES[int(hyp[a])], a * night.epoch_s, (b - a) * night.epoch_s)
    depths = _desaturation_depths(night)
    for onset, duration, kind in zip(night.events["onset_s"], night.events["duration_s"],
                                     night.events["event"], strict=True):
        event_type = "Arousals|Arousals" if kind == "arousal" else "Respiratory|Respiratory"
        location = {"arousal": "EEG C4-M1", "desaturation": "SpO2"}.get(kind, "Airflow")
        extra = depths.get(round(float(onset), 1), {}) if kind == "desaturation" else {}
        add(event_type, NSRR_EVENTS[kind], float(onset), float(duration), SignalLocation=location, **extra)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _desaturation_depths(night: SimulatedNight) -> dict[float, dict[str, str]]:
    """``SpO2Baseline`` and ``SpO2Nadir`` of each desaturation (by its onset, 20 s after the event
    that caused it), as NSRR writes them: the SpO2 at the event's onset and that less its
    designed fall."""
    spo2, sfreq, _ = night.signals["SpO2"]
    depths = {}
    for onset, desaturation in zip(night.respiratory_truth["onset_s"], night.respiratory_truth["desaturation_pct"],
                                   strict=True):
        baseline = round(float(spo2[min(int(onset * sfreq), len(spo2) - 1)]), 1)
        depths[round(float(onset) + 20, 1)] = {"SpO2Baseline": f"{baseline:.1f}",
                                               "SpO2Nadir": f"{baseline - float(desaturation):.1f}"}
    return depths


def edf_bytes(night: SimulatedNight, *, record_s: float = 1.0, annotations: bool = True) -> bytes:
    """The night's signals as EDF+ (with lights marks when the whole night is recorded) or,
    without ``annotations``, plain EDF, in records of ``record_s`` seconds."""
    import io

    import edfio

    signals = []
    for label, (data, sfreq, unit) in night.signals.items():
        lo, hi = float(np.min(data)), float(np.max(data))
        pad = max((hi - lo) * 0.05, 1e-3)
        low, high = round(lo - pad, 1), round(hi + pad, 1)
        if low == high:  # a constant channel (one body position all night)
            low, high = low - 1, high + 1
        signals.append(edfio.EdfSignal(data, sfreq, label=label, physical_dimension=unit, physical_range=(low, high),
                                       transducer_type=POSITION_TRANSDUCER if label == "Position" else "simulated"))
    birth = dt.date(night.start.year - int(night.profile.age_years), 1, 1)
    edf = edfio.Edf(
        signals,
        patient=edfio.Patient(code=night.name.upper(), sex="M" if night.profile.male else "F",
                              birthdate=birth, name="Simulated"),
        recording=edfio.Recording(startdate=night.start.date(), hospital_administration_code=night.name,
                                  investigator_technician_code="X", equipment_code="synthsleepnet"),
        starttime=night.start.time(),
        data_record_duration=record_s,
        annotations=[edfio.EdfAnnotation(0.0, None, "Lights off"),
                     edfio.EdfAnnotation(float(night.hypnogram.size * night.epoch_s - 1), None, "Lights on")]
        if annotations and night.window_start_s is None else None,
    )
    buffer = io.BytesIO()
    edf.write(buffer)
    return buffer.getvalue()


def write_night(night: SimulatedNight, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<name>.edf`` (EDF+) and ``<name>-nsrr.xml`` atomically; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    edf_path, xml_path = out_dir / f"{night.name}.edf", out_dir / f"{night.name}-nsrr.xml"
    atomic_write_bytes(edf_path, edf_bytes(night))
    atomic_write_bytes(xml_path, nsrr_xml(night))
    return edf_path, xml_path

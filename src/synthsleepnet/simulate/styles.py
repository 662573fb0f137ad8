"""Cohort styles: simulated nights written the way SHHS, MESA, Sleep-EDF and HMC write theirs.

A style fixes what the data layer meets in a real cohort: file names and their pairing with the
scoring, channel labels, native sampling rates, units, the EDF data-record length and the
scoring format (NSRR XML, NSRR Profusion XML, an EDF+ hypnogram). The signals are the
simulator's; a cohort's derivations the simulator does not model are left out rather than
mislabelled, except where the cohort has no central EEG at all (Sleep-EDF: its Fpz-Cz and Pz-Oz
carry the simulator's two EEG derivations, so only the file's shape is Sleep-EDF's).

- ``generic``: every channel at the simulator's rates, EDF+ with 1-s records, NSRR XML.
- ``shhs``: SHHS-1 (``shhs1-200001.edf``): ``EEG`` (C4-A1) and ``EEG(sec)`` (C3-A2) at 125 Hz,
  ``EOG(L)``/``EOG(R)`` at 50 Hz, ``EMG`` 125 Hz, ``ECG`` 125 Hz in mV, ``AIRFLOW``, ``THOR RES``,
  ``ABDO RES`` at 10 Hz, ``SaO2`` at 1 Hz; plain EDF, 1-s records; ``-nsrr.xml``.
- ``mesa``: MESA (``mesa-sleep-0001.edf``): ``EEG3`` (C4-M1), ``EOG-L``, ``EOG-R``, ``EMG``,
  ``EKG`` at 256 Hz, ``Flow``, ``Thor``, ``Abdo`` at 32 Hz, ``SpO2`` 1 Hz; ``-profusion.xml``.
- ``sleep-edf``: Sleep-EDF Expanded SC (``SC4001E0-PSG.edf``): ``EEG Fpz-Cz``, ``EEG Pz-Oz``,
  ``EOG horizontal`` at 100 Hz, ``Resp oro-nasal`` and ``EMG submental`` (an RMS envelope) at
  1 Hz, 30-s records; stages in ``SC4001EC-Hypnogram.edf`` (R&K labels, no respiratory scoring).
- ``hmc``: HMC (``SN001.edf``): ``EEG C4-M1``, ``EEG C3-M2``, ``EOG E1-M2``, ``EOG E2-M2``,
  ``EMG chin``, ``ECG`` at 256 Hz; stages in ``SN001_sleepscoring.edf`` (AASM labels, lights
  marks, no respiratory scoring).
"""

from __future__ import annotations

import dataclasses
import io
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from .._atomic import atomic_write_bytes
from .._validation import check_option
from .night import SimulatedNight, edf_bytes, nsrr_xml

__all__ = ["STYLES", "CohortStyle", "StyleChannel", "write_styled_night"]

Scoring = Literal["nsrr", "profusion", "edf-hypnogram", "hmc-hypnogram"]


@dataclasses.dataclass(frozen=True)
class StyleChannel:
    """One channel of a style: the simulated signal it carries, the cohort's label, rate, unit."""

    source: str
    label: str
    sfreq: float
    unit: str = "uV"
    scale: float = 1.0  # physical units per simulated unit (ECG in mV: 0.001)
    envelope: bool = False  # a 1-s RMS envelope (Sleep-EDF's submental EMG)
    minus: str | None = None  # a bipolar derivation: ``source`` − ``minus`` (Sleep-EDF's horizontal EOG)


@dataclasses.dataclass(frozen=True)
class CohortStyle:
    """How a cohort writes a night: names (``{n}`` is the night number), channels, records, scoring."""

    name: str
    psg_name: str
    scoring_name: str
    channels: tuple[StyleChannel, ...]
    scoring: Scoring
    record_s: float = 1.0
    first_number: int = 1


_C = StyleChannel
STYLES: dict[str, CohortStyle] = {
    "shhs": CohortStyle("shhs", "shhs1-{n:06d}", "shhs1-{n:06d}-nsrr.xml", (
        _C("SpO2", "SaO2", 1, "%"), _C("EEG C3-M2", "EEG(sec)", 125), _C("ECG", "ECG", 125, "mV", scale=1e-3),
        _C("EMG Chin", "EMG", 125), _C("EOG E1-M2", "EOG(L)", 50), _C("EOG E2-M2", "EOG(R)", 50),
        _C("EEG C4-M1", "EEG", 125), _C("Thor", "THOR RES", 10, "V"), _C("Abdo", "ABDO RES", 10, "V"),
        _C("Airflow", "AIRFLOW", 10, "V")), "nsrr", first_number=200001),
    "mesa": CohortStyle("mesa", "mesa-sleep-{n:04d}", "mesa-sleep-{n:04d}-profusion.xml", (
        _C("ECG", "EKG", 256, "mV", scale=1e-3), _C("EOG E1-M2", "EOG-L", 256), _C("EOG E2-M2", "EOG-R", 256),
        _C("EMG Chin", "EMG", 256), _C("EEG C4-M1", "EEG3", 256), _C("Airflow", "Flow", 32, ""),
        _C("Thor", "Thor", 32, ""), _C("Abdo", "Abdo", 32, ""), _C("SpO2", "SpO2", 1, "%")), "profusion"),
    "sleep-edf": CohortStyle("sleep-edf", "SC4{n:02d}1E0-PSG", "SC4{n:02d}1EC-Hypnogram.edf", (
        _C("EEG C4-M1", "EEG Fpz-Cz", 100), _C("EEG C3-M2", "EEG Pz-Oz", 100), _C("EOG E1-M2", "EOG horizontal", 100, minus="EOG E2-M2"),
        _C("Airflow", "Resp oro-nasal", 1, ""), _C("EMG Chin", "EMG submental", 1, envelope=True)),
        "edf-hypnogram", record_s=30.0),
    "hmc": CohortStyle("hmc", "SN{n:03d}", "SN{n:03d}_sleepscoring.edf", (
        _C("EEG C4-M1", "EEG C4-M1", 256), _C("EEG C3-M2", "EEG C3-M2", 256), _C("EMG Chin", "EMG chin", 256),
        _C("EOG E1-M2", "EOG E1-M2", 256), _C("EOG E2-M2", "EOG E2-M2", 256), _C("ECG", "ECG", 256)), "hmc-hypnogram"),
}


def _resample(x: np.ndarray, source_hz: float, target_hz: float) -> np.ndarray:
    from scipy.signal import resample_poly

    if source_hz == target_hz:
        return x
    ratio = Fraction(target_hz / source_hz).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator)


def _styled_signals(night: SimulatedNight, style: CohortStyle) -> dict[str, tuple[np.ndarray, float, str]]:
    out = {}
    for ch in style.channels:
        data, sfreq, _ = night.signals[ch.source]
        if ch.minus is not None:
            data = data - night.signals[ch.minus][0]
        if ch.envelope:
            per_s = int(sfreq)
            seconds = data[:data.size // per_s * per_s].reshape(-1, per_s)
            x = np.sqrt(np.mean(seconds ** 2, axis=1))
        else:
            x = _resample(np.asarray(data, dtype=np.float64), sfreq, ch.sfreq)
        n = int(round(night.hypnogram.size * night.epoch_s * ch.sfreq))
        out[ch.label] = (np.pad(x[:n], (0, max(n - x.size, 0)), mode="edge") * ch.scale, ch.sfreq, ch.unit)
    return out


_PROFUSION_EVENTS = {"apnea_obstructive": "Obstructive Apnea", "apnea_central": "Central Apnea",
                     "apnea_mixed": "Mixed Apnea", "hypopnea": "Hypopnea",
                     "desaturation": "SpO2 desaturation", "arousal": "Arousal ()"}


def _profusion_xml(night: SimulatedNight) -> bytes:
    root = ET.Element("CMPStudyConfig")
    ET.SubElement(root, "EpochLength").text = f"{night.epoch_s:g}"
    events = ET.SubElement(root, "ScoredEvents")
    for onset, duration, kind in zip(night.events["onset_s"], night.events["duration_s"], night.events["event"],
                                     strict=True):
        event = ET.SubElement(events, "ScoredEvent")
        ET.SubElement(event, "Name").text = _PROFUSION_EVENTS[kind]
        ET.SubElement(event, "Start").text = f"{onset:.1f}"
        ET.SubElement(event, "Duration").text = f"{duration:.1f}"
    stages = ET.SubElement(root, "SleepStages")
    for code in night.hypnogram:
        ET.SubElement(stages, "SleepStage").text = str({4: 5}.get(int(code), int(code)))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _hypnogram_edf(night: SimulatedNight, labels: dict[int, str], per_epoch: bool) -> bytes:
    """A signal-less EDF+ of stage runs (Sleep-EDF) or, with ``per_epoch``, epochs between
    lights marks (HMC; no marks when only part of the night is recorded) as annotations."""
    import edfio

    hyp, epoch_s = night.hypnogram, night.epoch_s
    lights = per_epoch and night.window_start_s is None
    annotations = []
    if lights:
        annotations.append(edfio.EdfAnnotation(0.0, 0.0, "Lights off@@EEG C4-M1"))
    change = np.flatnonzero(np.diff(hyp)) + 1
    runs = zip(np.r_[0, change], np.r_[change, hyp.size], strict=True) if not per_epoch else \
        ((i, i + 1) for i in range(hyp.size))
    annotations += [edfio.EdfAnnotation(a * epoch_s, (b - a) * epoch_s, labels[int(hyp[a])]) for a, b in runs]
    if lights:
        annotations.append(edfio.EdfAnnotation(hyp.size * epoch_s - 1.0, 0.0, "Lights on@@EEG C4-M1"))
    edf = edfio.Edf([], starttime=night.start.time(), annotations=annotations,
                    recording=edfio.Recording(startdate=night.start.date()))
    buffer = io.BytesIO()
    edf.write(buffer)
    return buffer.getvalue()


def write_styled_night(night: SimulatedNight, out_dir: str | Path, style: str, number: int) -> tuple[Path, Path]:
    """Write ``night`` as cohort ``style`` writes its ``number``-th night (from 1); returns
    (recording, scoring)."""
    chosen = STYLES[check_option("style", style, STYLES)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    number += chosen.first_number - 1
    psg = out / (chosen.psg_name.format(n=number) + ".edf")
    scoring = out / chosen.scoring_name.format(n=number)
    styled = dataclasses.replace(night, signals=_styled_signals(night, chosen))
    atomic_write_bytes(psg, edf_bytes(styled, record_s=chosen.record_s, annotations=False))
    if chosen.scoring == "nsrr":
        text = nsrr_xml(night)
    elif chosen.scoring == "profusion":
        text = _profusion_xml(night)
    elif chosen.scoring == "edf-hypnogram":
        text = _hypnogram_edf(night, {0: "Sleep stage W", 1: "Sleep stage 1", 2: "Sleep stage 2",
                                      3: "Sleep stage 3", 4: "Sleep stage R"}, per_epoch=False)
    else:
        text = _hypnogram_edf(night, {0: "Sleep stage W", 1: "Sleep stage N1", 2: "Sleep stage N2",
                                      3: "Sleep stage N3", 4: "Sleep stage R"}, per_epoch=True)
    atomic_write_bytes(scoring, text)
    return psg, scoring

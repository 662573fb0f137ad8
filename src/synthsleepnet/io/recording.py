"""Read PSG recordings: EDF/EDF+/BDF through edfio, anything else MNE reads as a fallback.

Each channel is kept at its native rate (no upsampling to the fastest channel, unlike MNE), and
voltages are converted to µV so every later step can assume one unit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from .._validation import ChannelNotFoundError, PSGReadError, check_path_exists

__all__ = ["Annotation", "Recording", "Signal", "read_recording"]

_TO_MICROVOLT = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
                 "mv": 1e3, "millivolt": 1e3, "v": 1e6, "volt": 1e6, "volts": 1e6, "nv": 1e-3}
_EDFIO_SUFFIXES = {".edf", ".rec", ".bdf"}


@dataclasses.dataclass
class Signal:
    """One channel at its native rate.

    ``data`` holds physical values: µV for any voltage (``unit == "uV"``), otherwise the file's
    own unit (``%`` for SpO2, arbitrary for airflow). ``original_unit`` is what the file said.
    """

    label: str
    data: np.ndarray
    sfreq: float
    unit: str
    original_unit: str

    @property
    def duration_s(self) -> float:
        return self.data.size / self.sfreq


@dataclasses.dataclass(frozen=True)
class Annotation:
    """An annotation embedded in the recording (EDF+ TAL): onset and duration in seconds."""

    onset_s: float
    duration_s: float
    text: str


@dataclasses.dataclass
class Recording:
    """A PSG recording: channels at native rates, embedded annotations, start time."""

    path: Path
    signals: list[Signal]
    start: dt.datetime | None
    annotations: list[Annotation]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.signals]

    @property
    def duration_s(self) -> float:
        """Length of the recording: the longest channel, in seconds."""
        return max((s.duration_s for s in self.signals), default=0.0)

    def signal(self, label: str) -> Signal:
        """Return the channel called ``label``; the error lists the available labels."""
        for sig in self.signals:
            if sig.label == label:
                return sig
        raise ChannelNotFoundError(f"{self.path}: no channel {label!r}; available: {self.labels}")


def _unit_factor(unit: str) -> float | None:
    return _TO_MICROVOLT.get(unit.strip().lower().replace(" ", ""))


def _make_signal(label: str, data: np.ndarray, sfreq: float, unit: str, path: Path) -> Signal:
    factor = _unit_factor(unit)
    if factor is None:
        return Signal(label, np.asarray(data, dtype=np.float64), sfreq, unit, unit)
    if factor != 1.0:
        logger.info("%s: channel %r converted from %s to uV", path.name, label, unit)
    return Signal(label, np.asarray(data, dtype=np.float64) * factor, sfreq, "uV", unit)


def _edfio_start(edf: object) -> dt.datetime | None:
    import edfio

    try:
        return dt.datetime.combine(edf.startdate, edf.starttime)  # type: ignore[attr-defined]
    except (edfio.AnonymizedDateError, ValueError):
        return None


def _read_edfio(path: Path, channels: Sequence[str] | None, strict: bool) -> Recording:
    import edfio

    reader = edfio.read_bdf if path.suffix.lower() == ".bdf" else edfio.read_edf
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = reader(path, lazy_load_data=True)
    except Exception as err:  # edfio raises ValueError, IndexError, UnicodeError... for bad bytes
        raise PSGReadError(f"{path}: not a readable EDF/BDF file ({type(err).__name__}: {err})") from err
    notes = [f"repaired on reading: {w.message}" for w in caught]
    if notes and strict:
        raise PSGReadError(f"{path}: header and data disagree (truncated file, or a header that lies "
                           f"about its sample counts): {'; '.join(notes)}")
    for note in notes:
        logger.warning("%s: %s", path, note)
    wanted = None if channels is None else set(channels)
    signals = []
    for sig in edf.signals:
        if wanted is not None and sig.label not in wanted:
            continue
        try:
            data = sig.data
        except Exception as err:
            raise PSGReadError(f"{path}: channel {sig.label!r} cannot be decoded ({err})") from err
        signals.append(_make_signal(sig.label, data, float(sig.sampling_frequency),
                                    sig.physical_dimension, path))
    annotations = [Annotation(float(a.onset), float(a.duration or 0.0), a.text)
                   for a in edf.annotations]
    return Recording(path, signals, _edfio_start(edf), annotations, notes)


def _read_mne(path: Path, channels: Sequence[str] | None) -> Recording:
    import mne

    try:
        raw = mne.io.read_raw(path, preload=False, verbose="error")
    except Exception as err:
        raise PSGReadError(f"{path}: MNE cannot read this file ({type(err).__name__}: {err})") from err
    picks = raw.ch_names if channels is None else [c for c in raw.ch_names if c in set(channels)]
    data = raw.get_data(picks=picks)  # SI units: volts for voltage channels
    signals = []
    for row, name in zip(data, picks, strict=True):
        unit_code = raw.info["chs"][raw.ch_names.index(name)]["unit"]
        unit = "V" if unit_code == mne.io.constants.FIFF.FIFF_UNIT_V else ""
        signals.append(_make_signal(name, row, float(raw.info["sfreq"]), unit, path))
    start = raw.info["meas_date"]
    annotations = [Annotation(float(a["onset"]), float(a["duration"]), str(a["description"]))
                   for a in raw.annotations]
    notes = [f"read with MNE: all channels at {raw.info['sfreq']:g} Hz"]
    return Recording(path, signals, start.replace(tzinfo=None) if start else None, annotations, notes)


@verbose
def read_recording(
    path: str | Path,
    *,
    channels: Sequence[str] | None = None,
    strict: bool = False,
    verbose: bool | str | int | None = None,
) -> Recording:
    """Read a PSG recording with every channel at its native rate.

    EDF, EDF+ and BDF files go through edfio (record durations other than 1 s, mixed rates and
    annotation channels are handled); other formats (BrainVision, EEGLAB, FIF...) through MNE.

    Parameters
    ----------
    path : str | Path
        The recording.
    channels : sequence of str | None
        Labels to load; all when None. Unloaded channels cost no memory.
    strict : bool
        Refuse a file whose header and data disagree. By default the reader repairs it (drops an
        incomplete last record, corrects the record count), logs a warning naming the file and
        lists the repair in ``Recording.notes``.
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    Recording
        Signals (voltages in µV), embedded annotations and the start time (None if anonymised).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    PSGReadError
        If the file is not a readable recording, is truncated, or its header lies about its size.
    """
    path = check_path_exists(path, "recording")
    if path.stat().st_size == 0:
        raise PSGReadError(f"{path}: the file is empty")
    if path.suffix.lower() in _EDFIO_SUFFIXES:
        recording = _read_edfio(path, channels, strict)
    else:
        recording = _read_mne(path, channels)
    if channels is not None:
        missing = sorted(set(channels) - set(recording.labels))
        if missing:
            raise ChannelNotFoundError(f"{path}: channel(s) {missing} not in the file")
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s: %d channels, %.0f s", path.name, len(recording.signals), recording.duration_s)
    return recording

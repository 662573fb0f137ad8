"""Read PSG recordings: EDF/EDF+/BDF with our checked reader, anything else MNE reads.

Each channel is kept at its native rate (no upsampling to the fastest channel, unlike MNE), and
voltages are converted to µV so every later step can assume one unit. Channels are read on
demand, one at a time: opening a recording reads its header only, and preparing a night holds
one raw channel in memory at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from .._validation import ChannelNotFoundError, PSGReadError, check_path_exists
from .edf import EdfFile

__all__ = ["Annotation", "Recording", "Signal", "read_recording"]

_TO_MICROVOLT = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
                 "mv": 1e3, "millivolt": 1e3, "v": 1e6, "volt": 1e6, "volts": 1e6, "nv": 1e-3}
_EDF_SUFFIXES = {".edf", ".rec", ".bdf"}


def _unit_factor(unit: str) -> float | None:
    return _TO_MICROVOLT.get(unit.strip().lower().replace(" ", ""))


@dataclasses.dataclass
class Signal:
    """One channel at its native rate, read when its ``data`` is asked for.

    ``data`` holds physical values: µV for any voltage (``unit == "uV"``), otherwise the file's
    own unit (``%`` for SpO2, arbitrary for airflow); it is read from the file at each access and
    not kept, so a recording never holds more than the channel in use. ``original_unit`` is what
    the file said; ``problem`` says why the channel cannot be used (a broken calibration), and
    ``clipped_fraction`` (known after a read) the share of samples at the recorder's limits.
    """

    label: str
    sfreq: float
    n_samples: int
    unit: str
    original_unit: str
    loader: Callable[[], tuple[np.ndarray, float]] = dataclasses.field(repr=False)
    problem: str | None = None
    clipped_fraction: float | None = None
    transducer: str = ""  # the EDF header's transducer field (a position channel may state its codes there)

    @classmethod
    def from_array(cls, label: str, data: np.ndarray, sfreq: float, unit: str) -> Signal:
        """A signal held in memory (voltages converted to µV, like a file's)."""
        factor = _unit_factor(unit)
        values = np.asarray(data, dtype=np.float64) * (factor or 1.0)
        return cls(label, sfreq, int(values.size), "uV" if factor else unit, unit, lambda: (values.copy(), 0.0))

    @property
    def data(self) -> np.ndarray:
        values, self.clipped_fraction = self.loader()
        return values

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq if self.sfreq > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class Annotation:
    """An annotation embedded in the recording (EDF+ TAL): onset and duration in seconds."""

    onset_s: float
    duration_s: float
    text: str


@dataclasses.dataclass
class Recording:
    """A PSG recording: channels at native rates, embedded annotations, start time.

    ``gaps`` lists ``(onset_s, duration_s)`` where an EDF+D file has no data (its samples are NaN
    there); ``notes`` says what the reader repaired or could not read.
    """

    path: Path
    signals: list[Signal]
    start: dt.datetime | None
    annotations: list[Annotation]
    notes: list[str] = dataclasses.field(default_factory=list)
    gaps: list[tuple[float, float]] = dataclasses.field(default_factory=list)

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


def _edf_loader(edf: EdfFile, index: int, factor: float) -> Callable[[], tuple[np.ndarray, float]]:
    channel = edf.header.channels[index]

    def load() -> tuple[np.ndarray, float]:
        values, clipped = edf.read(channel)
        if factor != 1.0:
            values *= factor
        return values, clipped

    return load


def _read_edf(path: Path, strict: bool) -> Recording:
    edf = EdfFile(path, strict=strict)
    notes = list(edf.header.notes)
    signals = []
    for channel in edf.channels:
        factor = _unit_factor(channel.unit)
        sfreq = edf.header.sfreq(channel)
        n_samples = int(round(edf.duration_s * sfreq)) if edf.header.discontinuous else \
            edf.header.n_records * channel.samples_per_record
        signals.append(Signal(channel.label, sfreq, n_samples, "uV" if factor else channel.unit, channel.unit,
                              _edf_loader(edf, channel.index, factor or 1.0), channel.problem,
                              transducer=channel.transducer))
        if factor not in (None, 1.0):
            logger.debug("%s: channel %r is converted from %s to uV", path.name, channel.label, channel.unit)
    texts, annotation_notes = edf.annotations() if any(c.is_annotation for c in edf.header.channels) else ([], [])
    notes += annotation_notes
    gaps = edf.gaps()
    if gaps:
        total = sum(d for _, d in gaps)
        notes.append(f"EDF+D: {len(gaps)} gap(s) without data ({total:.0f} s in all, the first at "
                     f"{gaps[0][0]:.0f} s); their samples are missing and their epochs unscored")
    for note in notes:
        logger.warning("%s: %s", path, note)
    annotations = [Annotation(t.onset_s, t.duration_s, t.text) for t in texts]
    return Recording(path, signals, edf.header.start, annotations, notes, gaps)


def _read_mne(path: Path) -> Recording:
    import mne

    try:
        raw = mne.io.read_raw(path, preload=False, verbose="error")
    except Exception as err:  # MNE raises many error types for foreign files
        raise PSGReadError(f"{path}: MNE cannot read this file ({type(err).__name__}: {err})") from err
    sfreq = float(raw.info["sfreq"])
    signals = []
    for name, info in zip(raw.ch_names, raw.info["chs"], strict=True):
        unit = "V" if info["unit"] == mne.io.constants.FIFF.FIFF_UNIT_V else ""

        def load(name: str = name, factor: float = _unit_factor(unit) or 1.0) -> tuple[np.ndarray, float]:
            return raw.get_data(picks=[name])[0] * factor, 0.0

        signals.append(Signal(name, sfreq, int(raw.n_times), "uV" if unit else unit, unit, load))
    start = raw.info["meas_date"]
    annotations = [Annotation(float(a["onset"]), float(a["duration"]), str(a["description"]))
                   for a in raw.annotations]
    notes = [f"read with MNE: all channels at {sfreq:g} Hz"]
    return Recording(path, signals, start.replace(tzinfo=None) if start else None, annotations, notes)


@verbose
def read_recording(
    path: str | Path,
    *,
    channels: Sequence[str] | None = None,
    strict: bool = False,
    verbose: bool | str | int | None = None,
) -> Recording:
    """Open a PSG recording with every channel at its native rate (header now, samples on demand).

    EDF, EDF+ (continuous and discontinuous) and BDF files go through a checked reader: record
    durations other than 1 s, mixed rates and annotation channels are handled, and every header
    fault is either repaired and said (``Recording.notes``) or refused naming the field. Other
    formats (BrainVision, EEGLAB, FIF...) go through MNE.

    Parameters
    ----------
    path : str | Path
        The recording.
    channels : sequence of str | None
        Keep only these labels (all when None); each must be present. Channels are read on
        demand anyway, so this only narrows what the recording lists.
    strict : bool
        Refuse a file whose header and data disagree. By default the reader repairs it (drops an
        incomplete last record, corrects the record count), logs a warning naming the file and
        lists the repair in ``Recording.notes``.
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    Recording
        Signals (voltages in µV), embedded annotations, the start time (None if unknown), gaps.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    PSGReadError
        If the file is not a readable recording, or its header cannot describe its data.
    """
    path = check_path_exists(path, "recording")
    if path.stat().st_size == 0:
        raise PSGReadError(f"{path}: the file is empty")
    recording = _read_edf(path, strict) if path.suffix.lower() in _EDF_SUFFIXES else _read_mne(path)
    if channels is not None:
        missing = sorted(set(channels) - set(recording.labels))
        if missing:
            raise ChannelNotFoundError(f"{path}: channel(s) {missing} not in the file; it has {recording.labels}")
        recording.signals = [s for s in recording.signals if s.label in set(channels)]
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s: %d channels, %.0f s", path.name, len(recording.signals), recording.duration_s)
    return recording

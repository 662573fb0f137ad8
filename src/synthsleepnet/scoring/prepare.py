"""Prepare a recording for the models that will score it: NumPy/SciPy only (the checkpoints'
preprocessing and channels come from their headers), so it can run in a worker process while
another process imports torch and loads the models.

A fresh ``synthsleepnet score`` process spends about as long importing torch and loading the
models as reading and conditioning an 8-hour EDF; :func:`synthsleepnet.score_files.score_night`
runs the two side by side on two cores.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from .._config import PreprocessingConfig
from .._validation import CheckpointError, SignalQualityError
from ..io.annotations import Scoring, embedded_scoring, read_scoring
from ..io.body_position import read_body_position
from ..io.channels import ChannelTable, load_channel_table, map_channels
from ..io.recording import Recording, read_recording
from ..models.meta import CheckpointMeta, read_checkpoint_meta
from ..preprocessing.pipeline import NightReport, PreparedNight, prepare_recording
from ..preprocessing.signal import resample, spo2_percent

__all__ = ["PreparedInput", "prepare_for_checkpoints", "prepare_input", "shared_preparation"]


@dataclasses.dataclass(frozen=True)
class PreparedInput:
    """A recording prepared for the models: plain data, so a worker thread or process can hand it over."""

    source: Path
    labels: tuple[str, ...]
    start: dt.datetime | None
    night: PreparedNight
    has_reference: bool
    spo2: list[float] | None
    reference_respiratory: bool = False  # the reference scoring covers respiratory events
    heart_rate: list[float] | None = None  # bpm at 1 Hz, from the ECG
    r_peaks: list[float] | None = None  # the ECG's beats (s from the recording start)
    body_position: list[int] | None = None  # index in POSITIONS at 1 Hz (−1 unknown)


def _body_position_1hz(recording: Recording, channel_table: ChannelTable, report: NightReport) -> list[int] | None:
    """The night's body position at 1 Hz (:mod:`synthsleepnet.io.body_position`); None without a
    position channel or when its codes are unknown (said in ``report``)."""
    try:
        found = read_body_position(recording, channel_table)
    except ValueError as err:  # unknown codes, values the codes do not name, unreadable samples
        report.notes.append(f"no body position: {str(err).removeprefix(f'{recording.path}: ')}")
        return None
    return None if found is None else found[0].tolist()


def _heart_beats(recording: Recording, channel_table: ChannelTable, report: NightReport
                 ) -> tuple[list[float], list[float]] | None:
    """The night's heart rate (bpm) at 1 Hz and its R peaks (s, to the millisecond) from its
    first usable ECG (:func:`synthsleepnet.cardiac.recording_beats`); None without one (why is
    said in ``report``)."""
    from ..cardiac import heart_rate, recording_beats

    found = recording_beats(recording, channel_table, report.notes)
    if found is None:
        return None
    peaks, duration_s = found
    return [float(v) for v in np.round(heart_rate(peaks, duration_s), 1)], [float(v) for v in np.round(peaks, 3)]


def _spo2_1hz(recording: Recording, channel_table: ChannelTable, report: NightReport) -> list[float] | None:
    """The night's SpO2 in % at 1 Hz for the respiratory measures; None without one, or when it
    reads as no saturation (said in ``report``, unless conditioning it for a model said so)."""
    for ch in map_channels(recording.labels, channel_table).channels:
        if ch.modality == "spo2" and not ch.derived:
            sig = recording.signal(ch.sources[0])
            said = ch.name in report.channels_used or ch.name in report.channels_skipped
            try:
                data, converted = spo2_percent(sig.data, sig.label, str(recording.path))
            except SignalQualityError as err:
                if not said:
                    report.channels_skipped[ch.name] = str(err).removeprefix(f"{recording.path}: ")
                return None
            if converted and not said:
                report.notes.append(converted)
            return [float(v) for v in np.round(resample(data, sig.sfreq, 1.0), 2)]
    return None


def prepare_input(recording: str | Path | Recording, annotations: str | Path | Scoring | None, *,
                  config: PreprocessingConfig, channel_table: ChannelTable, channels: Collection[str]
                  ) -> PreparedInput:
    """Read ``recording`` and condition the ``channels`` the models need (and their stand-ins).
    Without ``annotations``, stage annotations the recording holds itself (an EDF+ export that
    embeds the technologist's scoring) are the reference
    (:func:`~synthsleepnet.io.annotations.embedded_scoring`)."""
    if not isinstance(recording, Recording):
        recording = read_recording(recording)
    if isinstance(annotations, str | Path):
        annotations = read_scoring(annotations, epoch_s=config.epoch_s)
    annotations = annotations if annotations is not None else embedded_scoring(recording, config.epoch_s)
    night = prepare_recording(recording, annotations, config=config, channel_table=channel_table, only=channels)
    rate, beats = _heart_beats(recording, channel_table, night.report) or (None, None)
    return PreparedInput(recording.path, tuple(recording.labels), recording.start, night, annotations is not None,
                         _spo2_1hz(recording, channel_table, night.report),
                         annotations is not None and annotations.respiratory_scored, rate, beats,
                         _body_position_1hz(recording, channel_table, night.report))


def shared_preparation(metas: Mapping[str, CheckpointMeta]) -> tuple[PreprocessingConfig, set[str]]:
    """The one preprocessing the checkpoints (path → metadata) share, and the union of their channels.

    Raises
    ------
    CheckpointError
        Naming the checkpoint that records no preprocessing, or the differing settings.
    """
    configs, hashes = {}, {}
    for path, meta in metas.items():
        if meta.preprocessing is None:
            raise CheckpointError(f"{path} does not record the preprocessing of its training data")
        configs[meta.preprocessing_hash] = meta.preprocessing
        hashes[path] = meta.preprocessing_hash
    if len(configs) != 1:
        which = "; ".join(f"{path}: preprocessing {digest}" for path, digest in hashes.items())
        raise CheckpointError(f"the checkpoints were trained on differently prepared data ({which})")
    return next(iter(configs.values())), {c for meta in metas.values() for c in meta.channels}


def prepare_for_checkpoints(recording: str | Path, annotations: str | Path | None, checkpoints: Sequence[str | Path],
                            channel_file: str | Path | None = None) -> PreparedInput:
    """Prepare ``recording`` as the checkpoints' training data were, from their metadata alone."""
    config, channels = shared_preparation({str(path): read_checkpoint_meta(path) for path in checkpoints})
    return prepare_input(recording, annotations, config=config, channel_table=load_channel_table(channel_file),
                         channels=channels)

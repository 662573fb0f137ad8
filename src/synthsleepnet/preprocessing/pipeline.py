"""One night from file to model-ready epochs: read → map → condition → epoch → label."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._config import PreprocessingConfig, config_hash, config_to_dict
from .._logging import logger, verbose
from .._validation import ChannelNotFoundError, PSGReadError, SignalQualityError
from ..io.annotations import Scoring, lights_marks, read_scoring
from ..io.body_position import channel_codes
from ..io.channels import (
    MODALITIES,
    ChannelMapping,
    ChannelTable,
    MappedChannel,
    load_channel_table,
    map_channels,
)
from ..io.recording import Recording, Signal, read_recording
from ..tasks import UNSCORED
from .labels import align_scoring
from .signal import bandpass, check_signal_quality, fit_band, resample, robust_scale, spo2_percent

__all__ = ["NightReport", "PreparedNight", "channel_data", "describe_recording", "prepare_recording"]

_BIOPOTENTIAL = ("eeg", "eog", "emg", "ecg")
#: Plausible interquartile range of a biopotential in µV; outside it the unit is probably wrong.
_PLAUSIBLE_IQR_UV = (0.2, 2000.0)


@dataclasses.dataclass
class NightReport:
    """What preparing one night used, changed and left out (nothing is dropped silently)."""

    source: str
    scoring: str | None
    channels_used: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    channels_skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    unmapped_labels: list[str] = dataclasses.field(default_factory=list)
    modalities_missing: list[str] = dataclasses.field(default_factory=list)
    truncated_s: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """A few lines a person reads after preparing a night."""
        lines = [f"{self.source}: {len(self.channels_used)} channels "
                 f"({', '.join(self.channels_used)})"]
        lines += [f"  skipped {name}: {why}" for name, why in self.channels_skipped.items()]
        lines += [f"  {name}: {info[key]}" for name, info in self.channels_used.items()
                  for key in ("band_note", "unit_note", "amplitude_warning") if key in info]
        if self.modalities_missing:
            lines.append(f"  modalities missing: {', '.join(self.modalities_missing)}")
        if self.truncated_s:
            lines.append(f"  trailing partial epoch truncated: {self.truncated_s:.1f} s")
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


@dataclasses.dataclass
class PreparedNight:
    """A prepared night.

    Attributes
    ----------
    signals : ndarray of float32, shape (E, C, T)
        Epochs × canonical channels × samples (T = ``epoch_s × sfreq``).
    channels : list of str
        Canonical channel names, in table order.
    modalities : list of str
        Modality of each channel.
    labels : ndarray of int8, shape (E, n_tasks)
        One column per task in ``label_names`` (stage, apnea, hypopnea; -1 unknown).
    label_names : tuple of str
        The task of each label column (the task registry's order when prepared).
    events : DataFrame
        Scored events (``onset_s``, ``duration_s``, ``event``) from the recording start.
    config : PreprocessingConfig
        The settings used.
    report : NightReport
        What was used, skipped and changed.
    start_iso : str | None
        Recording start (ISO 8601), when known.
    gap_epochs : list of int
        Epochs an EDF+D gap overlaps: their signal is bridged and their labels unscored.
    lights_s : tuple of (float | None)
        Lights off and on in seconds from the recording start: the scoring's marks, else the
        recording's own annotations' (:func:`~synthsleepnet.io.annotations.lights_marks`); None
        where unmarked. Scoring counts time in bed between them.
    scored_desaturations : DataFrame | None
        The scorer's SpO2 desaturations with their depth (``onset_s``, ``duration_s``,
        ``drop_pct``) from the recording start, where the scoring states it (NSRR XML, Profusion):
        what the reference's AHI by the AASM hypopnea rules is counted with when scoring.
    """

    signals: np.ndarray
    channels: list[str]
    modalities: list[str]
    labels: np.ndarray
    label_names: tuple[str, ...]
    events: pd.DataFrame
    config: PreprocessingConfig
    report: NightReport
    start_iso: str | None = None
    gap_epochs: list[int] = dataclasses.field(default_factory=list)
    lights_s: tuple[float | None, float | None] = (None, None)
    scored_desaturations: pd.DataFrame | None = None

    @property
    def n_epochs(self) -> int:
        return int(self.signals.shape[0])

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description stored with the night."""
        return {
            "channels": self.channels,
            "modalities": self.modalities,
            "n_epochs": self.n_epochs,
            "labels": list(self.label_names),
            "start": self.start_iso,
            "gap_epochs": self.gap_epochs,
            "preprocessing": config_to_dict(self.config),
            "preprocessing_hash": config_hash(self.config),
            "report": self.report.to_dict(),
        }


#: Share of samples at the recorder's digital limits above which a channel is called clipped.
_CLIPPED_FRACTION = 0.01


def channel_data(recording: Recording, channel: MappedChannel) -> tuple[np.ndarray, float, str, float]:
    """A channel's samples (derived when needed), rate, unit and share of clipped samples."""
    first = recording.signal(channel.sources[0])
    for sig in (recording.signal(s) for s in channel.sources):
        if sig.problem:
            raise SignalQualityError(f"{recording.path}: channel {sig.label!r} cannot be used: {sig.problem}")
    data = first.data
    clipped = first.clipped_fraction or 0.0
    if not channel.derived:
        return data, first.sfreq, first.unit, clipped
    second = recording.signal(channel.sources[1])
    if first.sfreq != second.sfreq or first.n_samples != second.n_samples:
        raise SignalQualityError(
            f"{recording.path}: cannot derive {channel.name} as {channel.sources[0]} − "
            f"{channel.sources[1]}: rates {first.sfreq:g}/{second.sfreq:g} Hz, lengths "
            f"{first.n_samples}/{second.n_samples} samples differ")
    data -= second.data
    return data, first.sfreq, first.unit, max(clipped, second.clipped_fraction or 0.0)


def _gap_mask(n_samples: int, sfreq: float, gaps: list[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(n_samples, dtype=bool)
    for onset, duration in gaps:
        mask[int(np.floor(onset * sfreq)):int(np.ceil((onset + duration) * sfreq))] = True
    return mask


def _bridge_gaps(data: np.ndarray, sfreq: float, gaps: list[tuple[float, float]]) -> None:
    """Fill the samples of recording gaps (NaN) by linear interpolation, in place, so the
    filters see no step; the epochs they touch are unscored anyway."""
    if not gaps:
        return
    missing = _gap_mask(data.size, sfreq, gaps) & np.isnan(data)
    if missing.any() and not missing.all():
        index = np.arange(data.size)
        data[missing] = np.interp(index[missing], index[~missing], data[~missing])


def _condition(data: np.ndarray, sfreq: float, unit: str, clipped: float, channel: MappedChannel,
               config: PreprocessingConfig, source: str, gaps: list[tuple[float, float]]
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """Check, resample, filter and scale one channel; raise SignalQualityError if unusable."""
    label = "−".join(channel.sources)
    _bridge_gaps(data, sfreq, gaps)
    check_signal_quality(data, label, source)
    info: dict[str, Any] = {"source": list(channel.sources), "native_sfreq": sfreq, "unit": unit}
    band, note = fit_band(config.bands_hz.get(channel.modality), sfreq, config.sfreq)
    if note and band is None and config.bands_hz.get(channel.modality) is not None:
        raise SignalQualityError(f"{source}: channel {label!r} ({channel.name}): {note}")
    if note:
        info["band_note"] = note
    if clipped > _CLIPPED_FRACTION:
        info["clipping_warning"] = (f"{100 * clipped:.1f} % of the samples of {label!r} sit at the recorder's "
                                    "limits: the signal is clipped (saturated or railing amplifier)")
        logger.warning("%s: %s", source, info["clipping_warning"])
    if channel.modality == "spo2":
        data, converted = spo2_percent(data, label, source)
        if converted:
            info["unit_note"] = converted
    if channel.modality in _BIOPOTENTIAL:
        if unit != "uV":
            info["unit_note"] = f"unit {unit!r} is not a voltage; assumed µV"
        q25, q75 = np.percentile(data[::max(data.size // 1_000_000, 1)], [25, 75])  # a million samples suffice
        lo, hi = _PLAUSIBLE_IQR_UV
        if not lo <= q75 - q25 <= hi:
            message = (f"{source}: channel {label!r} has an interquartile range of {q75 - q25:.3g} µV, "
                       f"outside the plausible {lo:g}–{hi:g} µV; check its physical unit")
            logger.warning("%s", message)
            info["amplitude_warning"] = message
    x = resample(data, sfreq, config.sfreq)
    del data
    x = bandpass(x, config.sfreq, band, config.filter_order)
    info["band_hz"] = list(band) if band else None
    if config.scaling.get(channel.modality, "robust") == "fixed":
        offset, scale = config.fixed_scaling[channel.modality]
        x = np.clip((x - offset) / scale, -config.clip, config.clip)
        info["scaling"] = {"kind": "fixed", "offset": offset, "scale": scale}
    else:
        x, median, iqr = robust_scale(x, config.clip, label, source)
        info["scaling"] = {"kind": "robust", "median": median, "iqr": iqr}
    return x, info


def _epoch_count(recording: Recording, mapping_sources: list[str], epoch_s: float) -> tuple[int, float]:
    """Whole epochs the mapped channels all cover, and the trailing partial epoch in seconds."""
    usable = [recording.signal(label) for label in mapping_sources]
    durations = [s.duration_s for s in usable if not s.problem] or [s.duration_s for s in recording.signals]
    duration = min(durations)
    n_epochs = int(np.floor(duration / epoch_s + 1e-9))
    return n_epochs, duration - n_epochs * epoch_s


def _select(mapping: ChannelMapping, wanted: set[str], table: ChannelTable | None) -> ChannelMapping:
    """The mapped channels ``wanted``, and all of a wanted channel's modality when it is absent."""
    table = table or load_channel_table()
    names = {c.name for c in mapping.channels}
    modalities = {table.modality_of(w) for w in wanted if w not in names}
    keep = tuple(c for c in mapping.channels if c.name in wanted or c.modality in modalities)
    return dataclasses.replace(mapping, channels=keep)


def gap_epochs(gaps: list[tuple[float, float]], n_epochs: int, epoch_s: float) -> np.ndarray:
    """Indices of the epochs a recording gap overlaps (they are unscored and flagged)."""
    hit = np.zeros(n_epochs, dtype=bool)
    for onset, duration in gaps:
        first, last = int(np.floor(onset / epoch_s)), int(np.ceil((onset + duration) / epoch_s))
        hit[max(first, 0):min(last, n_epochs)] = True
    return np.flatnonzero(hit)


@verbose
def prepare_recording(
    recording: str | Path | Recording,
    scoring: str | Path | Scoring | None = None,
    *,
    config: PreprocessingConfig | None = None,
    channel_table: ChannelTable | None = None,
    required: Iterable[str] = (),
    only: Iterable[str] | None = None,
    verbose: bool | str | int | None = None,
) -> PreparedNight:
    """Prepare one night: canonical channels at 100 Hz, band-passed, scaled, in 30-s epochs.

    Parameters
    ----------
    recording : str | Path | Recording
        The PSG file (EDF/EDF+/BDF, or what MNE reads) or an already read Recording.
    scoring : str | Path | Scoring | None
        Its scoring (NSRR XML, EDF+ hypnogram, CSV/TSV); without one every label is -1.
    config : PreprocessingConfig | None
        Preprocessing settings; defaults to the paper's.
    channel_table : ChannelTable | None
        Channel aliases; the built-in table when None.
    required : iterable of str
        Modalities or canonical channels the night must provide after quality checks.
    only : iterable of str | None
        Canonical channels wanted (scoring asks for its models' channels): others are not
        conditioned, except channels of a wanted channel's modality when that one is absent
        (they may stand in for it). None prepares every mapped channel.
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    PreparedNight
        Epochs, labels, events and a report of what was used, skipped, trimmed and repaired.

    Raises
    ------
    ChannelNotFoundError
        If a required modality or channel is missing or unusable.
    AnnotationError
        If the scoring cannot be read or belongs to another recording.
    """
    config = config or PreprocessingConfig()
    if not isinstance(recording, Recording):
        recording = read_recording(recording)
    if isinstance(scoring, str | Path):
        scoring = read_scoring(scoring, epoch_s=config.epoch_s)
    source = str(recording.path)
    required = tuple(required)
    mapping = map_channels(recording.labels, channel_table, required=required, source=source)
    report = NightReport(source, str(scoring.source) if scoring is not None else None,
                         unmapped_labels=list(mapping.unmapped), notes=list(recording.notes))
    for name, labels in mapping.duplicates.items():
        report.notes.append(f"{name}: also matched {list(labels)}; the first label was used")
    if not recording.signals:
        raise ChannelNotFoundError(f"{source}: the recording holds no signal channels")
    if only is not None:
        mapping = _select(mapping, set(only), channel_table)
    sources = [label for channel in mapping.channels for label in channel.sources]
    n_epochs, truncated_s = _epoch_count(recording, sources, config.epoch_s)
    if n_epochs == 0:
        raise SignalQualityError(f"{source}: the recording is {recording.duration_s:.1f} s long, "
                                 f"shorter than one {config.epoch_s:g}-s epoch")
    report.truncated_s = round(truncated_s, 6)
    n_samples = n_epochs * config.epoch_samples
    # filled one channel at a time: memory holds the output and the channel being conditioned
    signals = np.empty((n_epochs, len(mapping.channels), config.epoch_samples), dtype=np.float32)
    channels: list[str] = []
    for channel in mapping.channels:
        try:
            data, sfreq, unit, clipped = channel_data(recording, channel)
            conditioned, info = _condition(data, sfreq, unit, clipped, channel, config, source, recording.gaps)
        except (SignalQualityError, PSGReadError) as err:
            report.channels_skipped[channel.name] = str(err).removeprefix(f"{source}: ")
            logger.warning("%s", err)
            continue
        if conditioned.size < n_samples:
            report.channels_skipped[channel.name] = (f"{conditioned.size / config.sfreq:.1f} s long after "
                                                     f"resampling, shorter than the night's {n_epochs} epochs")
            continue
        signals[:, len(channels)] = conditioned[:n_samples].reshape(n_epochs, config.epoch_samples)
        channels.append(channel.name)
        report.channels_used[channel.name] = info
    signals = signals[:, :len(channels)]  # a view; the store writes it contiguously
    modality_of = {c.name: c.modality for c in mapping.channels}
    modalities = [modality_of[name] for name in channels]
    report.modalities_missing = [m for m in MODALITIES if m not in modalities]
    for want in required:
        if want not in modalities and want not in channels:
            raise ChannelNotFoundError(
                f"{source}: required {want!r} is unusable: "
                + "; ".join(f"{k}: {v}" for k, v in report.channels_skipped.items()))
    if not channels:
        raise ChannelNotFoundError(f"{source}: no usable canonical channel. Labels: {recording.labels}; "
                                   f"skipped: {report.channels_skipped}")
    aligned = align_scoring(scoring, recording.start, n_epochs, config.epoch_s,
                            min_overlap_s=config.event_min_overlap_s, source=source)
    report.notes.extend(aligned.notes)
    gapped = gap_epochs(recording.gaps, n_epochs, config.epoch_s)
    if gapped.size:
        aligned.labels[gapped] = UNSCORED
        report.notes.append(f"{gapped.size} epoch(s) overlap recording gaps: their labels are unscored (-1)")
    start_iso = recording.start.isoformat() if recording.start else None
    lights = aligned.lights_s if aligned.lights_s != (None, None) else lights_marks(recording.annotations,
                                                                                   report.notes)
    return PreparedNight(signals, channels, modalities, aligned.labels, aligned.names, aligned.events, config,
                         report, start_iso, gapped.tolist(), lights, aligned.desaturations)


def describe_recording(
    recording: str | Path | Recording,
    *,
    config: PreprocessingConfig | None = None,
    channel_table: ChannelTable | None = None,
) -> list[dict[str, Any]]:
    """One row per channel of a recording: rate, duration, unit, and what preparing it would do.

    ``use`` explains every label: the canonical channel and modality it feeds and by which rule
    (an alias, a derivation, or how the montage reader read it), or why it is not used (a
    sensor that is no model input, an ambiguous label, a duplicate, a rate too low for the
    modality's band, a broken calibration). Reads headers only.
    """
    config = config or PreprocessingConfig()
    if not isinstance(recording, Recording):
        recording = read_recording(recording)
    table = channel_table or load_channel_table()
    mapping = map_channels(recording.labels, table, source=str(recording.path))
    feeds = mapping.by_label()
    position = table.position_label(recording.labels)
    rows = []
    for sig in recording.signals:
        row: dict[str, Any] = {"label": sig.label, "sfreq": sig.sfreq, "n_samples": sig.n_samples,
                               "duration_s": sig.duration_s, "unit": sig.original_unit,
                               "canonical": None, "modality": None}
        channel = feeds.get(sig.label)
        explanation = mapping.explanations.get(sig.label, "not used: no rule matches")
        if sig.problem:
            row["use"] = f"not used: {sig.problem}"
        elif sig.label == position:
            row["use"], row["position_codes"] = _position_use(sig, table)
        elif channel is None:
            row["use"] = explanation
        else:
            row.update(canonical=channel.name, modality=channel.modality)
            band, note = fit_band(config.bands_hz.get(channel.modality), sig.sfreq, config.sfreq)
            if note and band is None and config.bands_hz.get(channel.modality) is not None:
                row["use"] = f"{channel.name} ({channel.modality}) but not used: {note}"
            else:
                row["use"] = explanation + (f"; {note}" if note else "")
        rows.append(row)
    return rows


def _position_use(signal: Signal, table: ChannelTable) -> tuple[str, dict[int, str]]:
    """What scoring makes of the body-position channel (:mod:`synthsleepnet.io.body_position`),
    and its codes (none where unknown)."""
    codes, whence = channel_codes(signal, table)
    if not codes:
        return ("not used: body position (no model input) whose codes are unknown; state them in a channel file's "
                "[position] section for sleep and AHI by position"), codes
    return f"body position (no model input): sleep and AHI by position, codes {codes} from {whence}", codes


def suggest_channel_file(rows: list[dict[str, Any]], source: str) -> str:
    """A channel file (TOML) for the labels :func:`describe_recording` could not map.

    Each unmapped label gets a commented alias line to complete with its canonical channel;
    labels that are no model input are listed as comments. Load it with ``--channel-file``.
    """
    lines = [f"# Channel file for {source}, written by `synthsleepnet info --suggest`.",
             "# For each label below, uncomment its line and put the canonical channel it records",
             "# (C4-M1, C3-M2, F4-M1, O2-M1, E1-M2, E2-M2, Chin, ECG, Airflow, Thor, Abdo, SpO2, ... or a new",
             "# name under [channels] with its modality). Then: synthsleepnet prepare ... --channel-file THIS_FILE",
             "", "[aliases]"]
    todo = [r for r in rows if r["canonical"] is None and "position_codes" not in r]
    for row in todo:
        label = row["label"].replace('"', '\\"')
        lines.append(f"# {row['use']}")
        lines.append(f'# "CANONICAL-CHANNEL" = ["{label}"]')
    if not todo:
        lines.append("# every label is mapped; nothing to add")
    for row in rows:
        if row.get("position_codes") == {}:
            lines += ["", "[position]", f"# the codes of the body-position channel {row['label']!r} (each recorder has its "
                      "own: see its manual or the cohort's documentation); uncomment and correct",
                      '# codes = { 0 = "right", 1 = "supine", 2 = "left", 3 = "prone", 4 = "upright" }']
    return "\n".join(lines) + "\n"

"""Score a recording with trained checkpoints: read → prepare → encode → classify → result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._config import EventDecoding, PreprocessingConfig, config_hash
from .._device import Runtime, resolve_runtime
from .._logging import logger, verbose
from .._validation import (
    ChannelNotFoundError,
    CheckpointError,
    Lights,
    check_finite_output,
    clock_time,
)
from ..io.annotations import Scoring
from ..io.channels import ChannelTable, load_channel_table
from ..io.montage import stand_in
from ..io.recording import Recording
from ..models.checkpoint import CheckpointMeta, load_classifier
from ..models.classifier import SleepClassifier
from ..models.inference import fuse_for_inference
from ..preprocessing.labels import NO_SCORING
from ..stats import place_lights
from ..tasks import RESPIRATORY_EVENTS, STAGES, get_task
from .prepare import PreparedInput, prepare_input, shared_preparation
from .result import ScoringResult

__all__ = ["NightScorer", "Scorer", "load_scorers", "score_recording"]


@dataclasses.dataclass(frozen=True)
class Scorer:
    """A loaded classifier, its metadata and the file it came from."""

    model: SleepClassifier
    meta: CheckpointMeta
    path: str


def load_scorers(checkpoints: Sequence[str | Path], runtime: Runtime | None = None
                 ) -> tuple[dict[str, Scorer], PreprocessingConfig]:
    """Load probe/fine-tune checkpoints, at most one per task, sharing one preprocessing; each model
    frozen for scoring with its BatchNorms and LoRA adapters folded in
    (:func:`~synthsleepnet.models.inference.fuse_for_inference`)."""
    if not checkpoints:
        raise ValueError("give at least one model checkpoint (a probe or fine-tune checkpoint)")
    device = runtime.device if runtime else "cpu"
    scorers: dict[str, Scorer] = {}
    for path in checkpoints:
        model, meta = load_classifier(path, device=device)
        task = get_task(str(meta.task)).name
        if task in scorers:
            raise CheckpointError(f"two checkpoints for task {task!r}: {scorers[task].path} and {path}")
        scorers[task] = Scorer(fuse_for_inference(model), meta, str(path))
    preprocessing, _ = shared_preparation({s.path: s.meta for s in scorers.values()})
    return scorers, preprocessing


def _match_channels(wanted: Sequence[str], available: Mapping[str, np.ndarray]
                    ) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """The model's channels present in the night; a missing one is stood in for by the nearest
    unused channel of its modality (:func:`~synthsleepnet.io.montage.stand_in`: C3-M1 for C4-M1,
    Fpz-Cz only when no central derivation exists), which is reported as ``wanted → (actual, why)``."""
    inputs = {c: available[c] for c in wanted if c in available}
    taken = set(inputs)
    swapped: dict[str, tuple[str, str]] = {}
    for channel in wanted:
        if channel in inputs:
            continue
        found = stand_in(channel, [c for c in available if c not in taken])
        if found is not None:
            inputs[channel] = available[found[0]]
            taken.add(found[0])
            swapped[channel] = found
    return inputs, swapped


#: Modalities without which a model of a task is unreliable, when it was trained with them.
_ESSENTIAL = {"stage": ({"eeg"}, "EEG"), "apnea": ({"resp", "spo2"}, "airflow or SpO2"),
              "hypopnea": ({"resp", "spo2"}, "airflow or SpO2"), "events": ({"resp", "spo2"}, "airflow or SpO2")}


def _reliability(task: str, trained: set[str], used: set[str], swapped: Mapping[str, tuple[str, str]]
                 ) -> list[tuple[str, str]]:
    """``(level, reason)`` pairs for one model: ``low`` when it runs without what it needs most."""
    out = []
    essential, words = _ESSENTIAL.get(task, (set(), ""))
    if essential & trained and not essential & used:
        out.append(("low", f"the {task} model was trained with {words} but this night gives it none "
                           f"(it used {', '.join(sorted(used)) or 'nothing'})"))
    missing = sorted(trained - used)
    if missing:
        out.append(("reduced", f"the {task} model ran without {', '.join(missing)}"))
    out += [("reduced", f"{actual} stood in for {wanted} ({why})") for wanted, (actual, why) in swapped.items()]
    return out


@dataclasses.dataclass(frozen=True)
class NightScorer:
    """Models loaded once, and the settings to score any number of nights with them.

    ``prepare`` (reading and conditioning, NumPy/SciPy) and ``score`` (the models) are separate
    so batch scoring can prepare the next night in a worker while the models run.
    """

    scorers: dict[str, Scorer]
    config: PreprocessingConfig
    table: ChannelTable
    runtime: Runtime
    threshold: float | None = None
    require: tuple[str, ...] = ()
    timezone: dt.tzinfo = dt.UTC
    lights: tuple[dt.time | None, dt.time | None] = (None, None)

    @classmethod
    def load(cls, models: Sequence[str | Path], *, channel_file: str | Path | None = None, device: str = "auto",
             precision: str = "auto", threshold: float | None = None, require: Sequence[str] = (),
             timezone: dt.tzinfo = dt.UTC, lights: Lights = (None, None)) -> NightScorer:
        off, on = (None if t is None else clock_time(t, f"lights {mark}") for t, mark in zip(lights, ("off", "on"),
                                                                                              strict=True))
        runtime = resolve_runtime(device, precision)
        scorers, config = load_scorers(models, runtime)
        return cls(scorers, config, load_channel_table(channel_file), runtime, threshold, tuple(require), timezone,
                   (off, on))

    def prepare(self, recording: str | Path | Recording, annotations: str | Path | Scoring | None = None
                ) -> PreparedInput:
        """Read and condition the channels the models need (and their stand-ins)."""
        _, channels = shared_preparation({s.path: s.meta for s in self.scorers.values()})
        return prepare_input(recording, annotations, config=self.config, channel_table=self.table, channels=channels)

    def _decoding(self) -> EventDecoding:
        """The events model's decoding (chosen on its validation nights), with the user's threshold."""
        chosen = next((s.meta.decoding for s in self.scorers.values() if s.meta.decoding), None) or EventDecoding()
        return chosen if self.threshold is None else dataclasses.replace(chosen, threshold=self.threshold)

    def score(self, prepared: PreparedInput) -> ScoringResult:
        """Run every model on a prepared night and assemble the result."""
        source, night = prepared.source, prepared.night
        if night.config != self.config:
            raise ValueError(f"{source} was prepared with other settings than the models' training data "
                             f"({config_hash(night.config)} vs {config_hash(self.config)})")
        modality_of = dict(zip(night.channels, night.modalities, strict=True))
        runs = self._run_models(prepared, modality_of)
        used_modalities = list(dict.fromkeys(modality_of[c] for c in runs.used))
        absent = [want for want in self.require if want not in used_modalities and want not in runs.used]
        if absent:
            raise ChannelNotFoundError(f"{source}: required {absent} cannot be used: the models used "
                                       f"{runs.used} ({', '.join(used_modalities)}); labels: {list(prepared.labels)}")
        stages = (["UNS"] * night.n_epochs if runs.stage_proba is None
                  else [STAGES[i] for i in runs.stage_proba.argmax(1)])
        for epoch in night.gap_epochs:  # no data there: not scored, whatever the model says
            stages[epoch] = "UNS"
        missing = sorted(c for c in runs.known - set(runs.used) if c not in runs.substitutions)
        level = "low" if any(lv == "low" for lv, _ in runs.flags) else "reduced" if runs.flags else "full"
        reliability = {"level": level, "reasons": list(dict.fromkeys(reason for _, reason in runs.flags))}
        for reason in reliability["reasons"]:
            logger.warning("%s: %s", source.name, reason)
        start = (prepared.start or dt.datetime(1985, 1, 1)).replace(tzinfo=self.timezone)
        lights, whence = self._lights(prepared)
        return ScoringResult(stages=stages, stage_proba=runs.stage_proba, event_proba=runs.event_proba,
                             epoch_s=self.config.epoch_s, start=start, source=str(source), models=runs.models,
                             channels_used=runs.used, channels_missing=missing, modalities_used=used_modalities,
                             reliability=reliability,
                             preprocessing_hash=str(next(iter(self.scorers.values())).meta.preprocessing_hash),
                             **_references(prepared),
                             threshold=0.5 if self.threshold is None else self.threshold, decoding=self._decoding(),
                             spo2=prepared.spo2, heart_rate=prepared.heart_rate, r_peaks=prepared.r_peaks,
                             body_position=prepared.body_position,
                             notes=_notes(prepared, runs.substitutions) + _lights_note(lights, whence, prepared.start),
                             second_proba=runs.second_proba, lights_off_s=lights[0], lights_on_s=lights[1])

    def _lights(self, prepared: PreparedInput) -> tuple[tuple[float | None, float | None], str]:
        """Lights off and on in seconds from the recording start, and whence: the clock times
        given (placed in the recording, which may run past midnight), else the marks of the
        scoring or the recording."""
        length_s = prepared.night.n_epochs * self.config.epoch_s
        placed = place_lights(self.lights, prepared.start, length_s, marked=prepared.night.lights_s,
                              source=str(prepared.source))
        return placed, "marked in the recording or its scoring" if self.lights == (None, None) else "as given"

    def _run_models(self, prepared: PreparedInput, modality_of: Mapping[str, str]) -> _ModelRuns:
        """Each task's model on the channels it knows, or their stand-ins."""
        source, night = prepared.source, prepared.night
        available = {c: night.signals[:, i] for i, c in enumerate(night.channels)}
        runs = _ModelRuns()
        for task, scorer in self.scorers.items():
            model, meta = scorer.model, scorer.meta
            runs.known |= set(model.channels)
            inputs, swapped = _match_channels(model.channels, available)
            runs.substitutions.update({wanted: actual for wanted, (actual, _) in swapped.items()})
            present = [swapped[c][0] if c in swapped else c for c in inputs]
            trained = {m for c in model.channels if (m := self.table.modality_of(c))}
            runs.flags += _reliability(task, trained, {modality_of[c] for c in present}, swapped)
            if not present:
                raise ValueError(f"{source}: the {task} model needs a channel of the modalities of "
                                 f"{model.channels}; the night has {night.channels} "
                                 f"(skipped: {night.report.channels_skipped})")
            began = time.perf_counter()
            proba = check_finite_output(model.predict_proba(inputs, runtime=self.runtime), scorer.path)
            seconds = time.perf_counter() - began
            if task == "stage":
                runs.stage_proba = proba
            elif get_task(task).per_second:
                runs.second_proba = proba
            else:
                runs.event_proba[task] = proba[:, 1]
            runs.used += [c for c in present if c not in runs.used]
            runs.models.append({"task": task, "checkpoint": scorer.path, "phase": meta.phase, "preset": meta.preset,
                                "pretrained": meta.pretrained, "channels": present,
                                "package_version": meta.package_version, "sha256": meta.tensor_sha256})
            logger.info("%s: %s model used %s on %s (%.1f s)", source.name, task, present, self.runtime, seconds,
                        extra={"model_seconds": seconds})
        return runs


@dataclasses.dataclass
class _ModelRuns:
    """What the models of one night gave, and what they ran on."""

    stage_proba: np.ndarray | None = None
    second_proba: np.ndarray | None = None
    event_proba: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    used: list[str] = dataclasses.field(default_factory=list)  # channels, in the order first used
    known: set[str] = dataclasses.field(default_factory=set)  # every channel some model was trained with
    substitutions: dict[str, str] = dataclasses.field(default_factory=dict)  # wanted → stand-in
    flags: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (level, reason)
    models: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # one description per model


def _times(table: pd.DataFrame, *columns: str) -> list[tuple[float, ...]]:
    """``table``'s ``columns`` as one tuple of floats per row (JSON-ready)."""
    return [tuple(row) for row in table[list(columns)].to_numpy(dtype=float).tolist()]


def _references(prepared: PreparedInput) -> dict[str, Any]:
    """The night's own scoring, when it came with one, as :class:`ScoringResult` fields: its
    stages; its respiratory events (onset, duration, kind), arousals (onset, duration) and, where
    it states them, desaturation depths (onset, duration, drop %)."""
    night = prepared.night
    fields: dict[str, Any] = {}
    if prepared.has_reference:
        column = night.label_names.index("stage")
        fields["reference"] = ["UNS" if c < 0 else STAGES[c] for c in night.labels[:, column]]
    if prepared.reference_respiratory:
        events = night.events
        respiratory = events[events["event"].isin(RESPIRATORY_EVENTS)]
        fields["reference_events"] = [(o, d, str(k)) for (o, d), k in
                                      zip(_times(respiratory, "onset_s", "duration_s"), respiratory["event"], strict=True)]
        fields["reference_arousals"] = _times(events[events["event"] == "arousal"], "onset_s", "duration_s")
        if night.scored_desaturations is not None:
            fields["reference_desaturations"] = _times(night.scored_desaturations, "onset_s", "duration_s", "drop_pct")
    return fields


def _notes(prepared: PreparedInput, substitutions: Mapping[str, str]) -> list[str]:
    """What the report says about the night's reading and the channels the models ran on (the
    channels they could not use are the result's ``channels_missing``, said once)."""
    report = prepared.night.report
    notes = [note for note in report.notes if note != NO_SCORING]  # a night to score has none: not news
    notes += [f"skipped {k}: {v}" for k, v in report.channels_skipped.items()]
    notes += [f"{name}: {info[key]}" for name, info in report.channels_used.items()
              for key in ("band_note", "unit_note", "amplitude_warning", "clipping_warning") if key in info]
    return notes + [f"{actual} used in place of {wanted} (same modality)" for wanted, actual in substitutions.items()]


def _lights_note(lights: tuple[float | None, float | None], whence: str, start: dt.datetime | None) -> list[str]:
    """Where time in bed was taken from, when lights bound it."""
    marks = dict(zip(("off", "on"), lights, strict=True))
    if all(seconds is None for seconds in marks.values()):
        return []

    def when(seconds: float) -> str:
        return f"{start + dt.timedelta(seconds=seconds):%H:%M:%S}" if start else f"{seconds:g} s"

    said = ", ".join(f"lights {mark} at {when(seconds)}" for mark, seconds in marks.items() if seconds is not None)
    return [f"{said} ({whence}): time in bed runs between them"]


@verbose
def score_recording(
    recording: str | Path | Recording,
    models: Sequence[str | Path],
    *,
    annotations: str | Path | Scoring | None = None,
    channel_file: str | Path | None = None,
    timezone: dt.tzinfo = dt.UTC,
    threshold: float | None = None,
    require: Sequence[str] = (),
    device: str = "auto",
    precision: str = "auto",
    lights: Lights = (None, None),
    verbose: bool | str | int | None = None,
) -> ScoringResult:
    """Score one night: stages with probabilities, event flags per epoch, statistics, AHI.

    The recording is prepared exactly as the models' training data were (the settings travel in
    the checkpoints), with the channels it has; models use the subset of their channels present
    and the result says which were used and which were missing. No training store is needed.

    Parameters
    ----------
    recording : str | Path | Recording
        EDF/EDF+/BDF (or any format MNE reads).
    models : sequence of path
        Probe or fine-tune checkpoints, at most one per task (stage, apnea, hypopnea).
    annotations : str | Path | Scoring | None
        A reference scoring; its hypnogram is compared with the prediction.
    channel_file : str | Path | None
        Extra channel aliases (TOML/YAML).
    timezone : tzinfo
        Zone of the EDF clock time (EDF stores local time without a zone).
    threshold : float | None
        Probability above which an epoch is flagged for an event, or a second belongs to one.
        Default: 0.5 for per-epoch models; for an ``events`` model, the threshold chosen on its
        validation nights.
    require : sequence of str
        Modalities (``eeg``) or canonical channels the models must be able to use; scoring a
        night without them is refused (by default it is scored, and ``reliability`` says how
        much to trust it).
    device, precision : str
        Where the models run (``auto``: CUDA when present) and in what precision (``auto``: bf16
        where supported).
    lights : (off, on)
        Clock times of lights off and on (``"22:45"``), placed in the recording (it may run past
        midnight); where given they replace the scoring's or the recording's own marks. Time in
        bed runs between them (:attr:`ScoringResult.lights_off_s`).
    verbose : bool | str | int | None
        Log level for this call.

    Raises
    ------
    ModelOutputError
        If a model produces NaN or infinite probabilities (a damaged model never yields a
        hypnogram).
    ChannelNotFoundError
        If a ``require``-d modality or channel cannot be used.
    """
    scorer = NightScorer.load(models, channel_file=channel_file, device=device, precision=precision,
                              threshold=threshold, require=require, timezone=timezone, lights=lights)
    return scorer.score(scorer.prepare(recording, annotations))

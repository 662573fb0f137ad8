"""Score a recording with trained checkpoints: read → prepare → encode → classify → result."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._config import PreprocessingConfig, config_from_dict
from .._logging import logger, verbose
from ..io.annotations import Scoring, read_scoring
from ..io.channels import load_channel_table, map_channels
from ..io.recording import Recording, read_recording
from ..models.checkpoint import load_checkpoint
from ..preprocessing.pipeline import prepare_recording
from ..preprocessing.signal import resample
from .result import STAGE_LABELS, ScoringResult

__all__ = ["load_scorers", "score_recording"]

_TASK_FIELD = {"stage": "stage_proba", "apnea": "apnea_proba", "hypopnea": "hypopnea_proba"}


def load_scorers(checkpoints: Sequence[str | Path]) -> tuple[dict[str, Any], PreprocessingConfig, str]:
    """Load probe/fine-tune checkpoints, one per task, sharing one preprocessing."""
    if not checkpoints:
        raise ValueError("give at least one model checkpoint (a probe or fine-tune checkpoint)")
    models: dict[str, Any] = {}
    hashes = set()
    preprocessing: dict[str, Any] = {}
    for path in checkpoints:
        model, meta = load_checkpoint(path)
        if meta.get("stage") not in ("probe", "finetune"):
            raise ValueError(f"{path} is a {meta.get('stage')!r} checkpoint; scoring needs a probe or "
                             "fine-tune checkpoint (its classifier)")
        task = meta["task"]
        if task in models:
            raise ValueError(f"two checkpoints for task {task!r}: {models[task][1]['path']} and {path}")
        models[task] = (model, {**meta, "path": str(path)})
        hashes.add(meta["preprocessing_hash"])
        preprocessing = meta["preprocessing"]
    if len(hashes) != 1:
        raise ValueError(f"the checkpoints were trained on differently prepared data ({sorted(hashes)})")
    return models, config_from_dict(PreprocessingConfig, preprocessing), hashes.pop()


def _match_channels(wanted: Sequence[str], available: dict[str, np.ndarray], modality_of: dict[str, str],
                    table: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The model's channels present in the night; a missing one is stood in for by an unused
    channel of the same modality (Fpz-Cz for C4-M1 in Sleep-EDF), which is reported."""
    inputs = {c: available[c] for c in wanted if c in available}
    taken = set(inputs)
    swapped: dict[str, str] = {}
    for channel in wanted:
        if channel in inputs:
            continue
        modality = table.modality.get(channel)
        spare = next((c for c in available if modality_of[c] == modality and c not in taken), None)
        if spare is not None:
            inputs[channel] = available[spare]
            taken.add(spare)
            swapped[channel] = spare
    return inputs, swapped


def _spo2_1hz(recording: Recording, channel_table: Any) -> list[float] | None:
    mapping = map_channels(recording.labels, channel_table)
    for ch in mapping.channels:
        if ch.modality == "spo2" and not ch.derived:
            sig = recording.signal(ch.sources[0])
            return np.round(resample(sig.data, sig.sfreq, 1.0), 2).tolist()
    return None


@verbose
def score_recording(
    recording: str | Path | Recording,
    models: Sequence[str | Path],
    *,
    annotations: str | Path | Scoring | None = None,
    channel_file: str | Path | None = None,
    timezone: dt.tzinfo = dt.UTC,
    threshold: float = 0.5,
    verbose: bool | str | int | None = None,
) -> ScoringResult:
    """Score one night: stages with probabilities, apnea and hypopnea per epoch, statistics, AHI.

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
    threshold : float
        Probability above which an epoch is flagged for an apnea or hypopnea.
    verbose : bool | str | int | None
        Log level for this call.
    """
    scorers, config, digest = load_scorers(models)
    table = load_channel_table(channel_file)
    if not isinstance(recording, Recording):
        recording = read_recording(recording)
    if isinstance(annotations, str | Path):
        annotations = read_scoring(annotations, epoch_s=config.epoch_s)
    night = prepare_recording(recording, annotations, config=config, channel_table=table)
    available = {c: night.signals[:, i] for i, c in enumerate(night.channels)}
    modality_of = dict(zip(night.channels, night.modalities, strict=True))
    outputs: dict[str, np.ndarray | None] = {"stage_proba": None, "apnea_proba": None, "hypopnea_proba": None}
    used: list[str] = []
    known: set[str] = set()
    model_info = []
    substitutions: dict[str, str] = {}
    for task, (model, meta) in scorers.items():
        known |= set(model.channels)
        inputs, swapped = _match_channels(model.channels, available, modality_of, table)
        substitutions.update(swapped)
        present = [swapped.get(c, c) for c in inputs]
        if not present:
            raise ValueError(f"{recording.path}: the {task} model needs a channel of the modalities of "
                             f"{model.channels}; the night has {night.channels} "
                             f"(skipped: {night.report.channels_skipped})")
        proba = model.predict_proba(inputs)
        outputs[_TASK_FIELD[task]] = proba if task == "stage" else proba[:, 1]
        used += [c for c in present if c not in used]
        model_info.append({"task": task, "checkpoint": meta["path"], "stage": meta["stage"],
                           "preset": meta.get("preset"), "pretrained": meta.get("pretrained"),
                           "channels": present, "package_version": meta.get("package_version")})
        logger.info("%s: %s model used %s", recording.path.name, task, present)
    stage_proba = outputs["stage_proba"]
    stages = ([STAGE_LABELS[i] for i in stage_proba.argmax(1)] if stage_proba is not None
              else ["UNS"] * night.n_epochs)
    reference = None
    if annotations is not None:
        reference = ["UNS" if c < 0 else STAGE_LABELS[c] for c in night.labels[:, 0]]
    start = (recording.start or dt.datetime(1985, 1, 1)).replace(tzinfo=timezone)
    missing = sorted(c for c in known - set(used) if c not in substitutions)
    notes = night.report.notes + [f"skipped {k}: {v}" for k, v in night.report.channels_skipped.items()]
    notes += [f"{actual} used in place of {wanted} (same modality)" for wanted, actual in substitutions.items()]
    if missing:
        notes.append(f"channels the models know but the night lacks: {missing}")
    return ScoringResult(stages=stages, stage_proba=stage_proba, apnea_proba=outputs["apnea_proba"],
                         hypopnea_proba=outputs["hypopnea_proba"], epoch_s=config.epoch_s, start=start,
                         source=str(recording.path), models=model_info, channels_used=used,
                         channels_missing=missing,
                         modalities_used=list(dict.fromkeys(modality_of[c] for c in used)),
                         preprocessing_hash=digest, reference=reference, threshold=threshold,
                         spo2=_spo2_1hz(recording, table), notes=notes)

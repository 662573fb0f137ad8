"""Evaluate a classifier checkpoint on held-out subjects of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._logging import verbose
from ..models.checkpoint import check_compatible, load_checkpoint
from ..store.epoch_store import EpochStore
from .adapt import night_inputs
from .data import TASKS
from .metrics import classification_metrics, event_f1, events_from_flags
from .splits import split_nights

__all__ = ["evaluate"]

_EVENT_TYPES = {"apnea": ("apnea_obstructive", "apnea_central", "apnea_mixed", "apnea"), "hypopnea": ("hypopnea",)}


@verbose
def evaluate(checkpoint: str | Path, store: str | Path, *, split: str = "test",
             verbose: bool | str | int | None = None) -> dict[str, Any]:
    """Metrics of a probe or fine-tune checkpoint on one split's subjects (default: test).

    Stages: accuracy, macro-F1, κ, per-class F1, confusion. Apnea/hypopnea add AUROC, AUPRC and
    event-level F1 (runs of predicted positive epochs against scored events, any overlap).
    Unscored epochs are ignored. Refuses a store prepared differently from the training data.
    """
    model, meta = load_checkpoint(checkpoint)
    if meta.get("stage") not in ("probe", "finetune"):
        raise ValueError(f"{checkpoint} is a {meta.get('stage')!r} checkpoint; evaluate takes a probe or "
                         "fine-tune checkpoint")
    st = EpochStore(store)
    check_compatible(meta, preprocessing_hash=st.info["preprocessing_hash"], source=str(checkpoint))
    task = meta["task"]
    column, n_classes, names = TASKS[task]
    nights = split_nights(st, split)
    overlap = sorted(set(nights) & set(meta.get("nights", [])) | set(nights) & set(meta.get("val_nights", [])))
    if overlap:
        raise ValueError(f"nights {overlap[:5]} of split {split!r} were used to train or select {checkpoint}")
    truth, probs, true_events, pred_events = [], [], [], []
    epoch_s = st.config.epoch_s
    offset = 0.0
    for night in nights:
        inputs = night_inputs(st, night, model.channels)  # type: ignore[arg-type]
        if len(inputs) != len(model.channels):  # type: ignore[arg-type]
            continue
        p = model.predict_proba(inputs)  # type: ignore[operator]
        labels = st.night(night).labels[:, column]
        probs.append(p)
        truth.append(labels)
        if task in _EVENT_TYPES:
            events = st.night(night).events
            chosen = events[events["event"].isin(_EVENT_TYPES[task])]
            true_events += [(offset + o, d) for o, d in zip(chosen["onset_s"], chosen["duration_s"], strict=True)]
            pred_events += [(offset + o, d) for o, d in events_from_flags(p.argmax(1), epoch_s)]
        offset += labels.size * epoch_s + 3600  # nights never touch
    if not probs:
        raise ValueError(f"no night of split {split!r} has the model's channels {model.channels}")
    p, t = np.concatenate(probs), np.concatenate(truth)
    out = {"checkpoint": str(checkpoint), "task": task, "split": split, "nights": len(probs),
           "stage": meta["stage"], "pretrained": meta.get("pretrained"), "label_fraction": meta.get("label_fraction"),
           **classification_metrics(t, p.argmax(1), n_classes, names, scores=p)}
    if task in _EVENT_TYPES:
        out.update(event_f1(true_events, pred_events))
    return out

"""Evaluate a classifier checkpoint on held-out subjects of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._device import resolve_runtime
from .._logging import logger, verbose
from .._validation import CheckpointError
from ..events import events_metrics
from ..metrics import classification_metrics, event_f1, events_from_flags
from ..models.checkpoint import CheckpointMeta, check_compatible, load_classifier
from ..store.epoch_store import EpochStore
from ..tasks import get_task
from .adapt import predict_stored_night, stored_night_events
from .cache import ConvCache
from .data import nights_with_channels
from .splits import split_nights

__all__ = ["evaluate"]


@verbose
def evaluate(checkpoint: str | Path, store: str | Path, *, split: str = "test", device: str = "auto",
             precision: str = "auto", sleep_window_min: float | None = None, feature_cache: bool = True,
             verbose: bool | str | int | None = None) -> dict[str, Any]:
    """Metrics of a probe or fine-tune checkpoint on one split's subjects (default: test).

    Stages: accuracy, macro-F1, κ, per-class F1, confusion. Event tasks add AUROC, AUPRC and
    event-level F1 (runs of predicted positive epochs against scored events, any overlap). The
    per-second ``events`` task gives per-second metrics, event F1 overall and by type (any
    overlap; ``event_f1_50``: half of the event) and the AHI's mean absolute error and bias, with
    events decoded as the checkpoint's validation chose.
    Unscored epochs are ignored; nights without the model's channels are left out and listed
    under ``skipped``. Refuses a store prepared differently from the training data, nights that
    trained or selected the model, and a model whose outputs are not finite.

    ``sleep_window_min`` scores only the epochs from that many minutes before the first scored
    sleep epoch to as many after the last (Sleep-EDF studies commonly use 30, which drops most of
    the long wake periods of those home recordings); None scores every epoch.

    A model adapted from a pretrained fusion keeps its frozen convolutions, so with
    ``feature_cache`` their features are read from beside the store (``STORE/features``), where
    its adaptation and every evaluation of a model from the same pretraining find them: each
    night's convolutions run once, not once per model.
    """
    runtime = resolve_runtime(device, precision)
    model, meta = load_classifier(checkpoint, device=runtime.device)
    st = EpochStore(store)
    check_compatible(meta, preprocessing_hash=st.preprocessing_hash, source=str(checkpoint))
    task = get_task(str(meta.task))
    column = st.label_column(task.name)
    nights = split_nights(st, split)
    used = set(meta.data.nights + meta.data.val_nights) if meta.data else set()
    overlap = sorted(set(nights) & used)
    if overlap:
        raise CheckpointError(f"nights {overlap[:5]} of split {split!r} were used to train or select {checkpoint}")
    usable, skipped = nights_with_channels(st, nights, model.channels)
    for night, reason in skipped.items():
        logger.warning("evaluate: night %s left out: %s", night, reason)
    if not usable:
        raise ValueError(f"no night of split {split!r} has the model's channels {model.channels}: {skipped}")
    cache = ConvCache(model, st, usable, runtime, persist=True) if feature_cache and meta.pretrained else None

    def predict(night: str) -> np.ndarray:
        proba = predict_stored_night(model, st, night, runtime, str(checkpoint), cache)
        if cache is not None:
            cache.release(night)  # one night in memory at a time
        return proba

    if task.per_second:
        return {**_header(checkpoint, task.name, split, len(usable), meta, skipped),
                **events_metrics([stored_night_events(st, night, task, predict(night), meta.decoding)
                                  for night in usable])}
    truth, probs, true_events, pred_events = [], [], [], []
    epoch_s = st.config.epoch_s
    offset = 0.0
    for night in usable:
        p = predict(night)
        labels = st.night(night).labels[:, column]
        if sleep_window_min is not None:
            labels = _in_sleep_window(labels, st.night(night).labels[:, st.label_column("stage")],
                                      int(round(sleep_window_min * 60 / epoch_s)))
        probs.append(p)
        truth.append(labels)
        if task.is_event:
            events = st.night(night).events
            chosen = events[events["event"].isin(task.events)]
            true_events += [(offset + o, d) for o, d in zip(chosen["onset_s"], chosen["duration_s"], strict=True)]
            pred_events += [(offset + o, d) for o, d in events_from_flags(p.argmax(1), epoch_s)]
        offset += labels.size * epoch_s + 3600  # nights never touch
    p, t = np.concatenate(probs), np.concatenate(truth)
    out = {**_header(checkpoint, task.name, split, len(usable), meta, skipped),
           **classification_metrics(t, p.argmax(1), task.n_classes, task.classes, scores=p)}
    if task.is_event:
        out.update(event_f1(true_events, pred_events))
    return out


def _header(checkpoint: str | Path, task: str, split: str, nights: int, meta: CheckpointMeta,
            skipped: dict[str, str]) -> dict[str, Any]:
    return {"checkpoint": str(checkpoint), "task": task, "split": split, "nights": nights, "phase": meta.phase,
            "pretrained": meta.pretrained, "label_fraction": meta.label_fraction, "skipped": skipped}


def _in_sleep_window(labels: np.ndarray, stages: np.ndarray, margin: int) -> np.ndarray:
    """``labels`` with epochs further than ``margin`` epochs outside the sleep period unscored."""
    asleep = np.flatnonzero(stages > 0)
    out = np.full_like(labels, -1)
    if asleep.size:
        first, last = max(asleep[0] - margin, 0), min(asleep[-1] + margin + 1, labels.size)
        out[first:last] = labels[first:last]
    return out

"""Respiratory events from per-second probabilities: decoding, and agreement by type.

A per-second model (task ``events``) gives every second the probabilities of no event and of
each class in :data:`~synthsleepnet.tasks.EVENT_CLASSES`. :func:`decode_events` turns them into
events as a scorer writes them: a second belongs to an event when the probability of *any*
event exceeds ``threshold``; runs separated by less than ``merge_gap_s`` join; runs shorter than
the AASM minimum of 10 s are dropped; an event's type is the class with the highest mean
probability over its seconds, and its probability is the mean event probability. The threshold
and merge gap are a model's own: :func:`calibrate_decoding` chooses them on validation nights
after fine-tuning (an :class:`~synthsleepnet._config.EventDecoding` kept in the checkpoint).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._config import EventDecoding
from .metrics import classification_metrics, event_f1
from .respiratory import respiratory_indices
from .tasks import EVENT_CLASS_TYPES, EVENT_CLASSES, RESPIRATORY_EVENTS

__all__ = ["EVENT_COLUMNS", "NightEvents", "calibrate_decoding", "decode_events", "event_agreement", "events_metrics",
           "night_events", "shift_nights"]

#: Columns of a decoded event table.
EVENT_COLUMNS = ("onset_s", "duration_s", "event", "probability")


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def decode_events(proba: np.ndarray, *, resolution_s: float = 1.0, threshold: float = 0.5,
                  merge_gap_s: float = 3.0, min_duration_s: float = 10.0) -> pd.DataFrame:
    """Events (``onset_s``, ``duration_s``, ``event``, ``probability``) from (seconds, classes)
    probabilities of a per-second model, night-long (epochs concatenated).

    Examples
    --------
    >>> p = np.zeros((60, 5)); p[:, 0] = 1
    >>> p[20:35] = [0.1, 0.1, 0.7, 0.0, 0.1]      # 15 s, mostly central
    >>> p[40:45] = [0.2, 0.8, 0.0, 0.0, 0.0]      # 5 s: shorter than 10 s, dropped
    >>> decode_events(p)[["onset_s", "duration_s", "event"]].values.tolist()
    [[20.0, 15.0, 'apnea_central']]
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(EVENT_CLASSES):
        raise ValueError(f"per-second probabilities must be (seconds, {len(EVENT_CLASSES)}), got {proba.shape}")
    runs = _runs(1.0 - proba[:, 0] > threshold)
    gap = int(round(merge_gap_s / resolution_s))
    merged: list[list[int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] <= gap:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    rows = []
    for start, stop in merged:
        if (stop - start) * resolution_s < min_duration_s:
            continue
        mean = proba[start:stop].mean(axis=0)
        kind = EVENT_CLASS_TYPES[EVENT_CLASSES[1 + int(np.argmax(mean[1:]))]]
        rows.append((start * resolution_s, (stop - start) * resolution_s, kind, float(1.0 - mean[0])))
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))


def _pairs(events: pd.DataFrame, kinds: tuple[str, ...] | None = None) -> list[tuple[float, float]]:
    chosen = events if kinds is None else events[events["event"].isin(kinds)]
    return list(zip(chosen["onset_s"].astype(float), chosen["duration_s"].astype(float), strict=True))


def event_agreement(reference: pd.DataFrame, predicted: pd.DataFrame, *, min_overlap: float = 0.0
                    ) -> dict[str, Any]:
    """Event F1 of ``predicted`` against ``reference`` events: over all respiratory events
    (type ignored) and per type (obstructive apneas include unspecified ones; ``min_overlap`` as
    in :func:`~synthsleepnet.metrics.event_f1`)."""
    types = {"obstructive": ("apnea_obstructive", "apnea"), "central": ("apnea_central",),
             "mixed": ("apnea_mixed",), "hypopnea": ("hypopnea",)}
    every = tuple(k for kinds in types.values() for k in kinds)
    out: dict[str, Any] = event_f1(_pairs(reference, every), _pairs(predicted, every), min_overlap)
    for name, kinds in types.items():
        scores = event_f1(_pairs(reference, kinds), _pairs(predicted, kinds), min_overlap)
        out[f"event_f1_{name}"] = scores["event_f1"]
        out[f"n_true_{name}"] = scores["n_true_events"]
    return out


@dataclasses.dataclass(frozen=True)
class NightEvents:
    """One night's per-second predictions against its scoring: probabilities (seconds, classes),
    labels (seconds,; −1 unknown), decoded and reference events, and both AHIs (over the
    reference hypnogram, so they differ only by the events)."""

    proba: np.ndarray
    labels: np.ndarray
    predicted: pd.DataFrame
    reference: pd.DataFrame
    ahi: float
    ahi_reference: float

    @property
    def scored(self) -> bool:
        return bool((self.labels >= 0).any())


def night_events(proba: np.ndarray, labels: np.ndarray, reference: pd.DataFrame, stages: np.ndarray,
                 epoch_s: float, resolution_s: float = 1.0, decoding: EventDecoding | None = None) -> NightEvents:
    """Decode a night's (E, seconds, classes) probabilities and set them beside its scoring."""
    flat = np.asarray(proba).reshape(-1, np.asarray(proba).shape[-1])
    predicted = decode_events(flat, resolution_s=resolution_s, **dataclasses.asdict(decoding or EventDecoding()))
    reference = reference[reference["event"].isin(RESPIRATORY_EVENTS)].reset_index(drop=True)
    return NightEvents(flat, np.asarray(labels).reshape(-1), predicted, reference,
                       respiratory_indices(predicted, stages, epoch_s)["AHI"],
                       respiratory_indices(reference, stages, epoch_s)["AHI"])


#: The thresholds and merge gaps (s) :func:`calibrate_decoding` tries.
CALIBRATION_GRID = ((0.2, 0.3, 0.4, 0.5, 0.6, 0.7), (0.0, 2.0, 4.0, 6.0))


def calibrate_decoding(nights: Sequence[NightEvents], resolution_s: float = 1.0) -> EventDecoding:
    """The threshold and merge gap of :data:`CALIBRATION_GRID` whose events agree best with the
    scoring of ``nights`` (validation nights: never those that will measure the model).

    Agreement is the pooled event F1 with the ≥ 50 % overlap rule, which — unlike "any overlap" —
    counts one predicted event spanning two scored ones as a miss, so a low threshold that merges
    events is not rewarded; ties go to any-overlap F1, then to the threshold nearest 0.5.
    """
    scored = [n for n in nights if n.scored]
    if not scored:
        raise ValueError("no night has respiratory scoring to calibrate the event decoding on")
    offsets = _apart(scored, resolution_s)
    reference = shift_nights([n.reference for n in scored], offsets)
    best: tuple[float, float, float] | None = None
    chosen = EventDecoding()
    for threshold in CALIBRATION_GRID[0]:
        for gap in CALIBRATION_GRID[1]:
            decoding = EventDecoding(threshold=threshold, merge_gap_s=gap)
            predicted = shift_nights([decode_events(n.proba, resolution_s=resolution_s,
                                                    **dataclasses.asdict(decoding)) for n in scored], offsets)
            score = (event_agreement(reference, predicted, min_overlap=0.5)["event_f1"],
                     event_agreement(reference, predicted)["event_f1"], -abs(threshold - 0.5))
            if best is None or score > best:
                best, chosen = score, decoding
    return chosen


def shift_nights(tables: Sequence[pd.DataFrame], offsets: Sequence[float]) -> pd.DataFrame:
    """Event tables of several nights as one, each night's onsets moved by its offset (s), so
    pooled agreement never matches an event of one night with another's."""
    parts = [t.assign(onset_s=t["onset_s"].astype(float) + o) for t, o in zip(tables, offsets, strict=True)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(EVENT_COLUMNS))


def _apart(nights: Sequence[NightEvents], resolution_s: float) -> list[float]:
    """Onset offsets (s) that pool nights an hour apart, so no event matches across nights."""
    return np.cumsum([0.0] + [n.labels.size * resolution_s + 3600.0 for n in nights[:-1]]).tolist()


def events_metrics(nights: Sequence[NightEvents], resolution_s: float = 1.0) -> dict[str, Any]:
    """Per-second classification metrics, event F1 (any overlap, and ≥ 50 % overlap as
    ``event_f1_50``) overall and by type, and the AHI's mean absolute error and bias over the
    nights with respiratory scoring."""
    scored = [n for n in nights if n.scored]
    if not scored:
        raise ValueError("no night has respiratory scoring: per-second event labels are all unknown")
    out = classification_metrics(np.concatenate([n.labels for n in scored]),
                                 np.concatenate([n.proba.argmax(1) for n in scored]), len(EVENT_CLASSES),
                                 EVENT_CLASSES)
    offsets = _apart(scored, resolution_s)
    reference = shift_nights([n.reference for n in scored], offsets)
    predicted = shift_nights([n.predicted for n in scored], offsets)
    out.update(event_agreement(reference, predicted))
    out["event_f1_50"] = event_agreement(reference, predicted, min_overlap=0.5)["event_f1"]
    errors = np.array([n.ahi - n.ahi_reference for n in scored])
    out["ahi_error"] = float(np.abs(errors).mean())
    out["ahi_bias"] = float(errors.mean())
    return out

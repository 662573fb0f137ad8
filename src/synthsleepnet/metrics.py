"""Honest metrics for sleep staging and respiratory events; unscored epochs (-1) are ignored.

Epoch-level: accuracy, macro-F1, Cohen's κ, per-class F1, confusion matrix; for binary event
tasks also AUROC and AUPRC (accuracy alone is misleading when most epochs are event-free).
Event-level F1 matches predicted and scored events by overlap (see :func:`event_f1`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["auprc", "auroc", "classification_metrics", "event_f1", "events_from_flags"]


def _valid(y_true: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    keep = np.asarray(y_true) >= 0
    return (np.asarray(y_true)[keep], *(np.asarray(o)[keep] for o in others))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                           class_names: tuple[str, ...] | None = None,
                           scores: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1, κ, per-class F1 and confusion (rows: truth) over scored epochs.

    ``scores`` (N, n_classes) probabilities add AUROC/AUPRC of the positive class when
    ``n_classes == 2``.
    """
    if scores is not None:
        y_true, y_pred, scores = _valid(y_true, y_pred, scores)
    else:
        y_true, y_pred = _valid(y_true, y_pred)
    names = class_names or tuple(str(i) for i in range(n_classes))
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true.astype(int), y_pred.astype(int)), 1)
    total = confusion.sum()
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(n_classes), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(n_classes), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n_classes),
                   where=(precision + recall) > 0)
    present = (confusion.sum(1) > 0) | (confusion.sum(0) > 0)  # as scikit-learn: labels seen in either
    observed = tp.sum() / total if total else float("nan")
    expected = (confusion.sum(0) * confusion.sum(1)).sum() / total**2 if total else float("nan")
    kappa = (observed - expected) / (1 - expected) if total and expected < 1 else float("nan")
    out: dict[str, Any] = {
        "n_epochs": int(total),
        "accuracy": float(observed),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "kappa": float(kappa),
        "f1": {name: float(v) for name, v in zip(names, f1, strict=True)},
        "recall": {name: float(v) for name, v in zip(names, recall, strict=True)},
        "confusion": confusion.tolist(),
    }
    if scores is not None and n_classes == 2:
        out["auroc"] = auroc(y_true, scores[:, 1])
        out["auprc"] = auprc(y_true, scores[:, 1])
    return out


def auroc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U with ties averaged); NaN with one class."""
    y_true, score = np.asarray(y_true), np.asarray(score, dtype=float)
    n_pos, n_neg = int((y_true == 1).sum()), int((y_true == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size)
    sorted_scores = score[order]
    i = 0
    while i < score.size:
        j = i
        while j + 1 < score.size and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (step-wise, like scikit-learn)."""
    y_true, score = np.asarray(y_true), np.asarray(score, dtype=float)
    n_pos = int((y_true == 1).sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    y, s = y_true[order], score[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[distinct]
    precision = tps / (distinct + 1)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def events_from_flags(flags: np.ndarray, epoch_s: float = 30.0) -> list[tuple[float, float]]:
    """Runs of consecutive positive epochs as (onset_s, duration_s) events."""
    flags = np.asarray(flags) > 0
    edges = np.diff(np.r_[0, flags.astype(int), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(a * epoch_s, (b - a) * epoch_s) for a, b in zip(starts, stops, strict=True)]


def event_f1(true_events: list[tuple[float, float]], pred_events: list[tuple[float, float]],
             min_overlap: float = 0.0) -> dict[str, float]:
    """Event-level precision, recall and F1.

    A scored event counts as detected when a predicted event overlaps it by more than
    ``min_overlap`` × its duration (0: any overlap); a predicted event is a true positive when
    it overlaps any scored event the same way. This is the common "any overlap" rule; raise
    ``min_overlap`` (e.g. 0.5) for a stricter match.
    """
    def hits(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> int:
        count = 0
        for onset, duration in a:
            end = onset + duration
            for o2, d2 in b:
                overlap = min(end, o2 + d2) - max(onset, o2)
                if overlap > 0 and overlap >= min_overlap * duration:
                    count += 1
                    break
        return count

    recall = hits(true_events, pred_events) / len(true_events) if true_events else float("nan")
    precision = hits(pred_events, true_events) / len(pred_events) if pred_events else float("nan")
    f1 = (2 * precision * recall / (precision + recall)
          if precision == precision and recall == recall and precision + recall > 0 else 0.0)
    return {"event_precision": precision, "event_recall": recall, "event_f1": f1,
            "n_true_events": len(true_events), "n_pred_events": len(pred_events)}

"""Per-epoch labels from a scoring aligned to a recording: stage, apnea, hypopnea."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from .._validation import AnnotationError
from ..io.annotations import APNEA_EVENTS, UNSCORED, Scoring

__all__ = ["LABEL_NAMES", "EpochLabels", "align_scoring", "event_epoch_labels"]

#: Label columns, in the order they are stored.
LABEL_NAMES: tuple[str, ...] = ("stage", "apnea", "hypopnea")
#: A scoring whose start differs from the recording's by more than this belongs elsewhere.
MAX_START_OFFSET_S = 3600.0


@dataclasses.dataclass
class EpochLabels:
    """Labels of a recording's epochs and what aligning the scoring changed.

    ``labels`` has shape (E, 3): stage (0–4, -1 unscored), apnea and hypopnea (1 when an event
    overlaps the epoch, 0 when not, -1 when respiratory events were not scored). ``events`` are in
    seconds from the recording start.
    """

    labels: np.ndarray
    events: pd.DataFrame
    notes: list[str]


def event_epoch_labels(events: pd.DataFrame, kinds: tuple[str, ...], n_epochs: int,
                       epoch_s: float, min_overlap_s: float = 0.0) -> np.ndarray:
    """1 for every epoch an event of ``kinds`` overlaps by more than ``min_overlap_s`` seconds.

    Overlap is computed exactly from onset and duration; nothing is rounded to epochs, so a 10-s
    event that straddles an epoch boundary marks both epochs when ``min_overlap_s`` allows it.
    """
    flags = np.zeros(n_epochs, dtype=np.int8)
    chosen = events[events["event"].isin(kinds)]
    for onset, duration in zip(chosen["onset_s"], chosen["duration_s"], strict=True):
        end = onset + max(float(duration), 0.0)
        first = max(int(np.floor(onset / epoch_s)), 0)
        last = min(int(np.ceil(end / epoch_s)), n_epochs)
        for k in range(first, last):
            overlap = min(end, (k + 1) * epoch_s) - max(onset, k * epoch_s)
            if overlap > min_overlap_s or (duration == 0 and overlap == 0 and k == first):
                flags[k] = 1
    return flags


def align_scoring(scoring: Scoring | None, recording_start: dt.datetime | None, n_epochs: int,
                  epoch_s: float, *, min_overlap_s: float = 0.0, source: str = "recording"
                  ) -> EpochLabels:
    """Align a scoring to a recording of ``n_epochs`` epochs and derive per-epoch labels.

    A scoring longer than the recording is trimmed, a shorter one padded with unscored epochs;
    both are said in ``notes``. A scoring whose stated start is more than an hour away from the
    recording's, or whose scored epochs all fall after the recording's end, is refused.
    """
    labels = np.full((n_epochs, len(LABEL_NAMES)), UNSCORED, dtype=np.int8)
    empty = pd.DataFrame({"onset_s": pd.Series(dtype=float), "duration_s": pd.Series(dtype=float),
                          "event": pd.Series(dtype=str)})
    if scoring is None:
        return EpochLabels(labels, empty, ["no scoring: every label is unknown (-1)"])
    notes: list[str] = []
    offset_s = 0.0
    if scoring.start is not None and recording_start is not None:
        offset_s = (scoring.start - recording_start).total_seconds()
        if abs(offset_s) > MAX_START_OFFSET_S:
            raise AnnotationError(
                f"{scoring.source}: scoring starts at {scoring.start} but {source} starts at "
                f"{recording_start}; this scoring belongs to another recording")
    shift = int(round(offset_s / epoch_s))
    if offset_s:
        notes.append(f"scoring starts {offset_s:+.1f} s from the recording; shifted by {shift} epochs")
    stages = np.full(n_epochs, UNSCORED, dtype=np.int8)
    src = scoring.stages
    lo, hi = max(shift, 0), min(shift + src.size, n_epochs)
    if hi > lo:
        stages[lo:hi] = src[lo - shift:hi - shift]
    beyond = src[max(n_epochs - shift, 0):]
    if beyond.size:
        notes.append(f"hypnogram trimmed: {beyond.size} epochs ({beyond.size * epoch_s / 60:.1f} min) "
                     f"past the end of the recording, {int(np.sum(beyond != UNSCORED))} of them scored")
    if src.size and hi - lo < n_epochs:
        notes.append(f"hypnogram shorter than the recording: {n_epochs - (hi - lo)} epochs unscored (-1)")
    if np.any(src != UNSCORED) and not np.any(stages != UNSCORED):
        raise AnnotationError(f"{scoring.source}: none of its scored epochs falls inside {source} "
                              f"({n_epochs} epochs); this scoring belongs to another recording")
    labels[:, 0] = stages
    events = scoring.events.copy()
    events["onset_s"] = events["onset_s"] + offset_s
    end_s = n_epochs * epoch_s
    outside = (events["onset_s"] >= end_s) | (events["onset_s"] + events["duration_s"] <= 0)
    if outside.any():
        notes.append(f"{int(outside.sum())} events outside the recording dropped from the labels")
    events = events[~outside].reset_index(drop=True)
    if scoring.respiratory_scored:
        labels[:, 1] = event_epoch_labels(events, APNEA_EVENTS, n_epochs, epoch_s, min_overlap_s)
        labels[:, 2] = event_epoch_labels(events, ("hypopnea",), n_epochs, epoch_s, min_overlap_s)
    else:
        notes.append("no respiratory scoring: apnea and hypopnea labels unknown (-1)")
    return EpochLabels(labels, events, notes)

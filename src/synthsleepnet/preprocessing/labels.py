"""Per-epoch labels from a scoring aligned to a recording, one column per registered task."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from .._validation import AnnotationError
from ..io.annotations import Scoring
from ..tasks import UNSCORED, LabelContext, epoch_labels, task_names

__all__ = ["EpochLabels", "align_scoring"]

#: A scoring whose start differs from the recording's by more than this belongs elsewhere.
MAX_START_OFFSET_S = 3600.0


@dataclasses.dataclass
class EpochLabels:
    """Labels of a recording's epochs and what aligning the scoring changed.

    ``labels`` has shape (E, n_tasks), one column per registered task in ``names`` (stage 0–4;
    an event task 1 when an event overlaps the epoch, 0 when not; −1 unknown). ``events``, the
    scorer's desaturation depths ``desaturations`` (:attr:`Scoring.desaturations`, None where the
    file states none) and the scoring's lights marks ``lights_s`` (off, on; None where unmarked)
    are in seconds from the recording start.
    """

    labels: np.ndarray
    names: tuple[str, ...]
    events: pd.DataFrame
    notes: list[str]
    lights_s: tuple[float | None, float | None] = (None, None)
    desaturations: pd.DataFrame | None = None


#: The note of a night prepared without a scoring (a training store wants to know; scoring does not).
NO_SCORING = "no scoring: every label is unknown (-1)"


def align_scoring(scoring: Scoring | None, recording_start: dt.datetime | None, n_epochs: int,
                  epoch_s: float, *, min_overlap_s: float = 0.0, source: str = "recording"
                  ) -> EpochLabels:
    """Align a scoring to a recording of ``n_epochs`` epochs and derive per-epoch labels.

    A scoring longer than the recording is trimmed, a shorter one padded with unscored epochs;
    both are said in ``notes``. A scoring whose stated start is more than an hour away from the
    recording's, or whose scored epochs all fall after the recording's end, is refused.
    """
    names = task_names()
    empty = pd.DataFrame({"onset_s": pd.Series(dtype=float), "duration_s": pd.Series(dtype=float),
                          "event": pd.Series(dtype=str)})
    if scoring is None:
        labels = np.full((n_epochs, len(names)), UNSCORED, dtype=np.int8)
        return EpochLabels(labels, names, empty, [NO_SCORING])
    notes: list[str] = list(scoring.notes)
    offset_s = 0.0
    if scoring.start is None and scoring.clock_start is not None and recording_start is not None:
        clock = recording_start.time()
        apart = abs((clock.hour * 3600 + clock.minute * 60 + clock.second)
                    - (scoring.clock_start.hour * 3600 + scoring.clock_start.minute * 60 + scoring.clock_start.second))
        if min(apart, 86400 - apart) > MAX_START_OFFSET_S:
            raise AnnotationError(
                f"{scoring.source}: scoring starts at clock time {scoring.clock_start} but {source} starts at "
                f"{clock}; this scoring belongs to another recording")
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
    events, dropped = _placed(scoring.events, offset_s, n_epochs * epoch_s)
    if dropped:
        notes.append(f"{dropped} events outside the recording dropped from the labels")
    if not scoring.respiratory_scored:
        notes.append("no respiratory scoring: apnea and hypopnea labels unknown (-1)")
    context = LabelContext(stages, events, epoch_s, min_overlap_s, scoring.respiratory_scored)
    off, on = (None if mark is None else mark + offset_s for mark in (scoring.lights_off_s, scoring.lights_on_s))
    desaturations = (None if scoring.desaturations is None
                     else _placed(scoring.desaturations, offset_s, n_epochs * epoch_s)[0])
    return EpochLabels(epoch_labels(context, names), names, events, notes, (off, on), desaturations)


def _placed(table: pd.DataFrame, offset_s: float, end_s: float) -> tuple[pd.DataFrame, int]:
    """``table``'s rows (``onset_s``, ``duration_s``, ...) moved by ``offset_s`` into a recording
    ending at ``end_s``, without those wholly outside it, and how many those were."""
    placed = table.copy()
    placed["onset_s"] = placed["onset_s"] + offset_s
    outside = (placed["onset_s"] >= end_s) | (placed["onset_s"] + placed["duration_s"] <= 0)
    return placed[~outside].reset_index(drop=True), int(outside.sum())

"""One vocabulary of sleep stages and scored events, and one registry of prediction tasks.

Everything that knows what a task is — the store's label columns, datasets, losses, metrics,
scoring fields, exports and the command line's choices — reads it from :data:`TASKS`. Adding a
task is one :func:`register_task` call with its label rule; a store records the label columns
it was prepared with, so a column is always found by name, never by position.

Stages follow AASM: W, N1, N2, N3 (R&K S3 and S4), R. Unscored epochs (``?``, movement,
artefact) are −1, which losses and metrics ignore; they are never Wake.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._validation import check_option

if TYPE_CHECKING:  # the command line's --help reads the registry; the rules import NumPy themselves
    import numpy as np
    import pandas as pd

__all__ = [
    "APNEA_EVENTS",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "RESPIRATORY_EVENTS",
    "STAGES",
    "TASKS",
    "UNSCORED",
    "LabelContext",
    "Task",
    "epoch_labels",
    "event_epoch_labels",
    "event_class_rule",
    "event_rule",
    "get_task",
    "register_task",
    "second_labels",
    "stage_rule",
    "task_names",
]

#: Stage names indexed by code (AASM; ``R`` is REM sleep).
STAGES: tuple[str, ...] = ("W", "N1", "N2", "N3", "R")
#: Code of unscored, ``?``, movement and artefact epochs, and of unknown event labels.
UNSCORED = -1
#: Respiratory event types that count as apnea; ``hypopnea`` is kept separate.
APNEA_EVENTS: tuple[str, ...] = ("apnea_obstructive", "apnea_central", "apnea_mixed", "apnea")
#: Apneas and hypopneas: the events of the apnea-hypopnea index.
RESPIRATORY_EVENTS: tuple[str, ...] = APNEA_EVENTS + ("hypopnea",)
#: Every event type the scoring readers produce.
EVENT_TYPES: tuple[str, ...] = RESPIRATORY_EVENTS + ("desaturation", "arousal")
#: Classes of the per-second respiratory event task, and the event type each class decodes to.
EVENT_CLASSES: tuple[str, ...] = ("none", "obstructive", "central", "mixed", "hypopnea")
EVENT_CLASS_TYPES: dict[str, str] = {"obstructive": "apnea_obstructive", "central": "apnea_central",
                                     "mixed": "apnea_mixed", "hypopnea": "hypopnea"}
# an apnea of unspecified type is taught as obstructive, by far the most common type
_EVENT_CLASS_OF = {"apnea_obstructive": 1, "apnea": 1, "apnea_central": 2, "apnea_mixed": 3, "hypopnea": 4}


@dataclasses.dataclass(frozen=True)
class LabelContext:
    """What a label rule sees of one night aligned to its recording.

    ``stages`` (E,) are stage codes per epoch (−1 unscored); ``events`` (``onset_s``,
    ``duration_s``, ``event``) are in seconds from the recording start.
    """

    stages: np.ndarray
    events: pd.DataFrame
    epoch_s: float
    min_overlap_s: float
    respiratory_scored: bool

    @property
    def n_epochs(self) -> int:
        return int(self.stages.size)


LabelRule = Callable[[LabelContext], "np.ndarray"]


@dataclasses.dataclass(frozen=True)
class Task:
    """A per-epoch prediction task.

    Attributes
    ----------
    name : str
        Task name (``stage``, ``apnea``, ``hypopnea``); also the store's label column name.
    classes : tuple of str
        Class names by code.
    rule : callable
        ``LabelContext → (E,)`` int labels, −1 where unknown.
    events : tuple of str
        Event types that make an epoch positive (empty for stages). Event tasks also report
        AUROC, AUPRC and event-level F1, and feed the AHI.
    selection : str
        Validation metric that selects a checkpoint.
    description : str
        One line for help texts.
    resolution_s : float | None
        Per-second tasks label and predict every ``resolution_s`` seconds inside each epoch
        (:func:`second_labels`); the rule then gives the epoch's dominant class, which samples
        label fractions and balances windows. None: one label per epoch.
    """

    name: str
    classes: tuple[str, ...]
    rule: LabelRule
    events: tuple[str, ...] = ()
    selection: str = "macro_f1"
    description: str = ""
    resolution_s: float | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_event(self) -> bool:
        """An epoch-level event flag (apnea, hypopnea): binary, with AUROC/AUPRC/event F1."""
        return bool(self.events) and self.resolution_s is None

    @property
    def per_second(self) -> bool:
        return self.resolution_s is not None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics reported for this task (see :mod:`synthsleepnet.metrics`)."""
        base = ("accuracy", "macro_f1", "kappa", "f1", "confusion")
        if self.per_second:
            return base + ("event_f1", "event_f1_50", "ahi_error")
        return base + (("auroc", "auprc", "event_f1") if self.is_event else ())


def event_epoch_labels(events: pd.DataFrame, kinds: tuple[str, ...], n_epochs: int,
                       epoch_s: float, min_overlap_s: float = 0.0) -> np.ndarray:
    """1 for every epoch an event of ``kinds`` overlaps by more than ``min_overlap_s`` seconds.

    Overlap is computed exactly from onset and duration; nothing is rounded to epochs, so a 10-s
    event that straddles an epoch boundary marks both epochs when ``min_overlap_s`` allows it.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"onset_s": [55.0], "duration_s": [10.0], "event": ["hypopnea"]})
    >>> event_epoch_labels(ev, ("hypopnea",), 4, 30.0).tolist()
    [0, 1, 1, 0]
    """
    import numpy as np

    flags = np.zeros(n_epochs, dtype=np.int8)
    chosen = events[events["event"].isin(kinds)]
    for onset, duration in zip(chosen["onset_s"], chosen["duration_s"], strict=True):
        end = onset + max(float(duration), 0.0)
        first = max(int(np.floor(onset / epoch_s)), 0)
        last = min(max(int(np.ceil(end / epoch_s)), first + 1), n_epochs)  # a point event on a boundary too
        for k in range(first, last):
            overlap = min(end, (k + 1) * epoch_s) - max(onset, k * epoch_s)
            if overlap > min_overlap_s or (duration == 0 and overlap == 0 and k == first):
                flags[k] = 1
    return flags


def stage_rule(context: LabelContext) -> np.ndarray:
    """Stage labels are the aligned hypnogram itself."""
    import numpy as np

    return np.asarray(context.stages, dtype=np.int8)


def event_rule(kinds: tuple[str, ...], *, respiratory: bool = True) -> LabelRule:
    """A rule marking epochs an event of ``kinds`` overlaps (see :func:`event_epoch_labels`).

    With ``respiratory``, a night whose scoring has no respiratory scoring gets −1 (unknown),
    not 0: absence of scoring is not absence of events.
    """

    def rule(context: LabelContext) -> np.ndarray:
        import numpy as np

        if respiratory and not context.respiratory_scored:
            return np.full(context.n_epochs, UNSCORED, dtype=np.int8)
        return event_epoch_labels(context.events, kinds, context.n_epochs, context.epoch_s,
                                  context.min_overlap_s)

    return rule


def second_labels(events: pd.DataFrame, n_epochs: int, epoch_s: float, resolution_s: float = 1.0) -> np.ndarray:
    """(E, epoch_s / resolution_s) event classes (:data:`EVENT_CLASSES`) of every second.

    A second takes the class of the event covering its centre; an apnea wins over a hypopnea
    where a scorer overlapped them.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"onset_s": [25.0], "duration_s": [10.0], "event": ["apnea_central"]})
    >>> labels = second_labels(ev, 2, 30.0)
    >>> labels.shape, (labels == 2).sum(axis=1).tolist()
    ((2, 30), [5, 5])
    """
    import numpy as np

    per_epoch = int(round(epoch_s / resolution_s))
    out = np.zeros(n_epochs * per_epoch, dtype=np.int8)
    chosen = events[events["event"].isin(list(_EVENT_CLASS_OF))]
    order = sorted(zip(chosen["onset_s"], chosen["duration_s"], chosen["event"], strict=True),
                   key=lambda e: _EVENT_CLASS_OF[e[2]] != 4)  # hypopneas first, apneas overwrite them
    for onset, duration, kind in order:
        lo = max(int(np.ceil(onset / resolution_s - 0.5)), 0)
        hi = min(int(np.ceil((onset + max(float(duration), 0.0)) / resolution_s - 0.5)), out.size)
        out[lo:hi] = _EVENT_CLASS_OF[kind]
    return out.reshape(n_epochs, per_epoch)


def event_class_rule(context: LabelContext) -> np.ndarray:
    """The per-second event task's epoch label: its most frequent event class (0 when none);
    −1 for nights without respiratory scoring."""
    import numpy as np

    if not context.respiratory_scored:
        return np.full(context.n_epochs, UNSCORED, dtype=np.int8)
    seconds = second_labels(context.events, context.n_epochs, context.epoch_s)
    counts = np.stack([(seconds == k).sum(1) for k in range(1, len(EVENT_CLASSES))], axis=1)
    return np.where(counts.max(1) > 0, counts.argmax(1) + 1, 0).astype(np.int8)


#: The task registry, in label-column order.
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task to the registry (its label column goes after the existing ones)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered; tasks: {list(TASKS)}")
    if len(task.classes) < 2:
        raise ValueError(f"task {task.name!r} needs at least two classes, got {task.classes}")
    unknown = sorted(set(task.events) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"task {task.name!r}: unknown event type(s) {unknown}; known: {list(EVENT_TYPES)}")
    TASKS[task.name] = task
    return task


register_task(Task("stage", STAGES, stage_rule, description="sleep stage per 30-s epoch (W N1 N2 N3 R)"))
register_task(Task("apnea", ("none", "apnea"), event_rule(APNEA_EVENTS), events=APNEA_EVENTS,
                   description="an obstructive, central, mixed or unspecified apnea overlaps the epoch"))
register_task(Task("hypopnea", ("none", "hypopnea"), event_rule(("hypopnea",)), events=("hypopnea",),
                   description="a hypopnea overlaps the epoch"))
register_task(Task("events", EVENT_CLASSES, event_class_rule, events=RESPIRATORY_EVENTS, selection="event_f1_50",
                   resolution_s=1.0, description="respiratory events second by second "
                   "(obstructive, central, mixed apnea, hypopnea), decoded into events"))


def task_names() -> tuple[str, ...]:
    """Registered task names, in label-column order."""
    return tuple(TASKS)


def get_task(name: str) -> Task:
    """The registered task ``name``; the error lists the valid names."""
    return TASKS[check_option("task", name, TASKS)]


def epoch_labels(context: LabelContext, tasks: tuple[str, ...] | None = None) -> np.ndarray:
    """(E, n_tasks) int8 labels of every registered task (or of ``tasks``), column by column."""
    import numpy as np

    names = task_names() if tasks is None else tasks
    columns = [np.asarray(get_task(name).rule(context), dtype=np.int8) for name in names]
    for name, column in zip(names, columns, strict=True):
        if column.shape != (context.n_epochs,):
            raise ValueError(f"label rule of task {name!r} returned shape {column.shape}, "
                             f"expected ({context.n_epochs},)")
    return np.stack(columns, axis=1) if columns else np.zeros((context.n_epochs, 0), dtype=np.int8)

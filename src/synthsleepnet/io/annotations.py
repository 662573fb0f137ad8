"""Read sleep scorings: stages and respiratory events, from NSRR XML, EDF+, CSV/TSV and BIDS.

Stage codes follow AASM: W=0, N1=1, N2=2, N3=3 (R&K S3 and S4), REM=4. Unscored epochs, ``?``,
movement time and artefacts are -1, which losses and metrics ignore; they are never Wake.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import AnnotationError, check_path_exists
from .recording import Annotation

__all__ = [
    "APNEA_EVENTS",
    "EVENT_TYPES",
    "STAGE_NAMES",
    "UNSCORED",
    "Scoring",
    "parse_stage_label",
    "read_scoring",
    "scoring_from_annotations",
]

#: Stage names indexed by code.
STAGE_NAMES: tuple[str, ...] = ("W", "N1", "N2", "N3", "R")
#: Code of unscored, ``?``, movement and artefact epochs.
UNSCORED = -1
#: Respiratory event types that count as apnea; ``hypopnea`` is kept separate.
APNEA_EVENTS: tuple[str, ...] = ("apnea_obstructive", "apnea_central", "apnea_mixed", "apnea")
#: Every event type the readers produce.
EVENT_TYPES: tuple[str, ...] = APNEA_EVENTS + ("hypopnea", "desaturation", "arousal")

_STAGE_WORDS = {
    "w": 0, "wake": 0, "0": 0,
    "1": 1, "n1": 1, "s1": 1,
    "2": 2, "n2": 2, "s2": 2,
    "3": 3, "n3": 3, "s3": 3, "4": 3, "n4": 3, "s4": 3,
    "r": 4, "rem": 4, "5": 4,
    "?": UNSCORED, "unscored": UNSCORED, "movement": UNSCORED, "movement time": UNSCORED,
    "mt": UNSCORED, "art": UNSCORED, "artefact": UNSCORED, "artifact": UNSCORED,
    "uns": UNSCORED, "unknown": UNSCORED, "9": UNSCORED, "6": UNSCORED,
}
# YASA-style per-epoch integer files: 0 W, 1 N1, 2 N2, 3 N3, 4 REM, -1 artefact, -2 unscored.
_EPOCH_INTS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, -1: UNSCORED, -2: UNSCORED}
_STAGE_PREFIX = re.compile(r"^(sleep[\s_]*stage|stage)[\s_]*")
_EVENT_PATTERNS = (
    ("obstructive apnea", "apnea_obstructive"), ("obstructive apnoea", "apnea_obstructive"),
    ("central apnea", "apnea_central"), ("central apnoea", "apnea_central"),
    ("mixed apnea", "apnea_mixed"), ("mixed apnoea", "apnea_mixed"),
    ("hypopnea", "hypopnea"), ("hypopnoea", "hypopnea"),
    ("apnea", "apnea"), ("apnoea", "apnea"),
    ("desaturation", "desaturation"), ("arousal", "arousal"),
)


def parse_stage_label(text: str, *, source: str = "scoring") -> int | None:
    """Return the stage code of a stage annotation, or None if ``text`` is not a stage.

    Handles Sleep-EDF (``Sleep stage 3``, ``Sleep stage ?``, ``Movement time``), HMC
    (``Sleep stage N2``), NSRR (``Stage 2 sleep|2``, ``REM sleep|5``, ``Wake|0``) and plain labels
    (``W``, ``N1``, ``REM``). R&K stages 3 and 4 both become N3.

    Raises
    ------
    AnnotationError
        If ``text`` is a stage annotation (``Sleep stage X``) with an unknown stage ``X``.

    Examples
    --------
    >>> parse_stage_label("Sleep stage 4"), parse_stage_label("REM sleep|5")
    (3, 4)
    >>> parse_stage_label("Lights off") is None
    True
    """
    raw = text.split("|")[0].split("@@")[0].strip().lower()
    word = re.sub(r"\s+sleep$", "", _STAGE_PREFIX.sub("", raw)).strip()
    if word in _STAGE_WORDS:
        return _STAGE_WORDS[word]
    if _STAGE_PREFIX.match(raw):
        raise AnnotationError(
            f"{source}: unknown stage label {text!r}; known stages: W/Wake, N1/1, N2/2, N3/3/4, "
            "R/REM, and ?/Movement time/Unscored for unscored epochs")
    return None


def _event_type(text: str) -> str | None:
    low = text.split("|")[0].lower()
    for pattern, kind in _EVENT_PATTERNS:
        if pattern in low:
            return kind
    return None


@dataclasses.dataclass
class Scoring:
    """A night's scoring: per-epoch stages and a table of timed events.

    Attributes
    ----------
    stages : ndarray of int8, shape (E,)
        Stage code per epoch from ``onset 0`` of the scoring, -1 where unscored.
    epoch_s : float
        Epoch length in seconds.
    events : DataFrame
        Columns ``onset_s``, ``duration_s``, ``event`` (one of ``EVENT_TYPES``), in seconds
        from the scoring's onset 0.
    source : Path | None
        The file it was read from.
    start : datetime | None
        Start time of the scoring when the file states it (EDF+), used to refuse a scoring made
        for another recording.
    lights_off_s, lights_on_s : float | None
        Lights-off/on marks in seconds, when scored.
    respiratory_scored : bool
        Whether respiratory events were scored at all. NSRR XML always is; other files count as
        scored when they hold at least one respiratory event. When False, apnea and hypopnea
        labels are unknown (-1), not negative.
    """

    stages: np.ndarray
    epoch_s: float = 30.0
    events: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty_events())
    source: Path | None = None
    start: dt.datetime | None = None
    lights_off_s: float | None = None
    lights_on_s: float | None = None
    respiratory_scored: bool = False

    @property
    def n_epochs(self) -> int:
        return int(self.stages.size)

    def stage_counts(self) -> dict[str, int]:
        """Epochs per stage name, plus ``UNS`` for unscored."""
        counts = {name: int(np.sum(self.stages == code)) for code, name in enumerate(STAGE_NAMES)}
        counts["UNS"] = int(np.sum(self.stages == UNSCORED))
        return counts


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({"onset_s": pd.Series(dtype=float), "duration_s": pd.Series(dtype=float),
                         "event": pd.Series(dtype=str)})


def _stages_from_intervals(intervals: Sequence[tuple[float, float, int]], epoch_s: float) -> np.ndarray:
    """Per-epoch stages: each epoch takes the stage whose interval holds its midpoint."""
    if not intervals:
        return np.zeros(0, dtype=np.int8)
    end_s = max(onset + duration for onset, duration, _ in intervals)
    n_epochs = int(np.floor(end_s / epoch_s + 1e-6))
    stages = np.full(n_epochs, UNSCORED, dtype=np.int8)
    mids = (np.arange(n_epochs) + 0.5) * epoch_s
    for onset, duration, code in intervals:
        inside = (mids >= onset) & (mids < onset + duration)
        stages[inside] = code
    return stages


def scoring_from_annotations(
    annotations: Sequence[Annotation],
    *,
    epoch_s: float = 30.0,
    source: Path | None = None,
    start: dt.datetime | None = None,
) -> Scoring:
    """Build a Scoring from timed text annotations (EDF+ TALs, BIDS events, CSV rows)."""
    name = str(source) if source else "scoring"
    intervals: list[tuple[float, float, int]] = []
    events: list[tuple[float, float, str]] = []
    lights_off = lights_on = None
    for ann in annotations:
        code = parse_stage_label(ann.text, source=name)
        if code is not None:
            # a zero-duration stage mark (some exporters) covers one epoch
            intervals.append((ann.onset_s, ann.duration_s or epoch_s, code))
            continue
        low = ann.text.lower()
        if low.startswith("lights off"):
            lights_off = ann.onset_s
        elif low.startswith("lights on"):
            lights_on = ann.onset_s
        kind = _event_type(ann.text)
        if kind is not None:
            events.append((ann.onset_s, ann.duration_s, kind))
    table = (pd.DataFrame(events, columns=["onset_s", "duration_s", "event"])
             .sort_values("onset_s", kind="stable").reset_index(drop=True)) if events else _empty_events()
    respiratory = bool(table["event"].isin(APNEA_EVENTS + ("hypopnea",)).any())
    return Scoring(_stages_from_intervals(intervals, epoch_s), epoch_s, table, source, start,
                   lights_off, lights_on, respiratory)


def _read_nsrr_xml(path: Path, epoch_s: float) -> Scoring:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise AnnotationError(f"{path}: not well-formed XML ({err})") from err
    scored = root.findall(".//ScoredEvent")
    if not scored and root.find(".//ScoredEvents") is None:
        raise AnnotationError(f"{path}: no ScoredEvents/ScoredEvent elements; is this an NSRR XML file?")
    annotations = []
    for i, event in enumerate(scored):
        concept = (event.findtext("EventConcept") or "").strip()
        kind = (event.findtext("EventType") or "").strip().lower()
        try:
            onset = float(event.findtext("Start") or "nan")
            duration = float(event.findtext("Duration") or "0")
        except ValueError as err:
            raise AnnotationError(f"{path}: ScoredEvent #{i} ({concept!r}) has a non-numeric "
                                  f"Start or Duration ({err})") from err
        if kind.startswith("stages") and parse_stage_label(concept, source=str(path)) is None:
            raise AnnotationError(f"{path}: unknown stage label {concept!r} in ScoredEvent #{i}")
        if kind.startswith("stages") or kind.startswith("respiratory") or "arousal" in kind \
                or _event_type(concept) is not None:
            annotations.append(Annotation(onset, duration, concept))
    scoring = scoring_from_annotations(annotations, epoch_s=epoch_s, source=path)
    scoring.respiratory_scored = True  # NSRR scorings always cover respiratory events
    return scoring


def _read_edf_annotations(path: Path, epoch_s: float) -> Scoring:
    from .recording import read_recording

    recording = read_recording(path)
    if not recording.annotations:
        raise AnnotationError(f"{path}: the EDF file holds no annotations, so no scoring")
    return scoring_from_annotations(recording.annotations, epoch_s=epoch_s, source=path,
                                    start=recording.start)


def _read_table(path: Path, epoch_s: float) -> Scoring:
    sep = "\t" if path.suffix.lower() == ".tsv" else None
    text = path.read_text(encoding="utf-8-sig")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    first = lines[0] if lines else ""
    if not first:
        raise AnnotationError(f"{path}: the file is empty")
    columns = [c.strip().lower() for c in re.split(r"[\t,;]", first)]
    if "onset" in columns:
        table = pd.read_csv(path, sep=sep, engine="python")
        table.columns = [c.strip().lower() for c in table.columns]
        label_col = next((c for c in ("description", "trial_type", "value", "event", "stage", "label")
                          if c in table.columns), None)
        if label_col is None:
            raise AnnotationError(f"{path}: an events table needs a label column (description, "
                                  f"trial_type, value, event, stage or label); found {list(table.columns)}")
        durations = table["duration"] if "duration" in table.columns else pd.Series(0.0, index=table.index)
        annotations = [Annotation(float(o), float(d) if pd.notna(d) else 0.0, str(t))
                       for o, d, t in zip(table["onset"], durations, table[label_col], strict=True)]
        return scoring_from_annotations(annotations, epoch_s=epoch_s, source=path)
    return _read_epoch_labels(path, text, epoch_s)


def _read_epoch_labels(path: Path, text: str, epoch_s: float) -> Scoring:
    """One label per line (YASA style): integers 0–4 (4 = REM) or stage names."""
    codes = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        value = line.split(",")[0].strip()
        if not value or value.startswith("#"):
            continue
        if re.fullmatch(r"-?\d+(\.0+)?", value):
            number = int(float(value))
            if number not in _EPOCH_INTS:
                raise AnnotationError(f"{path}, line {line_no}: unknown stage code {value!r}; "
                                      "per-epoch integer files use 0 W, 1 N1, 2 N2, 3 N3, 4 REM, "
                                      "-1/-2 artefact/unscored")
            codes.append(_EPOCH_INTS[number])
            continue
        code = _STAGE_WORDS.get(value.lower())
        if code is None:
            raise AnnotationError(f"{path}, line {line_no}: unknown stage label {value!r}; "
                                  "expected W, N1, N2, N3, R/REM, ART or UNS")
        codes.append(code)
    return Scoring(np.asarray(codes, dtype=np.int8), epoch_s, _empty_events(), path)


def read_scoring(path: str | Path, *, epoch_s: float = 30.0) -> Scoring:
    """Read a scoring file: stages per epoch and respiratory events.

    Formats, by suffix: NSRR XML (``.xml``); EDF+ annotations (``.edf``: Sleep-EDF and HMC
    hypnograms); BIDS ``events.tsv`` and CSV/TSV with ``onset``, ``duration`` and a label column;
    plain text or CSV with one stage per line (YASA style).

    Raises
    ------
    AnnotationError
        For unparsable files and unknown stage labels; the message names the file (and line).
    """
    path = check_path_exists(path, "scoring file")
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return _read_nsrr_xml(path, epoch_s)
    if suffix in (".edf", ".bdf"):
        return _read_edf_annotations(path, epoch_s)
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_table(path, epoch_s)
    raise AnnotationError(f"{path}: unknown scoring format {suffix!r}; expected .xml (NSRR), .edf "
                          "(EDF+ annotations), .tsv/.csv (events table) or .txt (one stage per line)")

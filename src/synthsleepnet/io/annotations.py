"""Read sleep scorings: stages and respiratory events, from NSRR XML, NSRR Profusion XML, EDF+,
CSV/TSV and BIDS.

Stage codes follow AASM: W=0, N1=1, N2=2, N3=3 (R&K S3 and S4), REM=4. Unscored epochs, ``?``,
movement time and artefacts are -1, which losses and metrics ignore; they are never Wake.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger
from .._validation import AnnotationError, check_path_exists
from ..tasks import RESPIRATORY_EVENTS, STAGES, UNSCORED
from .edf import MAX_RECORDING_S
from .recording import Annotation, Recording

__all__ = [
    "Scoring",
    "embedded_scoring",
    "lights_marks",
    "parse_stage_label",
    "read_scoring",
    "scoring_from_annotations",
]

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
#: Event names, matched on a label's letters alone (spelling "pnoea" as "pnea"), so that
#: ``Obstructive Apnea``, ``ObstructiveApnea`` (Philips Alice), ``Apnea Obstructive`` and
#: ``Obstructive_Apnoea`` are one event; the first pattern a label holds decides.
_EVENT_PATTERNS = (
    ("hypopnea", "hypopnea"),
    ("obstructiveapnea", "apnea_obstructive"), ("apneaobstructive", "apnea_obstructive"),
    ("centralapnea", "apnea_central"), ("apneacentral", "apnea_central"),
    ("mixedapnea", "apnea_mixed"), ("apneamixed", "apnea_mixed"),
    ("apnea", "apnea"), ("desaturation", "desaturation"), ("arousal", "arousal"),
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


def _letters(text: str) -> str:
    """The letters of a label's name (before NSRR's ``|``), lower case: how names are compared."""
    return re.sub(r"[^a-z]", "", text.split("|")[0].lower())


def _event_type(text: str) -> str | None:
    letters = _letters(text).replace("pnoea", "pnea")
    return next((kind for pattern, kind in _EVENT_PATTERNS if pattern in letters), None)


def _lights_mark(text: str) -> str | None:
    """``"off"`` or ``"on"`` for a lights mark (``Lights off``, ``LightsOff``, ``Lights out``,
    ``LIGHTS ON``), else None."""
    letters = _letters(text)
    return next((mark for word, mark in (("lightsoff", "off"), ("lightsout", "off"), ("lightson", "on"))
                 if letters.startswith(word)), None)


def lights_marks(annotations: Sequence[Annotation], notes: list[str] | None = None
                 ) -> tuple[float | None, float | None]:
    """Lights off (the first mark) and lights on (the last), in the annotations' seconds; None
    where unmarked. Marks at impossible times are dropped, and lights on that is not after lights
    off leaves both unknown; each is said in ``notes``."""
    said: list[str] = [] if notes is None else notes
    marks: dict[str, list[float]] = {"off": [], "on": []}
    for ann in annotations:
        mark = _lights_mark(ann.text)
        timed = None if mark is None else _checked(ann.onset_s, 0.0, repr(ann.text), said)
        if mark is not None and timed is not None:
            marks[mark].append(timed[0])
    off, on = min(marks["off"], default=None), max(marks["on"], default=None)
    if off is not None and on is not None and on <= off:
        said.append(f"lights on at {on:g} s is not after lights off at {off:g} s; neither is used")
        return None, None
    return off, on


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
        Columns ``onset_s``, ``duration_s``, ``event`` (one of :data:`~synthsleepnet.tasks.EVENT_TYPES`), in seconds
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
    clock_start : time | None
        Clock time of the scoring's onset 0 when the file gives only a time of day (NSRR XML's
        ``Recording Start Time``); compared with the recording's start time of day.
    desaturations : DataFrame | None
        The scorer's SpO2 desaturations with their depth, ``onset_s``, ``duration_s``,
        ``drop_pct`` (baseline − nadir), where the file states it (NSRR XML's ``SpO2Baseline`` and
        ``SpO2Nadir``, Profusion's ``Desaturation``): what the AASM hypopnea rules confirm the
        scored hypopneas with.
    notes : list of str
        What reading changed or left out: dropped annotations (NaN, negative or absurd times),
        overlapping stages, unreadable annotation bytes.
    """

    stages: np.ndarray
    epoch_s: float = 30.0
    events: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty_events())
    source: Path | None = None
    start: dt.datetime | None = None
    lights_off_s: float | None = None
    lights_on_s: float | None = None
    respiratory_scored: bool = False
    clock_start: dt.time | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    desaturations: pd.DataFrame | None = None

    @property
    def n_epochs(self) -> int:
        return int(self.stages.size)

    def stage_counts(self) -> dict[str, int]:
        """Epochs per stage name, plus ``UNS`` for unscored."""
        counts = {name: int(np.sum(self.stages == code)) for code, name in enumerate(STAGES)}
        counts["UNS"] = int(np.sum(self.stages == UNSCORED))
        return counts


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({"onset_s": pd.Series(dtype=float), "duration_s": pd.Series(dtype=float),
                         "event": pd.Series(dtype=str)})


def _stages_from_intervals(intervals: Sequence[tuple[float, float, int]], epoch_s: float,
                           notes: list[str]) -> np.ndarray:
    """Per-epoch stages: each epoch takes the stage whose interval holds its midpoint.

    Intervals are checked before (:func:`_checked`), so the array is bounded by
    ``MAX_RECORDING_S``. When intervals overlap the later one wins, and that is said.
    """
    if not intervals:
        return np.zeros(0, dtype=np.int8)
    ordered = sorted(intervals, key=lambda i: i[0])
    overlaps = [(a, b) for a, b in zip(ordered[:-1], ordered[1:], strict=True) if b[0] < a[0] + a[1] - 1e-6]
    if overlaps:
        first = overlaps[0][1][0]
        notes.append(f"{len(overlaps)} stage annotation(s) overlap the one before (the first at {first:g} s); "
                     "where they overlap the later one is used")
    partial = [duration for _, duration, _ in intervals if abs(duration / epoch_s - round(duration / epoch_s)) > 1e-6
               or duration < epoch_s - 1e-6]
    if partial:  # 20-s scorings (MASS, older R&K studies) or a different epoch setting
        notes.append(f"{len(partial)} stage annotation(s) do not span whole {epoch_s:g}-s epochs (the first lasts "
                     f"{partial[0]:g} s): each epoch takes the stage scored at its midpoint")
    end_s = max(onset + duration for onset, duration, _ in intervals)
    n_epochs = int(np.floor(end_s / epoch_s + 1e-6))
    stages = np.full(n_epochs, UNSCORED, dtype=np.int8)
    mids = (np.arange(n_epochs) + 0.5) * epoch_s
    for onset, duration, code in ordered:
        first_epoch = max(int(np.floor(onset / epoch_s)), 0)
        last_epoch = min(int(np.ceil((onset + duration) / epoch_s)) + 1, n_epochs)
        window = mids[first_epoch:last_epoch]
        inside = (window >= onset) & (window < onset + duration)
        stages[first_epoch:last_epoch][inside] = code
    return stages


def _checked(onset: float, duration: float, what: str, notes: list[str]) -> tuple[float, float] | None:
    """An annotation's time, or None (with a note) when it cannot belong to any night.

    Non-finite or negative times are dropped; a time beyond ``MAX_RECORDING_S`` (7 days) is
    dropped, and a duration reaching past it is clipped, so no number in a file can size an
    array beyond a week of epochs.
    """
    if not (math.isfinite(onset) and math.isfinite(duration)):
        notes.append(f"{what} at {onset:g} s lasting {duration:g} s: not a finite time; dropped")
        return None
    if onset < 0 or duration < 0:
        notes.append(f"{what} at {onset:g} s lasting {duration:g} s: negative {'onset' if onset < 0 else 'duration'}; "
                     "dropped")
        return None
    if onset >= MAX_RECORDING_S:
        notes.append(f"{what} at {onset:g} s: beyond the {MAX_RECORDING_S / 86400:g} days any recording can last; "
                     "dropped")
        return None
    if onset + duration > MAX_RECORDING_S:
        notes.append(f"{what} at {onset:g} s lasting {duration:g} s: clipped at {MAX_RECORDING_S / 86400:g} days")
        duration = MAX_RECORDING_S - onset
    return onset, duration


def _summarise(notes: list[str], limit: int = 5) -> list[str]:
    """At most ``limit`` notes of one kind, then a count of the rest."""
    return notes if len(notes) <= limit else notes[:limit] + [f"... and {len(notes) - limit} more like these"]


def scoring_from_annotations(
    annotations: Sequence[Annotation],
    *,
    epoch_s: float = 30.0,
    source: Path | None = None,
    start: dt.datetime | None = None,
    notes: Sequence[str] = (),
) -> Scoring:
    """Build a Scoring from timed text annotations (EDF+ TALs, BIDS events, CSV rows).

    Annotations whose times cannot belong to a night (NaN, negative, beyond 7 days) are dropped
    and said in ``Scoring.notes``; overlapping stage annotations are said too.
    """
    name = str(source) if source else "scoring"
    intervals: list[tuple[float, float, int]] = []
    events: list[tuple[float, float, str]] = []
    dropped: list[str] = []
    kept_notes = list(notes)
    for ann in annotations:
        code = parse_stage_label(ann.text, source=name)
        kind = None if code is not None else _event_type(ann.text)
        if code is None and kind is None:
            continue
        # a zero-duration stage mark (some exporters) covers one epoch
        duration = (ann.duration_s or epoch_s) if code is not None else ann.duration_s
        timed = _checked(ann.onset_s, duration, f"{ann.text!r}", dropped)
        if timed is None:
            continue
        if code is not None:
            intervals.append((timed[0], timed[1], code))
        elif kind is not None:
            events.append((timed[0], timed[1], kind))
    lights_off, lights_on = lights_marks(annotations, dropped)
    kept_notes += _summarise(dropped)
    table = (pd.DataFrame(events, columns=["onset_s", "duration_s", "event"])
             .sort_values("onset_s", kind="stable").reset_index(drop=True)) if events else _empty_events()
    respiratory = bool(table["event"].isin(RESPIRATORY_EVENTS).any())
    points = int((table["event"].isin(RESPIRATORY_EVENTS) & (table["duration_s"] <= 0)).sum())
    if points:  # marked without a duration (some exports): where, but not how long
        kept_notes.append(f"{points} respiratory event(s) have no duration: each flags the epoch it starts in, "
                          "covers no second of the per-second labels and has no duration in the indices")
    stages = _stages_from_intervals(intervals, epoch_s, kept_notes)
    return Scoring(stages, epoch_s, table, source, start, lights_off, lights_on, respiratory, notes=kept_notes)


def embedded_scoring(recording: Recording, epoch_s: float) -> Scoring | None:
    """The scoring a recording embeds in its own EDF+ annotations (stages, and events with them),
    or None when it holds no stage annotation (or one it cannot read: said in the log).

    Clinical systems export EDF+ files with the technologist's stages inside; scoring compares
    with them and ``prepare`` takes its labels from them when no scoring file is paired.
    """
    if not recording.annotations:
        return None
    try:
        scoring = scoring_from_annotations(recording.annotations, epoch_s=epoch_s, source=recording.path,
                                           start=recording.start)
    except AnnotationError as err:
        logger.warning("%s: its own annotations are not used as a reference scoring: %s", recording.path, err)
        return None
    if not np.any(scoring.stages >= 0):
        return None
    scoring.notes.append("the recording's own stage annotations are its scoring")
    return scoring


def _clock_time(text: str) -> dt.time | None:
    """The time of day in an NSRR ``ClockTime`` (``00.00.00 23.00.00``), or None."""
    match = re.search(r"(\d{1,2})[.:](\d{2})[.:](\d{2})\s*$", text.strip())
    if not match:
        return None
    hour, minute, second = (int(g) for g in match.groups())
    return dt.time(hour, minute, second) if hour < 24 and minute < 60 and second < 60 else None


#: Profusion stage codes (R&K: 3 and 4 are N3, 5 is REM); any other code (9 "active") is unscored.
_PROFUSION_STAGES = {"0": "W", "1": "N1", "2": "N2", "3": "N3", "4": "N3", "5": "R"}


def _read_profusion_xml(root: ET.Element, path: Path, epoch_s: float) -> Scoring:
    """Compumedics Profusion XML as NSRR distributes it (``*-profusion.xml``): ``EpochLength``,
    one ``SleepStages/SleepStage`` per epoch, and ``ScoredEvents`` with ``Name``/``Start``/``Duration``
    (seconds from the recording start), mapped like every other scoring's event names."""
    try:
        length = float(root.findtext(".//EpochLength") or "30")
    except ValueError as err:
        raise AnnotationError(f"{path}: EpochLength {root.findtext('.//EpochLength')!r} is not a number") from err
    if not 1 <= length <= 120:
        raise AnnotationError(f"{path}: EpochLength {length:g} s is not a scoring epoch (1-120 s)")
    annotations = []
    depths: list[tuple[float, float, float]] = []
    other: set[str] = set()
    for i, stage in enumerate(root.iterfind(".//SleepStages/SleepStage")):
        code = (stage.text or "").strip()
        if code not in _PROFUSION_STAGES:
            other.add(code)
        annotations.append(Annotation(i * length, length, _PROFUSION_STAGES.get(code, "?")))
    for i, event in enumerate(root.iterfind(".//ScoredEvents/ScoredEvent")):
        name = (event.findtext("Name") or "").strip()
        try:
            onset, duration = float(event.findtext("Start") or "nan"), float(event.findtext("Duration") or "0")
        except ValueError as err:
            raise AnnotationError(f"{path}: ScoredEvent #{i} ({name!r}) has a non-numeric Start or Duration "
                                  f"({err})") from err
        if _event_type(name) is not None:
            annotations.append(Annotation(onset, duration, name))
        if _event_type(name) == "desaturation":
            drop = _number(event, "Desaturation")  # Profusion states the fall itself (and LowestSpO2)
            depths.append((onset, duration, drop if 0 < drop <= 100 else float("nan")))
    if not annotations:
        raise AnnotationError(f"{path}: a Profusion XML file without SleepStage or ScoredEvent elements")
    notes = [f"stage code(s) {sorted(other)} (Profusion: 9 is 'active', others undefined) scored as unscored"] \
        if other else []
    scoring = scoring_from_annotations(annotations, epoch_s=epoch_s, source=path, notes=notes)
    scoring.respiratory_scored = True  # NSRR's Profusion scorings cover respiratory events
    _add_desaturations(scoring, depths, "Desaturation")
    return scoring


def _read_nsrr_xml(path: Path, epoch_s: float) -> Scoring:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise AnnotationError(f"{path}: not well-formed XML ({err})") from err
    if root.tag == "CMPStudyConfig" or root.find(".//SleepStages") is not None:
        return _read_profusion_xml(root, path, epoch_s)
    scored = root.findall(".//ScoredEvent")
    if not scored and root.find(".//ScoredEvents") is None:
        raise AnnotationError(f"{path}: no ScoredEvents/ScoredEvent elements; is this an NSRR XML file?")
    annotations = []
    depths: list[tuple[float, float, float]] = []
    clock_start = None
    for i, event in enumerate(scored):
        concept = (event.findtext("EventConcept") or "").strip()
        kind = (event.findtext("EventType") or "").strip().lower()
        if concept.lower().startswith("recording start time"):
            clock_start = _clock_time(event.findtext("ClockTime") or "")
            continue
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
        if _event_type(concept) == "desaturation":
            depths.append((onset, duration, _drop_pct(event)))
    scoring = scoring_from_annotations(annotations, epoch_s=epoch_s, source=path)
    scoring.respiratory_scored = True  # NSRR scorings always cover respiratory events
    scoring.clock_start = clock_start
    _add_desaturations(scoring, depths, "SpO2Baseline and SpO2Nadir")
    return scoring


def _add_desaturations(scoring: Scoring, depths: list[tuple[float, float, float]], fields: str) -> None:
    """Keep the desaturations whose depth the file states (``scoring.desaturations``); say how
    many state none, when some do."""
    known = [row for row in depths if all(math.isfinite(v) for v in row)]
    if not known:
        return
    scoring.desaturations = pd.DataFrame(known, columns=["onset_s", "duration_s", "drop_pct"])
    if len(known) < len(depths):
        scoring.notes.append(f"{len(depths) - len(known)} of {len(depths)} SpO2 desaturation(s) state no usable "
                             f"{fields}; the hypopnea rules do not count them")


def _number(event: ET.Element, tag: str) -> float:
    try:
        return float(event.findtext(tag) or "nan")
    except ValueError:
        return float("nan")


def _drop_pct(event: ET.Element) -> float:
    """Baseline − nadir of an NSRR desaturation (NaN when either is missing or no saturation)."""
    baseline, nadir = _number(event, "SpO2Baseline"), _number(event, "SpO2Nadir")
    plausible = 0 < nadir <= baseline <= 100
    return round(baseline - nadir, 6) if plausible else float("nan")  # 64.1 − 60.1 is 4, not 3.99999


def _read_edf_annotations(path: Path, epoch_s: float) -> Scoring:
    from .recording import read_recording

    recording = read_recording(path)
    if not recording.annotations:
        raise AnnotationError(f"{path}: the EDF file holds no annotations, so no scoring")
    return scoring_from_annotations(recording.annotations, epoch_s=epoch_s, source=path,
                                    start=recording.start, notes=recording.notes)


_TABLE_COLUMNS = ("description", "trial_type", "value", "event", "stage", "label")


def _read_table(path: Path, epoch_s: float) -> Scoring:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err})") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    first = lines[0] if lines else ""
    if not first:
        raise AnnotationError(f"{path}: the file is empty")
    columns = [c.strip().lower() for c in re.split(r"[\t,;]", first)]
    # the separator is the header's (not sniffed from the file's first line, which may be blank)
    sep = "\t" if path.suffix.lower() == ".tsv" else next((c for c in "\t;," if c in first), ",")
    if "onset" not in columns:
        if set(columns) & {"duration", *_TABLE_COLUMNS}:
            raise AnnotationError(f"{path}: an events table needs an 'onset' column (seconds from the recording "
                                  f"start); its header has {columns}")
        return _read_epoch_labels(path, text, epoch_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # extra fields would be dropped
            table = pd.read_csv(path, sep=sep, engine="python", comment="#", index_col=False)
    except pd.errors.ParserWarning:
        raise AnnotationError(f"{path}: some rows have more fields than the header {columns}; "
                              "is the separator right?") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise AnnotationError(f"{path}: not a readable table ({err})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    label_col = next((c for c in _TABLE_COLUMNS if c in table.columns), None)
    if label_col is None:
        raise AnnotationError(f"{path}: an events table needs a label column (description, "
                              f"trial_type, value, event, stage or label); found {list(table.columns)}")
    notes: list[str] = []
    onsets = pd.to_numeric(table["onset"], errors="coerce")
    bad = np.flatnonzero(onsets.isna().to_numpy())
    if bad.size:
        notes.append(f"{bad.size} row(s) without a numeric onset (the first on line {bad[0] + 2}: "
                     f"{table['onset'].iloc[bad[0]]!r}); dropped")
    if "duration" in table.columns:
        durations = pd.to_numeric(table["duration"], errors="coerce").fillna(0.0)
    else:
        durations = pd.Series(0.0, index=table.index)
        notes.append("no duration column: each stage row covers one epoch and events last 0 s")
    annotations, unused = [], []
    for line, (onset, duration, label) in enumerate(zip(onsets, durations, table[label_col], strict=True), start=2):
        text_label = "" if pd.isna(label) else str(label).strip()
        if pd.isna(onset):
            continue
        is_stage = parse_stage_label(text_label, source=f"{path}, line {line}") is not None
        if label_col == "stage" and not is_stage:
            raise AnnotationError(f"{path}, line {line}: unknown stage label {text_label!r}; expected W, N1, N2, "
                                  "N3, R/REM or ?/Movement/Unscored")
        if not is_stage and _event_type(text_label) is None and _lights_mark(text_label) is None:
            unused.append(text_label)
        annotations.append(Annotation(float(onset), float(duration), text_label))
    if unused:
        examples = sorted(set(unused))[:3]
        notes.append(f"{len(unused)} row(s) with labels that are neither stages nor scored events (e.g. {examples}); "
                     "not used")
    return scoring_from_annotations(annotations, epoch_s=epoch_s, source=path, notes=notes)


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

    Formats, by suffix: NSRR XML and NSRR Profusion XML (``.xml``, told apart by their
    content); EDF+ annotations (``.edf``: Sleep-EDF and HMC
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

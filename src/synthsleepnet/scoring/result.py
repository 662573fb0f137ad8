"""The result of scoring one night: stages, probabilities, respiratory events, statistics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._atomic import atomic_write_text
from .._config import EventDecoding, config_from_dict
from ..cardiac import cardiac_measures, epoch_means, hrv_measures, hrv_segments
from ..events import decode_events, event_agreement
from ..metrics import classification_metrics, event_f1, events_from_flags
from ..positional import epoch_positions, position_measures
from ..respiratory import (
    confirm_hypopneas,
    events_in_bed,
    find_desaturations,
    respiratory_indices,
    scored_indices,
    severity_band,
    spo2_measures,
)
from ..stats import in_bed, sleep_statistics
from ..tasks import RESPIRATORY_EVENTS, STAGES, TASKS, UNSCORED

__all__ = ["ScoringResult"]

#: Stage codes by string; epochs without a stage are "UNS" (no stage model, or unscored).
_CODES = {name: code for code, name in enumerate(STAGES)} | {"UNS": UNSCORED, "ART": UNSCORED}

#: The AHIs compared with the reference's: every hypopnea, and by the AASM 3 % and 4 % rules.
_AHIS = ("AHI", "AHI_3pct", "AHI_4pct")
#: ... and by body position, where it is known.
_POSITIONAL = ("AHI_supine", "AHI_nonsupine")


@dataclasses.dataclass
class ScoringResult:
    """One scored night.

    Attributes
    ----------
    stages : list of str
        Per epoch: W, N1, N2, N3, R (UNS where no stage model ran).
    stage_proba : ndarray (E, 5) | None
        Stage probabilities in the order of :data:`~synthsleepnet.tasks.STAGES`; rows sum to 1.
    event_proba : dict of str to ndarray (E,)
        Per event task (``apnea``, ``hypopnea``), the probability that such an event overlaps
        each epoch.
    second_proba : ndarray (E, seconds, 5) | None
        From a per-second ``events`` model: every second's probabilities of no event,
        obstructive, central, mixed apnea and hypopnea; events are decoded from it
        (:func:`~synthsleepnet.events.decode_events`) instead of from epoch flags.
    epoch_s : float
        Epoch length in seconds.
    start : datetime
        Start of the first epoch, timezone-aware (EDF clock time, labelled with ``timezone``).
    source : str
        The scored recording.
    models : list of dict
        Each model's task, checkpoint, preset, stage and package version.
    channels_used, channels_missing : list of str
        Canonical channels the models used, and those they know but could not use (absent from the
        night, or skipped: the reason is among the notes) and no channel stood in for.
    modalities_used : list of str
        Modalities used.
    reliability : dict
        ``{"level": "full" | "reduced" | "low", "reasons": [...]}``: ``low`` when a model ran
        without what it was trained to need most (a stage model without EEG, an event model
        without airflow and SpO2), ``reduced`` for stand-in or missing channels.
    preprocessing_hash : str
        Identity of the preprocessing (matches the models').
    reference : list of str | None
        Reference stages from the scoring given with ``--annotations``.
    reference_events : list of (onset_s, duration_s, event) | None
        Reference respiratory events, when that scoring covers them.
    reference_arousals : list of (onset_s, duration_s) | None
        That scoring's arousals (with its respiratory events): they confirm its hypopneas by the
        AASM 3 % rule.
    reference_desaturations : list of (onset_s, duration_s, drop_pct) | None
        That scoring's own SpO2 desaturations with their depth, where it states them (NSRR XML,
        Profusion): its hypopneas are confirmed with them, as its scorer did, rather than with
        desaturations found in this night's SpO2.
    threshold : float
        Probability above which an epoch is flagged for an event (per-epoch models).
    decoding : EventDecoding
        How a per-second model's probabilities become events: the events model's own (chosen
        on its validation nights), its threshold replaced when the user gave one.
    spo2 : list of float | None
        SpO2 (%) at 1 Hz when the recording has it (for the report).
    heart_rate : list of float | None
        Heart rate (bpm) at 1 Hz from the ECG when the recording has one (NaN where its beats
        could not be told: :mod:`synthsleepnet.cardiac`).
    r_peaks : list of float | None
        The ECG's R peaks, in seconds from the recording start (to the millisecond): the beats
        the heart rate was measured from, and its variability is. ``heart_rate`` is derived from
        them when a night is scored and kept beside them: results saved before the beats were
        kept have the trace alone.
    body_position : list of int | None
        Body position at 1 Hz from a position channel whose codes are known: the index in
        :data:`~synthsleepnet.io.position_codes.POSITIONS` (supine, left, right, prone, upright),
        −1 where unknown.
    notes : list of str
        What preparing the night changed or left out.
    lights_off_s, lights_on_s : float | None
        Lights marks in seconds from the first epoch, when the reference scoring or the recording
        marks them: time in bed (TIB, SOL, SE) and the indices over sleep count between them.
    """

    stages: list[str]
    stage_proba: np.ndarray | None
    event_proba: dict[str, np.ndarray]
    epoch_s: float
    start: dt.datetime
    source: str
    models: list[dict[str, Any]]
    channels_used: list[str]
    channels_missing: list[str]
    modalities_used: list[str]
    preprocessing_hash: str
    reliability: dict[str, Any] = dataclasses.field(default_factory=lambda: {"level": "full", "reasons": []})
    reference: list[str] | None = None
    reference_events: list[tuple[float, float, str]] | None = None
    reference_arousals: list[tuple[float, float]] | None = None
    reference_desaturations: list[tuple[float, float, float]] | None = None
    threshold: float = 0.5
    decoding: EventDecoding = dataclasses.field(default_factory=EventDecoding)
    spo2: list[float] | None = None
    heart_rate: list[float] | None = None
    r_peaks: list[float] | None = None
    body_position: list[int] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    second_proba: np.ndarray | None = None
    lights_off_s: float | None = None
    lights_on_s: float | None = None

    @property
    def n_epochs(self) -> int:
        return len(self.stages)

    @property
    def scores_respiration(self) -> bool:
        """Whether an apnea, hypopnea or events model ran."""
        return self.second_proba is not None or any(set(TASKS[t].events) <= set(RESPIRATORY_EVENTS)
                                                    for t in self.event_proba)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the chosen stage per epoch (NaN without a stage model)."""
        if self.stage_proba is None:
            return np.full(self.n_epochs, np.nan)
        return self.stage_proba.max(axis=1)

    def as_int(self, mapping: dict[str, int] | None = None) -> np.ndarray:
        """Stage codes per epoch with an explicit mapping (default W 0, N1 1, N2 2, N3 3, R 4, UNS −1)."""
        mapping = mapping or _CODES
        return np.array([mapping[s] for s in self.stages], dtype=int)

    def flags(self, task: str) -> np.ndarray | None:
        """0/1 per epoch for an event task (probability > threshold); None if it was not scored."""
        proba = self.event_proba.get(task)
        return None if proba is None else (proba > self.threshold).astype(int)

    def desaturations(self) -> pd.DataFrame | None:
        """≥ 3 % SpO2 desaturations (:func:`~synthsleepnet.respiratory.find_desaturations`); None
        without SpO2."""
        return None if self.spo2 is None else find_desaturations(np.asarray(self.spo2, dtype=float), 3.0)

    def respiratory_events(self) -> pd.DataFrame:
        """Estimated events (onset, duration, type), with the largest desaturation that follows
        each and, for hypopneas, what confirms them (:func:`~synthsleepnet.respiratory.confirm_hypopneas`).

        From an ``events`` model, events are decoded second by second with their type and
        probability. From apnea / hypopnea epoch models, each run of consecutive flagged epochs is
        one event: two events inside one run count once, so the count is a lower bound when
        events cluster.
        """
        if self.second_proba is not None:
            proba = np.asarray(self.second_proba)
            decoded = decode_events(proba.reshape(-1, proba.shape[-1]), resolution_s=self.epoch_s / proba.shape[1],
                                    **dataclasses.asdict(self.decoding))
            return confirm_hypopneas(decoded, self.desaturations())
        rows = []
        for task in self.event_proba:
            if set(TASKS[task].events) <= set(RESPIRATORY_EVENTS):
                flags = (self.event_proba[task] > self.threshold).astype(int)
                rows += [(o, d, task) for o, d in events_from_flags(flags, self.epoch_s)]
        table = pd.DataFrame(rows, columns=["onset_s", "duration_s", "event"])
        table = table.sort_values("onset_s", kind="stable").reset_index(drop=True)
        return confirm_hypopneas(table, self.desaturations())

    def sleep_statistics(self) -> dict[str, float]:
        """AASM statistics of the predicted hypnogram (see :func:`synthsleepnet.stats.sleep_statistics`)."""
        return sleep_statistics(self.as_int(), self.epoch_s, lights_off_s=self.lights_off_s,
                                lights_on_s=self.lights_on_s)

    def _bed(self) -> slice:
        """The epochs of time in bed (all of them without lights marks)."""
        return in_bed(self.n_epochs, self.epoch_s, self.lights_off_s, self.lights_on_s)

    def _in_bed(self, events: pd.DataFrame) -> pd.DataFrame:
        """The events starting in bed, timed from its first epoch (as the indices' hypnogram is)."""
        return events_in_bed(events, self._bed(), self.epoch_s)

    def respiratory(self) -> dict[str, Any]:
        """The respiratory picture: AHI (total, REM, NREM; with SpO2 also by the AASM 3 % and 4 %
        hypopnea rules), AI, HI, OAI, CAI, MAI, counts and
        durations per type, severity (:func:`~synthsleepnet.respiratory.respiratory_indices`), and
        with SpO2 the ODI3, ODI4, T90 and mean / minimum SpO2 over sleep
        (:func:`~synthsleepnet.respiratory.spo2_measures`), all over time in bed (lights off to
        on, where marked). Indices are NaN when no apnea / hypopnea model ran or there is no
        sleep; without a stage model the REI and the SpO2 measures span the time in bed.
        """
        bed = self._bed()
        codes = self.as_int()[bed]
        out: dict[str, Any]
        if self.scores_respiration:
            events = self._in_bed(self.respiratory_events())
            out = respiratory_indices(events, codes, self.epoch_s, desaturations_measured=self.spo2 is not None)
            hypopneas = events[events["event"] == "hypopnea"]
            out["hypopneas_confirmed"] = int((hypopneas["confirmed_by"] != "").sum())
        else:
            out = {"AHI": float("nan"), "severity": severity_band(float("nan")), "n_events": 0,
                   "note": "no apnea/hypopnea model was given"}
        if self.spo2 is not None:
            has_stages = bool(np.any(codes >= 0))
            out.update(spo2_measures(np.asarray(self.spo2, dtype=float), self.as_int() if has_stages else None,
                                     self.epoch_s, in_bed=bed))
        return out

    def cardiac(self) -> dict[str, float] | None:
        """Mean, lowest and highest heart rate in sleep, the highest in the recording, the mean in
        wake, NREM and R (:func:`~synthsleepnet.cardiac.cardiac_measures`), and with the beats its
        variability in each (:func:`~synthsleepnet.cardiac.hrv_measures`), over time in bed; None
        without an ECG."""
        if self.heart_rate is None:
            return None
        measures = cardiac_measures(np.asarray(self.heart_rate, dtype=float), self.as_int(), self.epoch_s,
                                    in_bed=self._bed())
        if self.r_peaks is not None:
            measures.update(hrv_measures(np.asarray(self.r_peaks, dtype=float), self.as_int(), self.epoch_s,
                                         in_bed=self._bed()))
        return measures

    def hrv_segments(self) -> pd.DataFrame:
        """The heart-rate variability of each 5-minute segment of wake, NREM or R in bed
        (:func:`~synthsleepnet.cardiac.hrv_segments`; no rows without the ECG's beats)."""
        if self.r_peaks is None:
            return hrv_segments(np.empty(0), np.empty(0, dtype=int), self.epoch_s)
        return hrv_segments(np.asarray(self.r_peaks, dtype=float), self.as_int(), self.epoch_s, in_bed=self._bed())

    def position(self) -> dict[str, Any] | None:
        """Sleep time and AHI by body position, supine and non-supine, over time in bed
        (:func:`~synthsleepnet.positional.position_measures`; the AHIs from this night's estimated
        events, NaN without a respiratory model); None without a readable position channel."""
        if self.body_position is None:
            return None
        return self._position(self.respiratory_events() if self.scores_respiration else None)

    def _position(self, events: pd.DataFrame | None) -> dict[str, Any]:
        """:meth:`position` with this night's events already decoded (or None)."""
        return position_measures(np.asarray(self.body_position), self.as_int(), events, self.epoch_s,
                                 in_bed=self._bed(), desaturations_measured=self.spo2 is not None)

    def agreement(self) -> dict[str, Any] | None:
        """Accuracy and κ against the reference hypnogram, over epochs both scored (our unscored
        epochs lie in recording gaps); None without a reference or a stage model."""
        if self.reference is None or self.stage_proba is None:
            return None
        ref = np.array([_CODES[s] for s in self.reference])
        pred = self.as_int()
        both = (ref >= 0) & (pred >= 0)
        metrics = classification_metrics(ref[both], pred[both], len(STAGES), STAGES)
        return {k: metrics[k] for k in ("n_epochs", "accuracy", "kappa", "macro_f1", "f1", "confusion")}

    def _reference_ahis(self) -> dict[str, Any]:
        """The reference scoring's AHI in bed, each key ending in ``_reference``; by the AASM
        hypopnea rules too where desaturations are known: its hypopneas confirmed by its own
        arousals and by its own desaturations where it states their depth (as NSRR's
        ``ahi_a0h3a`` and ``ahi_a0h4`` count them), else by those found in this night's SpO2 (as
        ours are; a scoring such as SHHS's marks every hypopnea, whatever it desaturated).
        ``reference_desaturations_from`` says which."""
        arousals = [(onset, duration, "arousal") for onset, duration in self.reference_arousals or ()]
        scored = pd.DataFrame([*(self.reference_events or ()), *arousals], columns=["onset_s", "duration_s", "event"])
        own = self.reference_desaturations is not None
        desaturations = (pd.DataFrame(self.reference_desaturations, columns=["onset_s", "duration_s", "drop_pct"])
                         if own else self.desaturations())
        indices = scored_indices(scored, np.array([_CODES[s] for s in self.reference or ()]), self.epoch_s,
                                 bed=self._bed(), desaturations=desaturations)
        out: dict[str, Any] = {f"{key}_reference": indices[key] for key in _AHIS if key in indices}
        if desaturations is not None:
            out["reference_desaturations_from"] = "the scoring" if own else "this night's SpO2"
        return out

    def _positional_ahis(self, predicted: pd.DataFrame) -> dict[str, float]:
        """The AHI supine and non-supine, ours (from the ``predicted`` events) and the
        reference's (``_reference``), each over its own hypnogram and this night's body position;
        empty where the position is unknown."""
        if self.body_position is None:
            return {}
        position = np.asarray(self.body_position)
        reference = pd.DataFrame(self.reference_events or [], columns=["onset_s", "duration_s", "event"])
        theirs = position_measures(position, np.array([_CODES[s] for s in self.reference or ()]), reference,
                                   self.epoch_s, in_bed=self._bed())
        ours = self._position(predicted)
        return {**{key: ours[key] for key in _POSITIONAL}, **{f"{key}_reference": theirs[key] for key in _POSITIONAL}}

    def event_agreement(self) -> dict[str, Any] | None:
        """Respiratory events against the reference's (any overlap; type ignored, as the epoch
        models tell apnea from hypopnea only), and the AHI of both over their own hypnograms, with
        desaturations known also by the AASM hypopnea rules (:meth:`_reference_ahis`) — None
        without a respiratory reference or an apnea/hypopnea model."""
        if self.reference_events is None or self.reference is None or not self.scores_respiration:
            return None
        ours = self.respiratory()
        predicted = self.respiratory_events()
        ahis = {**self._reference_ahis(), **{key: ours[key] for key in _AHIS if key in ours},
                **self._positional_ahis(predicted)}
        if self.second_proba is not None:  # typed events: agreement by type too
            reference = pd.DataFrame(self.reference_events, columns=["onset_s", "duration_s", "event"])
            return {**event_agreement(reference, predicted), **ahis}
        truth = [(o, d) for o, d, _ in self.reference_events]
        pred = list(zip(predicted["onset_s"], predicted["duration_s"], strict=True))
        return {**event_f1(truth, pred), **ahis}

    def to_dataframe(self) -> pd.DataFrame:
        """One row per epoch: onset, clock time, stage, probabilities, confidence, events."""
        onset = np.arange(self.n_epochs) * self.epoch_s
        table: dict[str, Any] = {"epoch": np.arange(self.n_epochs), "onset_s": onset,
                                 "time": [(self.start + dt.timedelta(seconds=float(o))).isoformat() for o in onset],
                                 "stage": self.stages}
        for i, name in enumerate(STAGES):
            table[f"p_{name}"] = self.stage_proba[:, i] if self.stage_proba is not None else np.nan
        table["confidence"] = self.confidence
        for task in (t for t in TASKS if TASKS[t].is_event):
            flags = self.flags(task)
            table[f"p_{task}"] = self.event_proba[task] if flags is not None else np.nan
            table[f"{task}_flag"] = flags if flags is not None else pd.array([pd.NA] * self.n_epochs, dtype="Int64")
        table["heart_rate_bpm"] = (np.nan if self.heart_rate is None
                                   else np.round(epoch_means(self.heart_rate, self.n_epochs, self.epoch_s), 1))
        table["position"] = ("" if self.body_position is None
                             else epoch_positions(self.body_position, self.n_epochs, self.epoch_s))
        if self.reference is not None:
            table["reference_stage"] = self.reference
        return pd.DataFrame(table)

    def as_events(self) -> pd.DataFrame:
        """Stage runs, respiratory events and SpO2 desaturations as (onset_s, duration_s,
        description), in seconds."""
        rows = []
        codes = self.as_int()
        change = np.flatnonzero(np.diff(codes)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, codes.size], strict=True):
            rows.append((a * self.epoch_s, (b - a) * self.epoch_s, f"Sleep stage {self.stages[a]}"))
        events = self.respiratory_events()
        for onset, duration, kind in zip(events["onset_s"], events["duration_s"], events["event"], strict=True):
            rows.append((onset, duration, kind.replace("_", " ").capitalize()))
        desaturations = self.desaturations()
        if desaturations is not None:
            rows += [(o, d, f"SpO2 desaturation {drop:.1f} %") for o, d, drop in
                     zip(desaturations["onset_s"], desaturations["duration_s"], desaturations["drop_pct"],
                         strict=True)]
        return pd.DataFrame(rows, columns=["onset_s", "duration_s", "description"]).sort_values(
            "onset_s", kind="stable").reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """Everything ``summary.json`` holds."""
        return {"source": self.source, "start": self.start.isoformat(), "epoch_s": self.epoch_s,
                "n_epochs": self.n_epochs, "statistics": self.sleep_statistics(), "respiratory": self.respiratory(),
                "cardiac": self.cardiac(), "position": self.position(),
                "agreement_with_reference": self.agreement(), "event_agreement": self.event_agreement(),
                "channels_used": self.channels_used,
                "channels_missing": self.channels_missing, "modalities_used": self.modalities_used,
                "reliability": self.reliability,
                "models": self.models, "preprocessing_hash": self.preprocessing_hash, "notes": self.notes,
                **({"event_decoding": dataclasses.asdict(self.decoding)} if self.second_proba is not None else {})}

    # --- serialisation ---
    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise everything (round-trips through :meth:`from_json`)."""
        # One level deep: ``asdict`` would copy each of a night's ≈ 120,000 numbers (0.5 s)
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["decoding"] = dataclasses.asdict(self.decoding)
        data["start"] = self.start.isoformat()
        data["stage_proba"] = None if self.stage_proba is None else np.asarray(self.stage_proba).tolist()
        data["event_proba"] = {k: np.asarray(v).tolist() for k, v in self.event_proba.items()}
        data["second_proba"] = None if self.second_proba is None else np.round(self.second_proba, 4).tolist()
        text = json.dumps(data, allow_nan=True)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> ScoringResult:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text(encoding="utf-8")
        data = json.loads(text)
        data["start"] = dt.datetime.fromisoformat(data["start"])
        if data["stage_proba"] is not None:
            data["stage_proba"] = np.asarray(data["stage_proba"], dtype=float)
        data["event_proba"] = {k: np.asarray(v, dtype=float) for k, v in data["event_proba"].items()}
        if data.get("second_proba") is not None:
            data["second_proba"] = np.asarray(data["second_proba"], dtype=float)
        for key in ("reference_events", "reference_arousals", "reference_desaturations"):
            if data.get(key) is not None:
                data[key] = [tuple(e) for e in data[key]]
        data["decoding"] = config_from_dict(EventDecoding, data.get("decoding") or {}, source="decoding")
        return cls(**data)

    # --- other tools ---
    def to_mne_annotations(self) -> Any:
        """``mne.Annotations`` of stage runs and respiratory events, with ``orig_time`` = start."""
        import mne

        events = self.as_events()
        return mne.Annotations(events["onset_s"].to_numpy(), events["duration_s"].to_numpy(),
                               events["description"].tolist(), orig_time=self.start)

    def to_yasa(self) -> Any:
        """A ``yasa.Hypnogram`` (needs YASA installed; it is not a dependency)."""
        try:
            import yasa
        except ImportError as err:
            raise ImportError("to_yasa needs YASA: pip install yasa") from err
        values = ["WAKE" if s == "W" else "REM" if s == "R" else "UNS" if s == "UNS" else s for s in self.stages]
        return yasa.Hypnogram(values, n_stages=5, freq=f"{int(self.epoch_s)}s",
                              start=self.start.replace(tzinfo=None),
                              proba=None if self.stage_proba is None else pd.DataFrame(
                                  self.stage_proba, columns=["WAKE", "N1", "N2", "N3", "REM"]))

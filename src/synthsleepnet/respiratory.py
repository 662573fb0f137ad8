"""The respiratory picture of a night: SpO2 desaturations and the clinical indices, from events.

Deterministic measures — nothing here is learned; they apply to scored events and to events a
model predicted alike. Definitions (SpO2 in %, at 1 Hz; times in seconds from the recording
start; hypnogram codes 0 W, 1 N1, 2 N2, 3 N3, 4 R, −1 unscored):

- **SpO2 artefacts** (:func:`clean_spo2`): samples outside 50–100 % (a probe off reads 0 or
  garbage) and samples reached by a step of more than 4 %/s (the saturation of arterial blood
  cannot change that fast; probe movement can) are invalid, with ``artefact_pad_s`` around them.
- **Desaturation** (:func:`find_desaturations`): on SpO2 averaged over 3 s (as oximeters
  average; the highest of a noisy trace would overstate the baseline), SpO2 at least ``drop`` %
  below its baseline, the highest valid value of the preceding ``baseline_s`` (120 s), for at
  least ``min_s`` (2 s).
  It starts at the last sample before the fall within 0.5 % of the baseline and ends when SpO2
  is back within ``drop`` % of the baseline. A baseline window less than half valid gives no baseline, so
  artefacts never create an event.
- **ODI3 / ODI4**: desaturations of ≥ 3 % / ≥ 4 % starting in sleep, per hour of sleep.
- **T90**: minutes (and % of valid sleep time) with SpO2 < 90 %; **mean / minimum SpO2** over
  valid sleep samples.
- **Hypopnea confirmation** (:func:`confirm_hypopneas`, AASM 2012 "3 % rule"): a hypopnea is
  confirmed by a ≥ 3 % desaturation that starts during it or within ``lag_s`` (30 s: the
  circulation delays the finger's SpO2) after it ends, or by an arousal starting during it or
  within 5 s after.
- **Indices** (:func:`respiratory_indices`): events count where they start, and only in sleep;
  AHI = (apneas + hypopneas) / TST hours, also in REM and NREM sleep; with SpO2 also by the
  AASM hypopnea rules, AHI_3pct (≥ 3 % desaturation or arousal) and AHI_4pct (≥ 4 %, the CMS
  rule and SHHS's headline AHI); AI, HI; OAI, CAI, MAI from
  typed apneas (an apnea of unspecified type counts in AI and AHI only); counts and mean / max
  duration per type; severity bands < 5, 5–15, 15–30, ≥ 30 /h. Without sleep staging (every
  epoch unscored: no stage model ran) there is no TST, so the night gets the **REI** instead, as
  home sleep apnea tests do: every event per hour of the hypnogram given (scoring gives it time
  in bed: the whole recording where lights are not marked), with the same bands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .tasks import APNEA_EVENTS, RESPIRATORY_EVENTS, STAGES

__all__ = ["HYPOPNEA_RULES", "SEVERITY", "clean_spo2", "confirm_hypopneas", "counted_by_rule", "describe_ahi",
           "describe_respiratory", "events_in_bed", "find_desaturations", "respiratory_indices", "scored_indices",
           "seconds_asleep", "seconds_in_bed", "severity_band", "spo2_measures"]

#: The AASM hypopnea rules an AHI can be counted by (:func:`counted_by_rule`): ``AHI_3pct``, ``AHI_4pct``.
HYPOPNEA_RULES = ("3pct", "4pct")
#: AHI severity bands (events per hour): AASM / ICSD-3.
SEVERITY = ((5.0, "normal"), (15.0, "mild"), (30.0, "moderate"), (float("inf"), "severe"))
_REM = STAGES.index("R")
#: Index name → the event types it counts.
_INDICES = {"AHI": RESPIRATORY_EVENTS, "AI": APNEA_EVENTS, "HI": ("hypopnea",), "OAI": ("apnea_obstructive",),
            "CAI": ("apnea_central",), "MAI": ("apnea_mixed",)}


def severity_band(ahi: float) -> str:
    """``normal`` (< 5), ``mild`` (5–15), ``moderate`` (15–30), ``severe`` (≥ 30) or ``unknown``."""
    if ahi != ahi:
        return "unknown"
    return next(name for limit, name in SEVERITY if ahi < limit)


def describe_ahi(ahi: float) -> str:
    """``AHI 12.3/h (mild)``, or ``AHI not estimated`` when there is none (no respiratory model).

    >>> describe_ahi(17.04), describe_ahi(float("nan"))
    ('AHI 17.0/h (moderate)', 'AHI not estimated')
    """
    return f"AHI {ahi:.1f}/h ({severity_band(ahi)})" if ahi == ahi else "AHI not estimated"


def describe_respiratory(indices: Mapping[str, Any]) -> str:
    """:func:`describe_ahi` of :func:`respiratory_indices`, or its REI on a night without sleep
    staging.

    >>> describe_respiratory({"AHI": float("nan"), "REI": 7.96, "staged": False})
    'REI 8.0/h (mild) over the time in bed'
    >>> describe_respiratory({"AHI": 17.2, "AHI_3pct": 14.0, "AHI_4pct": 9.06, "staged": True})
    'AHI 17.2/h (moderate); hypopneas by the 3 % / 4 % rule: 14.0 / 9.1/h'
    """
    rei = float(indices.get("REI", float("nan")))
    if indices.get("staged", True) or rei != rei:
        ahi = describe_ahi(float(indices.get("AHI", float("nan"))))
        if "AHI_4pct" not in indices or indices["AHI_4pct"] != indices["AHI_4pct"]:
            return ahi
        return f"{ahi}; hypopneas by the 3 % / 4 % rule: {indices['AHI_3pct']:.1f} / {indices['AHI_4pct']:.1f}/h"
    return f"REI {rei:.1f}/h ({severity_band(rei)}) over the time in bed"


def _events_table(rows: Sequence[tuple[Any, ...]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(columns))


def clean_spo2(spo2: np.ndarray, *, max_step: float = 4.0, artefact_pad_s: int = 2) -> np.ndarray:
    """1-Hz SpO2 (%) with artefacts set to NaN (see the module's definitions).

    Examples
    --------
    >>> clean_spo2(np.array([97.0, 97, 0, 0, 96, 96, 96, 96, 96])).round().tolist()
    [nan, nan, nan, nan, nan, nan, nan, 96.0, 96.0]
    """
    x = np.asarray(spo2, dtype=float).copy()
    bad = ~np.isfinite(x) | (x < 50) | (x > 100)
    step = np.abs(np.diff(x, prepend=x[:1]))
    bad |= step > max_step  # the sample a jump lands on, and (below) its neighbours
    if artefact_pad_s and bad.any():
        kernel = np.ones(2 * artefact_pad_s + 1)
        bad = np.convolve(bad.astype(float), kernel, mode="same") > 0
    x[bad] = np.nan
    return x


def _baseline(x: np.ndarray, baseline_s: int) -> np.ndarray:
    """Highest valid value of the preceding ``baseline_s`` seconds (NaN when under half valid)."""
    padded = np.r_[np.full(baseline_s, np.nan), x]
    finite = np.isfinite(padded)
    # window j of the padded trace, [j, j + baseline_s), is the baseline_s seconds before sample j
    windows = np.lib.stride_tricks.sliding_window_view(np.where(finite, padded, -np.inf), baseline_s)
    peak = windows.max(axis=-1)
    counts = np.r_[0, np.cumsum(finite)]
    valid = counts[baseline_s:baseline_s + x.size] - counts[:x.size]
    return np.where(valid >= baseline_s / 2, peak[:x.size], np.nan)


def _average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples; NaN wherever the window holds a NaN."""
    if x.size < width:
        return x
    out = np.full(x.size, np.nan)
    out[width // 2:x.size - (width - 1) // 2] = np.convolve(x, np.ones(width) / width, mode="valid")
    return out


def find_desaturations(spo2: np.ndarray, drop: float = 3.0, *, baseline_s: int = 120, min_s: int = 2,
                       clean: bool = True) -> pd.DataFrame:
    """Oxygen desaturations in a 1-Hz SpO2 trace (see the module's definitions).

    Returns
    -------
    DataFrame
        ``onset_s``, ``duration_s``, ``baseline_pct``, ``nadir_pct``, ``drop_pct``, one row per
        desaturation, by onset.
    """
    x = _average(clean_spo2(spo2) if clean else np.asarray(spo2, dtype=float), 3)
    columns = ("onset_s", "duration_s", "baseline_pct", "nadir_pct", "drop_pct")
    if x.size < 2:
        return _events_table([], columns)
    base = _baseline(x, baseline_s)
    with np.errstate(invalid="ignore"):
        below = (base - x) >= drop
    edges = np.diff(np.r_[0, below.astype(int), 0])
    rows = []
    for start, stop in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True):
        if stop - start < min_s:
            continue
        level = float(base[start])
        first = max(0, start - baseline_s)
        at_base = np.flatnonzero(x[first:start] >= level - 0.5)  # the last sample still at the baseline
        onset = first + int(at_base[-1]) if at_base.size else start
        nadir = float(np.nanmin(x[start:stop]))
        rows.append((float(onset), float(stop - onset), level, nadir, level - nadir))
    return _events_table(rows, columns)


def _stage_at(times_s: np.ndarray, codes: np.ndarray, epoch_s: float) -> np.ndarray:
    """The stage code of the epoch holding each time (the last epoch's beyond the hypnogram)."""
    epoch = np.minimum((np.asarray(times_s, dtype=float) // epoch_s).astype(int), codes.size - 1)
    return codes[epoch]


def seconds_in_bed(bed: slice, n_seconds: int, epoch_s: float) -> np.ndarray:
    """Per second from the recording start: whether it lies in the epochs ``bed``
    (:func:`synthsleepnet.stats.in_bed`), for the measures of 1-Hz traces (SpO2, heart rate)."""
    epoch = np.arange(n_seconds) // epoch_s
    return (epoch >= bed.start) & (epoch < bed.stop)


def seconds_asleep(stages: np.ndarray | None, n_seconds: int, epoch_s: float) -> np.ndarray:
    """Per second from the recording start: whether its epoch is scored as sleep (everything,
    without a hypnogram), for the measures of 1-Hz traces (SpO2, body position)."""
    if stages is None:
        return np.ones(n_seconds, dtype=bool)
    return _stage_at(np.arange(n_seconds), np.asarray(stages), epoch_s) > 0


def spo2_measures(spo2: np.ndarray, stages: np.ndarray | None = None, epoch_s: float = 30.0, *,
                  in_bed: slice | None = None) -> dict[str, Any]:
    """ODI3, ODI4, T90 (min, % of valid sleep), mean and minimum SpO2, valid sleep hours.

    Over sleep when a hypnogram is given, else over the whole recording; NaN when no valid
    SpO2 sample falls in sleep. ``in_bed`` (epochs, lights off to on) bounds what is counted,
    while the desaturations are found over the whole trace, so one in the first minutes after
    lights off is measured from the baseline before it.
    """
    x = clean_spo2(spo2)
    sleep = seconds_asleep(stages, x.size, epoch_s)
    if in_bed is not None:
        sleep &= seconds_in_bed(in_bed, x.size, epoch_s)
    valid = sleep & np.isfinite(x)
    hours = float(valid.sum()) / 3600
    out: dict[str, Any] = {"spo2_valid_sleep_h": hours}
    for drop in (3, 4):
        table = find_desaturations(x, drop, clean=False)
        starts = table["onset_s"].astype(int).to_numpy()
        n = int(np.sum(sleep[np.minimum(starts, x.size - 1)])) if len(table) else 0
        out[f"ODI{drop}"] = n / hours if hours else float("nan")
        out[f"n_desaturations_{drop}"] = n
    under = valid & (x < 90)
    out["T90_min"] = float(under.sum()) / 60 if hours else float("nan")
    out["T90_pct"] = 100 * float(under.sum()) / float(valid.sum()) if hours else float("nan")
    out["spo2_mean"] = float(np.mean(x[valid])) if hours else float("nan")
    out["spo2_min"] = float(np.min(x[valid])) if hours else float("nan")
    return out


def confirm_hypopneas(events: pd.DataFrame, desaturations: pd.DataFrame | None,
                      arousals: pd.DataFrame | None = None, *, lag_s: float = 30.0,
                      arousal_lag_s: float = 5.0) -> pd.DataFrame:
    """``events`` with ``desaturation_pct`` (the largest ≥ 3 % desaturation linked to each event,
    NaN if none) and ``confirmed_by`` for hypopneas (``desaturation``, ``arousal`` or ``""``).

    Without SpO2 (``desaturations`` None) ``desaturation_pct`` is NaN and only arousals confirm.
    """
    out = events.copy()
    drops = np.full(len(out), np.nan)
    confirmed = [""] * len(out)
    for i, (onset, duration, kind) in enumerate(zip(out["onset_s"], out["duration_s"], out["event"], strict=True)):
        end = onset + duration
        if desaturations is not None and len(desaturations):
            d = desaturations[(desaturations["onset_s"] >= onset) & (desaturations["onset_s"] <= end + lag_s)]
            if len(d):
                drops[i] = float(d["drop_pct"].max())
        if kind != "hypopnea":
            continue
        if drops[i] >= 3.0:
            confirmed[i] = "desaturation"
        elif arousals is not None and len(arousals) and bool(
                ((arousals["onset_s"] >= onset) & (arousals["onset_s"] <= end + arousal_lag_s)).any()):
            confirmed[i] = "arousal"
    out["desaturation_pct"] = drops
    out["confirmed_by"] = confirmed
    return out


def counted_by_rule(events: pd.DataFrame, rule: str) -> pd.Series:
    """Which of ``events`` (with :func:`confirm_hypopneas`' columns) an AHI by an AASM hypopnea
    ``rule`` of :data:`HYPOPNEA_RULES` counts: every apnea, and the hypopneas with a ≥ 3 %
    desaturation or an arousal (``3pct``, rule 1A) or with a ≥ 4 % desaturation (``4pct``, rule 1B)."""
    apnea = events["event"] != "hypopnea"
    if rule == "3pct":
        return apnea | (events["confirmed_by"] != "")
    return apnea | (events["desaturation_pct"] >= 4.0)


@dataclasses.dataclass(frozen=True)
class _SleepTime:
    total_h: float
    rem_h: float
    nrem_h: float


def _sleep_time(stages: np.ndarray, epoch_s: float) -> _SleepTime:
    codes = np.asarray(stages)
    hours = epoch_s / 3600
    rem = float(np.count_nonzero(codes == _REM)) * hours
    nrem = float(np.count_nonzero((codes > 0) & (codes != _REM))) * hours
    return _SleepTime(rem + nrem, rem, nrem)


def respiratory_indices(events: pd.DataFrame, stages: np.ndarray, epoch_s: float = 30.0, *,
                        desaturations_measured: bool = False) -> dict[str, Any]:
    """The respiratory indices of a night from its events and hypnogram (see the definitions).

    Parameters
    ----------
    events : DataFrame
        ``onset_s``, ``duration_s``, ``event`` (types of :data:`~synthsleepnet.tasks.EVENT_TYPES`;
        other types are ignored).
    stages : array of int
        The hypnogram, one code per epoch from the recording start.
    epoch_s : float
        Epoch length of the hypnogram.
    desaturations_measured : bool
        The events carry :func:`confirm_hypopneas`' columns, measured on the night's SpO2: then
        also ``AHI_3pct`` (AASM rule 1A: hypopneas confirmed by a ≥ 3 % desaturation or an
        arousal; NSRR's ``ahi_a0h3a``) and ``AHI_4pct`` (rule 1B, the CMS rule: hypopneas with a
        ≥ 4 % desaturation; NSRR's ``ahi_a0h4``, SHHS's headline AHI). Apneas count in both
        without a desaturation; ``AHI`` counts every hypopnea.

    Examples
    --------
    >>> ev = pd.DataFrame({"onset_s": [35.0, 400.0, 1000.0], "duration_s": [20.0, 15.0, 30.0],
    ...                    "event": ["apnea_obstructive", "apnea_obstructive", "hypopnea"]})
    >>> ix = respiratory_indices(ev, np.r_[np.zeros(2), np.full(118, 2)])  # 59 min of N2
    >>> round(ix["AHI"], 2), ix["n_events"], ix["counts"]["hypopnea"], ix["severity"]
    (2.03, 2, 1, 'normal')
    """
    codes = np.asarray(stages).astype(int)
    if codes.size == 0:
        raise ValueError("the hypnogram holds no epochs: respiratory indices need sleep stages")
    time = _sleep_time(codes, epoch_s)
    resp = events[events["event"].isin(RESPIRATORY_EVENTS)]
    stage_at = _stage_at(resp["onset_s"].to_numpy(), codes, epoch_s)
    in_sleep = resp[stage_at > 0]
    rem = (stage_at[stage_at > 0] == _REM)

    def rate(n: int, hours: float) -> float:
        return n / hours if hours > 0 else float("nan")

    out: dict[str, Any] = {name: rate(int(in_sleep["event"].isin(kinds).sum()), time.total_h)
                           for name, kinds in _INDICES.items()}
    if desaturations_measured:
        for rule in HYPOPNEA_RULES:
            out[f"AHI_{rule}"] = rate(int(counted_by_rule(in_sleep, rule).sum()), time.total_h)
    out["AHI_REM"] = rate(int(rem.sum()), time.rem_h)
    out["AHI_NREM"] = rate(int((~rem).sum()), time.nrem_h)
    staged = bool((codes >= 0).any())
    counted = in_sleep if staged else resp  # without staging, every event of the recording (the REI's)
    out["staged"] = staged
    out["REI"] = float("nan") if staged else rate(len(resp), codes.size * epoch_s / 3600)
    out["severity"] = severity_band(out["AHI"] if staged else out["REI"])
    out["n_events"] = len(counted)
    out["tst_hours"], out["rem_hours"], out["nrem_hours"] = time.total_h, time.rem_h, time.nrem_h
    out["counts"] = {k: int((counted["event"] == k).sum()) for k in RESPIRATORY_EVENTS}
    durations = {k: counted.loc[counted["event"] == k, "duration_s"] for k in RESPIRATORY_EVENTS}
    out["mean_duration_s"] = {k: float(d.mean()) if len(d) else float("nan") for k, d in durations.items()}
    out["max_duration_s"] = {k: float(d.max()) if len(d) else float("nan") for k, d in durations.items()}
    if out["counts"]["apnea"]:
        out["note"] = (f"{out['counts']['apnea']} apnea(s) of unspecified type count in AHI and AI, "
                       "not in OAI, CAI or MAI")
    return out


def events_in_bed(events: pd.DataFrame, bed: slice, epoch_s: float) -> pd.DataFrame:
    """The events starting in the epochs ``bed`` (time in bed, :func:`synthsleepnet.stats.in_bed`),
    timed from its first epoch, as the hypnogram cut to ``bed`` is."""
    first_s, stop_s = bed.start * epoch_s, bed.stop * epoch_s
    inside = events[(events["onset_s"] >= first_s) & (events["onset_s"] < stop_s)].copy()
    inside["onset_s"] -= first_s
    return inside


def scored_indices(events: pd.DataFrame, stages: np.ndarray, epoch_s: float = 30.0, *, bed: slice | None = None,
                   desaturations: pd.DataFrame | None = None) -> dict[str, Any]:
    """The respiratory indices of a scoring's own events (:func:`respiratory_indices`) over the
    epochs ``bed`` (all without): its hypopneas are confirmed by its own arousals and, where
    the scoring states their depth (``desaturations``: ``onset_s``, ``duration_s``, ``drop_pct``;
    NSRR XML does), its own desaturations, which gives the AHI by the AASM 3 % and 4 % rules
    and the scorer's ODI3 and ODI4 as well; where it marks arousals, the arousal index ``ArI``
    (arousals starting in sleep per hour of sleep).

    Examples
    --------
    One hour of N2: a hypopnea followed by a 4.5 % fall, one ending in an arousal, one with neither.

    >>> ev = pd.DataFrame({"onset_s": [100.0, 400.0, 422.0, 700.0], "duration_s": [20.0, 20.0, 5.0, 20.0],
    ...                    "event": ["hypopnea", "hypopnea", "arousal", "hypopnea"]})
    >>> drops = pd.DataFrame({"onset_s": [125.0], "duration_s": [30.0], "drop_pct": [4.5]})
    >>> ix = scored_indices(ev, np.full(120, 2), desaturations=drops)
    >>> ix["AHI"], ix["AHI_3pct"], ix["AHI_4pct"], ix["ODI4"], ix["ArI"]
    (3.0, 2.0, 1.0, 1.0, 1.0)
    """
    codes = np.asarray(stages)
    bed = bed or slice(0, codes.size)
    respiratory = events[events["event"].isin(RESPIRATORY_EVENTS)]
    confirmed = confirm_hypopneas(respiratory, desaturations, events[events["event"] == "arousal"])
    out = respiratory_indices(events_in_bed(confirmed, bed, epoch_s), codes[bed], epoch_s,
                              desaturations_measured=desaturations is not None)

    def per_hour_of_sleep(n: int) -> float:
        return n / out["tst_hours"] if out["tst_hours"] else float("nan")

    if desaturations is not None:  # the scorer's own ODIs: desaturations starting in sleep per hour of it
        drops = _in_sleep(desaturations, codes, bed, epoch_s)["drop_pct"].to_numpy(dtype=float)
        for drop in (3, 4):
            out[f"ODI{drop}"] = per_hour_of_sleep(int(np.count_nonzero(drops >= drop)))
    arousals = events[events["event"] == "arousal"]
    if len(arousals):  # a scoring that marks none did not score them
        out["ArI"] = per_hour_of_sleep(len(_in_sleep(arousals, codes, bed, epoch_s)))
    return out


def _in_sleep(table: pd.DataFrame, codes: np.ndarray, bed: slice, epoch_s: float) -> pd.DataFrame:
    """The rows of ``table`` (``onset_s``, ...) starting in a sleep epoch of ``bed``."""
    inside = events_in_bed(table, bed, epoch_s)
    return inside[_stage_at(inside["onset_s"].to_numpy(), codes[bed], epoch_s) > 0]

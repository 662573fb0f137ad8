"""Heart rate from the ECG: R peaks, a 1-Hz heart-rate trace and the cardiac measures of a
sleep report (AASM: average and highest heart rate during sleep, highest during the recording).

Definitions
-----------
- R peaks: the ECG band-passed to 5–20 Hz (the QRS complex; P and T waves and baseline wander
  fall outside), its squared slope summed over 100 ms (polarity plays no part: a reversed lead
  gives the same beats), peaks above 30 % of the 99th percentile of their 10-s block, at least
  0.25 s apart (no heart beats faster than 240 bpm), each placed at the largest deflection of
  the band-passed ECG within 60 ms (between samples: the vertex of a parabola); none in a
  block whose level strays :data:`BLOCK_LEVEL_RATIO` times from that of the five minutes around
  it (a movement, an electrode off), nor in a 2-s window that spends more than
  :data:`MAX_QRS_SHARE` of its time above 30 % of that level (muscle or movement noise: no
  heart's QRS complexes fill so much). Then a search back, as Pan and Tompkins's: in an interval
  over :data:`SEARCH_BACK_GAP` times the median of the nine around it, the strongest weaker
  peak, down to :data:`SEARCH_BACK_LEVEL` of its block's level and at least half that median
  from both ends (a T wave lies closer), is a beat too: a normal beat beside far larger
  ectopic ones, or in a block whose level an artefact set, stays below 30 % of it.
- Heart rate: 60 / RR for each interval between consecutive beats that a heart can produce
  (:data:`RR_RANGE_S`, 30–200 bpm) and that differs by at most :data:`RR_MAX_DEVIATION` from
  the median of the nine intervals around it (a missed beat doubles an interval, an artefact
  taken for a beat halves it), and that neither ends nor starts at an ectopic beat; at 1 Hz by
  linear interpolation between the valid intervals' midpoints, NaN where none lies within
  :data:`MAX_GAP_S`.
- Ectopic beats, by Lipponen and Tarvainen's (2019) criteria (Kubios HRV's): each successive
  difference of the intervals (dRR) is scaled by :data:`ECTOPIC_SCALE` quartile deviations of
  the differences' sizes over the :data:`ECTOPIC_WINDOW` intervals around it (never below
  :data:`ECTOPIC_FLOOR_S`). A beat is ectopic where the scaled difference between the intervals
  before and after it exceeds 1 in size and both neighbouring differences go the other way by
  more than :data:`ECTOPIC_C1` times its size plus :data:`ECTOPIC_C2` (an early beat and its
  compensatory pause: short, long, short; or a late beat); a premature beat less than 30 %
  early passes the median rule, but not this. An interval whose difference exceeds 1 and that
  strays from the median of the nine around it (a shortening counted double) by more than
  :data:`ECTOPIC_OUTLIER` times its own scaled spread is abnormal too (an early beat whose
  rhythm resets, with no pause).
- Measures: mean, lowest and highest heart rate in sleep (epochs scored N1, N2, N3 or R within
  time in bed), the highest in the recording, the mean in wake in bed, NREM and R, the minutes of
  sleep whose 30-s epochs average above 90 bpm or below 40 bpm (the AASM's thresholds for sustained
  sinus tachycardia during sleep and for bradycardia: a flag for review, not a rhythm diagnosis),
  and the share of sleep with a heart rate (the rest is artefact, or no ECG).
- Heart-rate variability (time domain, as the Task Force of 1996 defines it for short-term
  recordings): each stretch of consecutive epochs in bed of one kind — wake, NREM (N1–N3) or R
  — is cut into 5-minute segments from its start (what is left under 5 minutes is not used, as
  YASA's ``hrv_stage`` with ``equal_length=True`` does); a segment is measured when its
  normal-to-normal (NN) intervals — the intervals the heart rate uses — span at least
  :data:`MIN_NN_COVERAGE` of it. In each, SDNN is the standard deviation of its NN intervals and
  RMSSD the root mean square of the differences between successive NN intervals (two intervals
  sharing a beat, both normal); each measure of a kind is the mean over its segments (so a
  night's SDNN is not inflated by the heart rate's drift between stages).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .metrics import events_from_flags
from .respiratory import seconds_in_bed
from .tasks import STAGES

if TYPE_CHECKING:
    from .io.channels import ChannelTable
    from .io.recording import Recording

__all__ = ["cardiac_measures", "describe_cardiac", "detect_r_peaks", "epoch_means", "heart_rate", "hrv_measures",
           "hrv_segments", "intervals_within", "normal_intervals", "recording_beats", "segment_hrv"]

#: Beat-to-beat intervals a heart produces (30–200 bpm) ...
RR_RANGE_S = (0.3, 2.0)
#: ... and how far (a fraction) an interval may stray from the median of its neighbours.
RR_MAX_DEVIATION = 0.3
#: The longest stretch (s) without a valid interval that the 1-Hz heart rate bridges.
MAX_GAP_S = 3.0
#: A 10-s block whose QRS energy is this many times above (or below) that of the 5 minutes
#: around it is artefact (a movement, an electrode off): its peaks are no beats.
BLOCK_LEVEL_RATIO = 10.0
#: The most of a 2-s window a heart's QRS complexes fill (a third at 200 bpm); more is noise.
MAX_QRS_SHARE = 0.4
#: Heart rates whose epochs of sleep are counted: above the AASM's sustained sinus tachycardia
#: during sleep (adults), below its bradycardia (from 6 years of age).
TACHYCARDIA_BPM, BRADYCARDIA_BPM = 90.0, 40.0
#: Where an interval between beats is this many times the median of the nine around it, a beat
#: weaker than the primary threshold is searched for in it (a normal beat beside large ectopic
#: ones, or in a block whose 99th percentile an artefact set) ...
SEARCH_BACK_GAP = 1.3
#: ... down to this share of its block's level (the primary threshold is 0.3).
SEARCH_BACK_LEVEL = 0.1
#: Ectopic beats (Lipponen & Tarvainen 2019): successive differences are scaled by this many
#: quartile deviations of their sizes ...
ECTOPIC_SCALE = 5.2
#: ... over this many intervals around each (their quartiles taken every 8 intervals) ...
ECTOPIC_WINDOW = 91
#: ... and never by less than this (s; a 100-Hz ECG alone times its beats to ± 5 ms).
ECTOPIC_FLOOR_S = 0.02
#: A scaled difference > 1 marks an ectopic beat where both neighbouring ones go the other way
#: by more than C1 times it plus C2 ...
ECTOPIC_C1, ECTOPIC_C2 = 0.13, 0.17
#: ... and an interval strays where it lies this many scaled spreads from its neighbours' median.
ECTOPIC_OUTLIER = 3.0
#: The lowest ECG rate whose QRS complex (5–20 Hz) can be found.
MIN_ECG_SFREQ = 50.0
#: The heart-rate variability's segments (s): the Task Force's short-term recordings.
HRV_SEGMENT_S = 300.0
#: The least share of a segment its normal intervals must span for its variability to count.
MIN_NN_COVERAGE = 0.8
_R = STAGES.index("R")
#: The kinds of epoch whose variability is measured: their stage codes.
HRV_STAGES = {"W": (0,), "NREM": (1, 2, 3), "R": (_R,)}


def detect_r_peaks(ecg: np.ndarray, sfreq: float, *, chunk_s: float = 3600.0) -> np.ndarray:
    """R-peak times in seconds (see the module's definitions).

    The ECG is searched ``chunk_s`` seconds at a time, each with three minutes around it, so that
    memory does not grow with the night (a 512-Hz night at once took 0.6 GB more); the chunks
    start on 10-s blocks and see the same neighbourhood, so the beats are those of one pass.

    Raises
    ------
    ValueError
        If ``sfreq`` is below :data:`MIN_ECG_SFREQ`.
    """
    if sfreq < MIN_ECG_SFREQ:
        raise ValueError(f"an ECG sampled at {sfreq:g} Hz cannot show its QRS complexes (at least "
                         f"{MIN_ECG_SFREQ:g} Hz is needed)")
    ecg = np.asarray(ecg)
    block = int(10 * sfreq)
    step, margin = block * max(int(chunk_s // 10), 1), block * 18
    found = []
    for start in range(0, max(ecg.size, 1), step):
        first = max(start - margin, 0)
        peaks = _peaks_in(ecg[first:start + step + margin], sfreq) + first / sfreq
        found.append(peaks[(peaks >= start / sfreq) & (peaks < (start + step) / sfreq)])
    return np.concatenate(found)


def recording_beats(recording: Recording, channel_table: ChannelTable, notes: list[str]
                    ) -> tuple[np.ndarray, float] | None:
    """The R peaks (s from the recording start) of the recording's first usable ECG, and that
    ECG's length (s); None without one. Why each ECG could not be used is appended to ``notes``."""
    from .io.channels import map_channels
    from .preprocessing.pipeline import channel_data

    for channel in map_channels(recording.labels, channel_table).channels:
        if channel.modality == "ecg":
            try:
                data, sfreq, _, _ = channel_data(recording, channel)
                return detect_r_peaks(data, sfreq), data.size / sfreq
            except ValueError as err:  # unreadable samples, an unusable channel, too slow a rate
                notes.append(f"no heart rate from {channel.name}: {str(err).removeprefix(f'{recording.path}: ')}")
    return None


def _peaks_in(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    """R-peak times (s) in a stretch of ECG, by the module's definitions."""
    from scipy.ndimage import median_filter, uniform_filter1d
    from scipy.signal import find_peaks

    from .preprocessing.signal import bandpass

    qrs = bandpass(np.nan_to_num(np.asarray(ecg, dtype=np.float64)), sfreq, (5.0, 20.0), order=2)
    energy = uniform_filter1d(np.diff(qrs, prepend=qrs[0]) ** 2, max(int(round(0.1 * sfreq)), 1))
    block = int(10 * sfreq)
    n_blocks = max(energy.size // block, 1)
    levels = np.percentile(energy[:n_blocks * block].reshape(n_blocks, -1), 99, axis=1)
    typical = median_filter(levels, size=31, mode="nearest")
    usable = (levels > typical / BLOCK_LEVEL_RATIO) & (levels < typical * BLOCK_LEVEL_RATIO)
    grid = energy[:n_blocks * block].reshape(n_blocks, -1)
    window = max(grid.shape[1] // 5, 1)  # five 2-s windows to a block
    busy = (grid[:, :5 * window].reshape(n_blocks, -1, window) > 0.3 * typical[:, None, None]).mean(axis=2) \
        > MAX_QRS_SHARE
    candidates, _ = find_peaks(energy, height=SEARCH_BACK_LEVEL * levels.min(), distance=max(int(0.25 * sfreq), 1))
    in_block = np.minimum(candidates // block, n_blocks - 1)
    in_window = np.minimum((candidates - in_block * block) // window, busy.shape[1] - 1)
    clean = usable[in_block] & ~busy[in_block, in_window]
    primary = energy[candidates] >= 0.3 * levels[in_block]
    weaker = ~primary & (energy[candidates] >= SEARCH_BACK_LEVEL * levels[in_block])
    candidates = _search_back(candidates[clean & primary], candidates[clean & weaker], energy)
    reach = int(round(0.06 * sfreq))
    around = np.clip(candidates[:, None] + np.arange(-reach, reach + 1), 0, qrs.size - 1)
    peaks = np.unique(around[np.arange(candidates.size), np.argmax(np.abs(qrs[around]), axis=1)])
    return (peaks + _vertex(np.abs(qrs), peaks)) / sfreq


def _search_back(beats: np.ndarray, weaker: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """``beats`` (samples) with the beats the primary threshold missed: in each interval over
    :data:`SEARCH_BACK_GAP` times the median of the nine around it (the typical one), the
    strongest of the ``weaker`` peaks at least half of that from both ends (T waves lie closer);
    again while one is found (up to ten times), as an interval may have missed several. Not the
    hour's median interval where it is shorter: in ten minutes of bradycardia every interval
    would be searched, and noise taken for beats."""
    for _ in range(10):
        if beats.size < 3 or weaker.size == 0:
            break
        rr = np.diff(beats)
        typical = _median_of_nine(rr.astype(float))
        found = []
        for i in np.flatnonzero(rr > SEARCH_BACK_GAP * typical):
            margin = typical[i] / 2
            inside = weaker[np.searchsorted(weaker, beats[i] + margin):np.searchsorted(weaker, beats[i + 1] - margin,
                                                                                      side="right")]
            if inside.size:
                found.append(inside[np.argmax(energy[inside])])
        if not found:
            break
        beats = np.sort(np.r_[beats, found])
    return beats


def _median_of_nine(x: np.ndarray) -> np.ndarray:
    """Each value's median of the nine centred on it, the first and last repeated at the ends
    (SciPy's ``median_filter(size=9, mode="nearest")``, in NumPy)."""
    return np.median(np.lib.stride_tricks.sliding_window_view(np.pad(x, 4, mode="edge"), 9), axis=1)


def _vertex(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Where between samples each peak of ``x`` lies (−0.5 to 0.5): the vertex of the parabola
    through it and its neighbours, so that a 100-Hz ECG times its beats to a millisecond or two."""
    left, mid, right = (x[np.clip(peaks + k, 0, x.size - 1)] for k in (-1, 0, 1))
    curvature = left - 2 * mid + right
    safe = np.where(curvature < 0, curvature, -1.0)
    return np.where(curvature < 0, np.clip(0.5 * (left - right) / safe, -0.5, 0.5), 0.0)


def heart_rate(r_peaks_s: np.ndarray, duration_s: float) -> np.ndarray:
    """Heart rate (bpm) at 1 Hz over ``duration_s`` seconds from R-peak times (NaN where unknown)."""
    seconds = np.arange(int(duration_s)) + 0.5
    rr, valid = normal_intervals(r_peaks_s)
    if not valid.any():
        return np.full(seconds.size, np.nan)
    mids = (np.asarray(r_peaks_s)[1:] - rr / 2)[valid]
    rate = np.interp(seconds, mids, 60.0 / rr[valid])
    after = np.clip(np.searchsorted(mids, seconds), 0, mids.size - 1)
    before = np.clip(after - 1, 0, mids.size - 1)
    nearest = np.minimum(np.abs(seconds - mids[before]), np.abs(seconds - mids[after]))
    rate[nearest > MAX_GAP_S] = np.nan
    return rate


def normal_intervals(r_peaks_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The intervals (s) between successive R peaks, and which of them are normal (NN): within
    :data:`RR_RANGE_S`, within :data:`RR_MAX_DEVIATION` of the median of the nine around them,
    and not beside an ectopic beat (see the module's definitions)."""
    rr = np.diff(np.asarray(r_peaks_s, dtype=float))
    if rr.size < 2:
        return rr, np.zeros(rr.size, dtype=bool)
    typical = _median_of_nine(rr)  # NumPy: the scoring process exports the variability without SciPy
    plausible = (rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1]) & (np.abs(rr - typical) <= RR_MAX_DEVIATION * typical)
    return rr, plausible & ~_beside_ectopic_beats(rr, typical)


def _beside_ectopic_beats(rr: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """Which intervals end or start at an ectopic beat, or stray from the rhythm (Lipponen and
    Tarvainen's criteria, as the module's definitions give them; ``typical``: the median of the
    nine intervals around each). Their classes of missed and extra beats are left to the median
    rule, which removes those intervals whatever they are called; their classes of short and
    long intervals (a step one way, then the other within the next two) are not used: they take
    a sinus arrhythmia locked to breathing, four beats a breath as the heart can be in NREM
    sleep, for ectopy (18–26 % of its intervals)."""
    step = np.diff(rr, prepend=rr[0])  # step[i]: from interval i - 1 into interval i
    scaled = step / _scaled_spread(step)
    before, after = np.r_[scaled[0], scaled[:-1]], np.r_[scaled[1:], scaled[-1]]
    early = (scaled > 1) & (np.maximum(before, after) < -ECTOPIC_C1 * scaled - ECTOPIC_C2)  # short, long, short
    late = (scaled < -1) & (np.minimum(before, after) > -ECTOPIC_C1 * scaled + ECTOPIC_C2)  # long, short, long
    ectopic = early | late  # the beat between intervals i - 1 and i
    deviation = np.where(rr < typical, 2.0, 1.0) * (rr - typical)
    strays = (np.abs(scaled) > 1) & (np.abs(deviation) > ECTOPIC_OUTLIER * _scaled_spread(deviation))
    return ectopic | np.r_[ectopic[1:], False] | strays


def _scaled_spread(x: np.ndarray, step: int = 8) -> np.ndarray:
    """:data:`ECTOPIC_SCALE` quartile deviations of ``|x|`` over the :data:`ECTOPIC_WINDOW` values
    around each (the ends repeated), at least :data:`ECTOPIC_FLOOR_S`; taken every ``step``
    values, which costs an eighth (20 ms for a night's 30,000 intervals, not 0.15 s)."""
    half = ECTOPIC_WINDOW // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(np.abs(x), half, mode="edge"), ECTOPIC_WINDOW)
    q1, q3 = np.percentile(windows[min(step // 2, x.size - 1)::step], [25, 75], axis=1)
    spread = np.repeat(ECTOPIC_SCALE * (q3 - q1) / 2, step)[:x.size]  # each value: the nearest centre's
    return np.maximum(np.pad(spread, (0, x.size - spread.size), mode="edge"), ECTOPIC_FLOOR_S)


def intervals_within(beats: np.ndarray, start_s: float, end_s: float) -> slice:
    """The intervals (indices into :func:`normal_intervals`' arrays) between successive beats that
    both lie in [``start_s``, ``end_s``)."""
    first, last = np.searchsorted(beats, (start_s, end_s))
    return slice(int(first), int(max(last - 1, first)))


def segment_hrv(rr: np.ndarray, normal: np.ndarray, span_s: float) -> tuple[float, float]:
    """SDNN and RMSSD (ms) of one segment's successive intervals (NaN, NaN when its normal
    intervals span less than :data:`MIN_NN_COVERAGE` of ``span_s``)."""
    nn = rr[normal]
    if nn.size < 3 or nn.sum() < MIN_NN_COVERAGE * span_s:
        return float("nan"), float("nan")
    successive = np.diff(rr)[normal[1:] & normal[:-1]]
    rmssd = float(np.sqrt(np.mean(successive ** 2))) if successive.size else float("nan")
    return 1000 * float(np.std(nn, ddof=1)), 1000 * rmssd


def hrv_segments(r_peaks_s: np.ndarray, stages: np.ndarray, epoch_s: float = 30.0, *,
                 in_bed: slice | None = None) -> pd.DataFrame:
    """One row per 5-minute segment of one kind (wake, NREM or R) in bed (see the module's
    definitions): ``onset_s``, ``kind``, ``stages`` (e.g. ``N2+N3``), ``intervals`` (its normal
    ones), ``nn_coverage_pct`` (the share of the segment they span), ``HR_mean_bpm`` (60 / their
    mean), ``SDNN_ms`` and ``RMSSD_ms`` (NaN where they span less than :data:`MIN_NN_COVERAGE`)."""
    beats = np.asarray(r_peaks_s, dtype=float)
    rr, normal = normal_intervals(beats)
    codes = np.asarray(stages, dtype=int)
    rows = []
    for kind, epochs in _segments_of_one_kind(codes, in_bed or slice(0, codes.size), HRV_SEGMENT_S / epoch_s):
        start, end = epochs.start * epoch_s, epochs.stop * epoch_s
        intervals = intervals_within(beats, start, end)
        nn = rr[intervals][normal[intervals]]
        sdnn, rmssd = segment_hrv(rr[intervals], normal[intervals], end - start)
        rows.append({"onset_s": start, "kind": kind, "stages": "+".join(STAGES[c] for c in np.unique(codes[epochs])),
                     "intervals": nn.size, "nn_coverage_pct": 100 * float(nn.sum()) / (end - start),
                     "HR_mean_bpm": 60 / float(nn.mean()) if nn.size else float("nan"),
                     "SDNN_ms": sdnn, "RMSSD_ms": rmssd})
    return pd.DataFrame(rows, columns=["onset_s", "kind", "stages", "intervals", "nn_coverage_pct", "HR_mean_bpm",
                                       "SDNN_ms", "RMSSD_ms"])


def _segments_of_one_kind(codes: np.ndarray, in_bed: slice, segment_epochs: float) -> list[tuple[str, slice]]:
    """The kind and epochs of each segment, in time order: every stretch of one kind in bed, cut
    from its start."""
    bed = np.zeros(codes.size, dtype=bool)
    bed[in_bed] = True
    per_segment = max(int(round(segment_epochs)), 1)
    segments = [(kind, slice(first, first + per_segment))
                for kind, stage_codes in HRV_STAGES.items()
                for start, length in events_from_flags(bed & np.isin(codes, stage_codes), epoch_s=1.0)
                for first in range(int(start), int(start + length) - per_segment + 1, per_segment)]
    return sorted(segments, key=lambda segment: segment[1].start)


def hrv_measures(r_peaks_s: np.ndarray, stages: np.ndarray, epoch_s: float = 30.0, *,
                 in_bed: slice | None = None) -> dict[str, float]:
    """Heart-rate variability in wake, NREM and R (see the module's definitions): for each,
    ``HRV_SDNN_<kind>`` and ``HRV_RMSSD_<kind>`` in ms, the means over its segments of
    :func:`hrv_segments` that were measured (NaN without one), and ``HRV_segments_<kind>``, how
    many they are.

    Examples
    --------
    >>> beats = np.cumsum(np.tile([1.0, 1.0, 1.1, 1.1], 150))  # 10.5 minutes of N2, two by two
    >>> m = hrv_measures(beats, np.full(22, 2))
    >>> round(m["HRV_RMSSD_NREM"], 1), round(m["HRV_SDNN_NREM"], 1), m["HRV_segments_NREM"], m["HRV_segments_R"]
    (70.8, 50.1, 2.0, 0.0)

    Intervals alternating beat by beat (1.0, 1.1, 1.0, ...) would be bigeminy: every other beat
    ectopic, no normal interval and no variability.
    """
    segments = hrv_segments(r_peaks_s, stages, epoch_s, in_bed=in_bed)
    measured = segments[segments["SDNN_ms"].notna()]
    out: dict[str, float] = {}
    for kind in HRV_STAGES:
        rows = measured[measured["kind"] == kind]
        out.update({f"HRV_SDNN_{kind}": float(rows["SDNN_ms"].mean()) if len(rows) else float("nan"),
                    f"HRV_RMSSD_{kind}": float(rows["RMSSD_ms"].mean()) if len(rows) else float("nan"),
                    f"HRV_segments_{kind}": float(len(rows))})
    return out


def cardiac_measures(rate: np.ndarray, stages: np.ndarray, epoch_s: float = 30.0, *,
                     in_bed: slice | None = None) -> dict[str, float]:
    """The cardiac measures of a night (see the module's definitions).

    Parameters
    ----------
    rate : array of float
        Heart rate (bpm) at 1 Hz from the recording start (:func:`heart_rate`).
    stages : array of int
        The hypnogram, one code per epoch from the recording start (−1 unscored).
    epoch_s : float
        Epoch length of the hypnogram.
    in_bed : slice | None
        The epochs of time in bed (all without).

    Examples
    --------
    >>> rate = np.r_[np.full(60, 70.0), np.full(60, 58.0), np.full(60, 64.0)]  # W, N2, R
    >>> m = cardiac_measures(rate, np.array([0, 0, 2, 2, 4, 4]))
    >>> m["HR_mean_sleep"], m["HR_min_sleep"], m["HR_max_recording"], m["HR_mean_W"]
    (61.0, 58.0, 70.0, 70.0)
    """
    rate = np.asarray(rate, dtype=float)
    codes = np.repeat(np.asarray(stages, dtype=int), int(round(epoch_s)))
    n = min(rate.size, codes.size)
    rate, codes = rate[:n], codes[:n]
    bed = seconds_in_bed(in_bed or slice(0, len(stages)), n, epoch_s)

    def over(mask: np.ndarray, how: str = "mean") -> float:
        values = rate[mask & np.isfinite(rate)]
        return float(getattr(np, how)(values)) if values.size else float("nan")

    asleep = bed & (codes > 0)
    known = np.isfinite(rate)
    step = int(round(epoch_s))
    sleep_epochs = asleep[::step]  # each epoch's first second: the stage and bed are the epoch's
    means = epoch_means(rate, sleep_epochs.size, epoch_s)

    def sleep_minutes(sustained: np.ndarray) -> float:
        return float(np.count_nonzero(sustained & sleep_epochs) * epoch_s / 60)

    return {"HR_mean_sleep": over(asleep), "HR_min_sleep": over(asleep, "min"), "HR_max_sleep": over(asleep, "max"),
            "HR_max_recording": over(np.ones(n, dtype=bool), "max"), "HR_mean_W": over(bed & (codes == 0)),
            "HR_mean_NREM": over(asleep & (codes != _R)), "HR_mean_R": over(bed & (codes == _R)),
            "HR_over_90_sleep_min": sleep_minutes(means > TACHYCARDIA_BPM),
            "HR_under_40_sleep_min": sleep_minutes(means < BRADYCARDIA_BPM),
            "HR_known_sleep_pct": float(100 * np.count_nonzero(asleep & known) / np.count_nonzero(asleep))
            if asleep.any() else float("nan")}


def epoch_means(rate: np.ndarray | list[float], n_epochs: int, epoch_s: float = 30.0) -> np.ndarray:
    """The mean of a 1-Hz trace over each of ``n_epochs`` epochs (NaN where it holds no value:
    unknown throughout, or beyond the trace)."""
    step = int(round(epoch_s))
    values = np.full(n_epochs * step, np.nan)
    trace = np.asarray(rate, dtype=float)[:values.size]
    values[:trace.size] = trace
    known = np.isfinite(values).reshape(n_epochs, step)
    sums = np.where(known, values.reshape(n_epochs, step), 0.0).sum(axis=1)
    counts = known.sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def describe_cardiac(measures: Mapping[str, float] | None) -> str:
    """The heart rate in sleep in words, e.g. ``heart rate in sleep 63 bpm (47–87)``.

    >>> describe_cardiac({"HR_mean_sleep": 62.6, "HR_min_sleep": 47.1, "HR_max_sleep": 87.3})
    'heart rate in sleep 63 bpm (47–87)'
    """
    if measures is None:
        return "no heart rate (no usable ECG)"
    if not math.isfinite(measures["HR_mean_sleep"]):
        return "no heart rate in sleep"
    return (f"heart rate in sleep {measures['HR_mean_sleep']:.0f} bpm ({measures['HR_min_sleep']:.0f}–"
            f"{measures['HR_max_sleep']:.0f})")

"""Our R-peak detector, heart rate and heart-rate variability against NeuroKit2's, on ECGs whose
beats are known.

Run in the benchmark environment (``make bench-env``): NeuroKit2 is not a package dependency.
The simulator's ECG (its beats returned with it) for several subjects, at the rates cohorts
record (125, 256, 512 Hz), as simulated, with the lead reversed, with muscle noise, and with
movement bursts; each detector's beats are matched to the true ones (within 50 ms), and each
30-s epoch's heart rate (60 / the median interval of its beats) compared with the truth's, and
each of our 5-minute segments' RMSSD and SDNN (``cardiac.hrv_segments`` on the true hypnogram:
each stretch of wake, NREM or R cut from its start) with those of the true beats (as they lie
on the samples) by NeuroKit2's ``hrv_time``: ours from our beats and normal intervals
(``synthsleepnet.cardiac``), NeuroKit2's from ``ecg_peaks`` as it is and with its artefact
correction (``correct_artifacts=True``, Kubios), and ``hrv_time``; then each RMSSD of YASA's
``hrv_stage`` (its beats from SleepECG, on its own 5-minute periods of one stage) beside ours
and the truth's on the same periods. Prints sensitivity, positive predictive value, the epochs'
heart-rate error, the segments' RMSSD and SDNN errors, and seconds per 8 hours of ECG, side by
side in one run; and the simulated rhythms' own RMSSD and SDNN by kind of epoch. No real ECG is in ``../shared/data``: on real nights
the numbers will be lower for both.

    .venv-bench/bin/python benchmarks/heart_rate_crosscheck.py [--subjects 4] [--hours 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from synthsleepnet.cardiac import (
    HRV_SEGMENT_S,
    detect_r_peaks,
    hrv_measures,
    hrv_segments,
    intervals_within,
    normal_intervals,
    segment_hrv,
)
from synthsleepnet.simulate.architecture import SubjectProfile, simulate_hypnogram
from synthsleepnet.simulate.signals import simulate_ecg

_TOLERANCE_S = 0.05


def _neurokit(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    import neurokit2 as nk

    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=int(sfreq)), sampling_rate=int(sfreq))
    return np.asarray(info["ECG_R_Peaks"], dtype=float) / sfreq


def _ours(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    return detect_r_peaks(ecg, sfreq)


def _segments(hypnogram: np.ndarray) -> list[tuple[float, float]]:
    """Our 5-minute segments of the true hypnogram (each stretch of wake, NREM or R cut from its start)."""
    return [(onset, onset + HRV_SEGMENT_S) for onset in hrv_segments(np.empty(0), hypnogram)["onset_s"]]


def _neurokit_hrv(peaks_s: np.ndarray, sfreq: float, segment: tuple[float, float]) -> tuple[float, float]:
    import neurokit2 as nk

    inside = peaks_s[(peaks_s >= segment[0]) & (peaks_s < segment[1])]
    if inside.size < 4:
        return float("nan"), float("nan")
    table = nk.hrv_time(np.round(inside * sfreq).astype(int), sampling_rate=int(sfreq))
    return float(table["HRV_SDNN"].iloc[0]), float(table["HRV_RMSSD"].iloc[0])


def _hrv_errors(ours: np.ndarray, neurokit: dict[str, np.ndarray], truth: np.ndarray, sfreq: float,
                segments: list[tuple[float, float]]) -> dict[str, tuple[float, float, float]]:
    """Each scorer's mean absolute SDNN and RMSSD error (ms) over the segments it measured, with
    the share of segments it measured (ours leaves out those whose beats it could not trust)."""
    rr, normal = normal_intervals(ours)
    errors: dict[str, list[tuple[float, float]]] = {"ours": [], **{name: [] for name in neurokit}}
    for segment in segments:
        true = np.asarray(_neurokit_hrv(truth, sfreq, segment))
        inside = intervals_within(ours, *segment)
        ours_hrv = segment_hrv(rr[inside], normal[inside], HRV_SEGMENT_S)
        errors["ours"].append(tuple(np.abs(np.asarray(ours_hrv) - true)))
        for name, beats in neurokit.items():
            errors[name].append(tuple(np.abs(np.asarray(_neurokit_hrv(beats, sfreq, segment)) - true)))
    return {name: (*np.nanmean(values, axis=0), float(np.mean(np.isfinite(np.asarray(values)[:, 1]))))
            for name, values in errors.items()}


def _conditions(ecg: np.ndarray, sfreq: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The simulated ECG as it is, reversed, under muscle noise, and with movement bursts."""
    muscle = rng.normal(0, 120, ecg.size)  # broadband EMG at an eighth of the R wave
    moved = ecg.copy()
    for start in rng.choice(int(ecg.size / sfreq) - 20, size=int(ecg.size / sfreq / 600), replace=False):
        burst = slice(int(start * sfreq), int((start + 10) * sfreq))  # 10 s of movement every 10 minutes
        moved[burst] += rng.normal(0, 1500, moved[burst].size)
    return {"as simulated": ecg, "lead reversed": -ecg, "muscle noise": ecg + muscle, "movement": moved}


def _matches(found: np.ndarray, truth: np.ndarray) -> int:
    if not found.size:
        return 0
    after = np.clip(np.searchsorted(found, truth), 0, found.size - 1)
    before = np.clip(after - 1, 0, found.size - 1)
    return int(np.count_nonzero(np.minimum(np.abs(truth - found[before]), np.abs(truth - found[after])) <= _TOLERANCE_S))


def _epoch_rates(beats: np.ndarray, n_epochs: int) -> np.ndarray:
    rates = np.full(n_epochs, np.nan)
    rr, mids = np.diff(beats), beats[1:] - np.diff(beats) / 2
    for epoch in range(n_epochs):
        inside = rr[(mids >= epoch * 30) & (mids < (epoch + 1) * 30)]
        rates[epoch] = 60 / np.median(inside) if inside.size >= 5 else np.nan
    return rates


def _score(found: np.ndarray, seconds: float, truth: np.ndarray, n_epochs: int) -> tuple[float, float, float, float]:
    hits = _matches(found, truth)
    error = np.abs(_epoch_rates(found, n_epochs) - _epoch_rates(truth, n_epochs))
    return hits / truth.size, hits / max(found.size, 1), float(np.nanmean(error)), seconds


def _detect(detector: Callable[[np.ndarray, float], np.ndarray], ecg: np.ndarray, sfreq: float) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    found = np.sort(detector(ecg, sfreq))
    return found, time.perf_counter() - began


def _neurokit_corrected(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    import neurokit2 as nk

    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=int(sfreq)), sampling_rate=int(sfreq),
                           correct_artifacts=True)
    return np.sort(np.asarray(info["ECG_R_Peaks"], dtype=float)) / sfreq


def _yasa_rmssd_errors(ours: np.ndarray, ecg: np.ndarray, sfreq: float, truth: np.ndarray,
                       hypnogram: np.ndarray) -> tuple[float, float, float, float]:
    """YASA's ``hrv_stage`` RMSSD on its 5-minute periods of one stage, and ours on the same
    periods: each one's mean absolute error against the true beats' and share of periods measured."""
    import yasa

    periods, _ = yasa.hrv_stage(ecg, sfreq, hypno=np.repeat(hypnogram, int(30 * sfreq))[:ecg.size],
                                include=(0, 1, 2, 3, 4), threshold="5min", equal_length=True)
    rr, normal = normal_intervals(ours)
    errors: dict[str, list[float]] = {"ours": [], "YASA": []}
    for start, duration, theirs in zip(periods["start"], periods["duration"], periods["hrv_rmssd"], strict=True):
        segment = (float(start), float(start + duration))
        true = _neurokit_hrv(truth, sfreq, segment)[1]
        inside = intervals_within(ours, *segment)
        mine = segment_hrv(rr[inside], normal[inside], float(duration))[1]
        errors["ours"].append(abs(mine - true))
        errors["YASA"].append(abs(float(theirs) - true))
    values = {name: np.asarray(found) for name, found in errors.items()}
    return (float(np.nanmean(values["ours"])), float(np.mean(np.isfinite(values["ours"]))),
            float(np.nanmean(values["YASA"])), float(np.mean(np.isfinite(values["YASA"]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    detectors = {"ours": _ours, "NeuroKit2": _neurokit}
    print(f"{'rate':>6} {'condition':<14} " + " ".join(f"{name + ' ' + col:>17}" for name in detectors
                                                      for col in ("sens", "PPV", "HR err", "s/8h")))
    totals: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in detectors}
    hrv: dict[tuple[float, str], dict[str, list[tuple[float, float, float]]]] = {}
    yasa_rows: dict[tuple[float, str], list[tuple[float, float, float, float]]] = {}
    rhythms: list[dict[str, float]] = []  # the true beats' variability, each subject's
    for sfreq in (125.0, 256.0, 512.0):
        rows: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {}
        for subject in range(args.subjects):
            rng = np.random.default_rng(100 + subject)
            profile = SubjectProfile.random(rng, ahi=float(rng.uniform(2, 40)))
            hypnogram = simulate_hypnogram(profile, args.hours, rng)
            n_seconds = int(hypnogram.size * 30)
            ecg, truth = simulate_ecg(hypnogram, profile, np.zeros(n_seconds), 0.25, sfreq, rng)
            on_samples = np.floor(truth * sfreq) / sfreq  # where the simulator put each R wave
            if sfreq == 125.0:
                rhythms.append(hrv_measures(truth, hypnogram))
            for condition, signal in _conditions(ecg, sfreq, rng).items():
                found = {name: _detect(detector, signal, sfreq) for name, detector in detectors.items()}
                for name, (beats, seconds) in found.items():
                    scaled = (*_score(beats, seconds, truth, hypnogram.size)[:3], seconds * 8 / args.hours)
                    rows.setdefault(condition, {}).setdefault(name, []).append(scaled)
                    totals[name].append(scaled)
                neurokit = {"NeuroKit2": found["NeuroKit2"][0], "NK2 corrected": _neurokit_corrected(signal, sfreq)}
                errors = _hrv_errors(found["ours"][0], neurokit, on_samples, sfreq, _segments(hypnogram))
                for name, values in errors.items():
                    hrv.setdefault((sfreq, condition), {}).setdefault(name, []).append(values)
                yasa_rows.setdefault((sfreq, condition), []).append(
                    _yasa_rmssd_errors(found["ours"][0], signal, sfreq, on_samples, hypnogram))
        for condition, by_name in rows.items():
            cells = [f"{value:>17.4f}" if i < 2 else f"{value:>17.2f}"
                     for name in detectors for i, value in enumerate(np.mean(by_name[name], axis=0))]
            print(f"{sfreq:>6g} {condition:<14} " + " ".join(cells))
    print("mean over everything: " + "; ".join(
        f"{name}: sensitivity {m[0]:.4f}, PPV {m[1]:.4f}, epoch HR error {m[2]:.2f} bpm, {m[3]:.2f} s per 8 h"
        for name, m in ((name, np.mean(values, axis=0)) for name, values in totals.items())))
    print("\nthe simulated rhythms (the true beats, by kind of epoch: lowest–highest subject mean, ms): " + "; ".join(
        f"{measure} {kind} {np.nanmin([r[f'HRV_{measure}_{kind}'] for r in rhythms]):.0f}–"
        f"{np.nanmax([r[f'HRV_{measure}_{kind}'] for r in rhythms]):.0f}" for measure in ("RMSSD", "SDNN")
        for kind in ("W", "NREM", "R")))
    print("\nheart-rate variability, our 5-minute segments of one kind: mean absolute error (ms) against the true "
          "beats' (NeuroKit2's hrv_time), and the share of segments measured")
    scorers = ("ours", "NeuroKit2", "NK2 corrected")
    print(f"{'rate':>6} {'condition':<14} " + " ".join(f"{name + ' ' + col:>23}" for name in scorers
                                                      for col in ("SDNN err", "RMSSD err", "measured")))
    for (sfreq, condition), errors_by_name in hrv.items():
        cells = [f"{value:>23.2f}" for name in scorers for value in np.nanmean(errors_by_name[name], axis=0)]
        print(f"{sfreq:>6g} {condition:<14} " + " ".join(cells))
    for name in scorers:
        m = np.nanmean([v for errors_by_name in hrv.values() for v in errors_by_name[name]], axis=0)
        print(f"mean over everything, {name}: SDNN error {m[0]:.2f} ms, RMSSD error {m[1]:.2f} ms, {100 * m[2]:.0f} % "
              "of segments measured")
    print("\nRMSSD on YASA's 5-minute periods of one stage (hrv_stage, threshold 5min, equal_length): mean absolute "
          "error (ms) against the true beats', and the share of periods measured")
    print(f"{'rate':>6} {'condition':<14} " + " ".join(f"{col:>18}" for col in ("ours RMSSD err", "ours measured",
                                                                               "YASA RMSSD err", "YASA measured")))
    for (sfreq, condition), rows_here in yasa_rows.items():
        print(f"{sfreq:>6g} {condition:<14} " + " ".join(f"{v:>18.2f}" for v in np.nanmean(rows_here, axis=0)))
    m = np.nanmean([row for rows_here in yasa_rows.values() for row in rows_here], axis=0)
    print(f"mean over everything: ours RMSSD error {m[0]:.2f} ms ({100 * m[1]:.0f} % measured), YASA {m[2]:.2f} ms "
          f"({100 * m[3]:.0f} % measured)")


if __name__ == "__main__":
    main()

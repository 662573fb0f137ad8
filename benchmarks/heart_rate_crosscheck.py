"""Our R-peak detector and heart rate against NeuroKit2's, on ECGs whose beats are known.

Run in the benchmark environment (``make bench-env``): NeuroKit2 is not a package dependency.
The simulator's ECG (its beats returned with it) for several subjects, at the rates cohorts
record (125, 256, 512 Hz), as simulated, with the lead reversed, with muscle noise, and with
movement bursts; each detector's beats are matched to the true ones (within 50 ms), and each
30-s epoch's heart rate (60 / the median interval of its beats) compared with the truth's.
Prints sensitivity, positive predictive value, the epochs' heart-rate error, and seconds per
8 hours of ECG, side by side in one run. No real ECG is in ``../shared/data``: on real nights
the numbers will be lower for both.

    .venv-bench/bin/python benchmarks/heart_rate_crosscheck.py [--subjects 4] [--hours 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from synthsleepnet.cardiac import detect_r_peaks
from synthsleepnet.simulate.architecture import SubjectProfile, simulate_hypnogram
from synthsleepnet.simulate.signals import simulate_ecg

_TOLERANCE_S = 0.05


def _neurokit(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    import neurokit2 as nk

    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=int(sfreq)), sampling_rate=int(sfreq))
    return np.asarray(info["ECG_R_Peaks"], dtype=float) / sfreq


def _ours(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    return detect_r_peaks(ecg, sfreq)


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


def _score(detector: Callable[[np.ndarray, float], np.ndarray], ecg: np.ndarray, sfreq: float,
           truth: np.ndarray, n_epochs: int) -> tuple[float, float, float, float]:
    began = time.perf_counter()
    found = np.sort(detector(ecg, sfreq))
    seconds = time.perf_counter() - began
    hits = _matches(found, truth)
    error = np.abs(_epoch_rates(found, n_epochs) - _epoch_rates(truth, n_epochs))
    return hits / truth.size, hits / max(found.size, 1), float(np.nanmean(error)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    detectors = {"ours": _ours, "NeuroKit2": _neurokit}
    print(f"{'rate':>6} {'condition':<14} " + " ".join(f"{name + ' ' + col:>17}" for name in detectors
                                                      for col in ("sens", "PPV", "HR err", "s/8h")))
    totals: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in detectors}
    for sfreq in (125.0, 256.0, 512.0):
        rows: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {}
        for subject in range(args.subjects):
            rng = np.random.default_rng(100 + subject)
            profile = SubjectProfile.random(rng, ahi=float(rng.uniform(2, 40)))
            hypnogram = simulate_hypnogram(profile, args.hours, rng)
            n_seconds = int(hypnogram.size * 30)
            ecg, truth = simulate_ecg(hypnogram, profile, np.zeros(n_seconds), 0.25, sfreq, rng)
            for condition, signal in _conditions(ecg, sfreq, rng).items():
                for name, detector in detectors.items():
                    sens, ppv, err, seconds = _score(detector, signal, sfreq, truth, hypnogram.size)
                    scaled = (sens, ppv, err, seconds * 8 / args.hours)
                    rows.setdefault(condition, {}).setdefault(name, []).append(scaled)
                    totals[name].append(scaled)
        for condition, by_name in rows.items():
            cells = [f"{value:>17.4f}" if i < 2 else f"{value:>17.2f}"
                     for name in detectors for i, value in enumerate(np.mean(by_name[name], axis=0))]
            print(f"{sfreq:>6g} {condition:<14} " + " ".join(cells))
    print("mean over everything: " + "; ".join(
        f"{name}: sensitivity {m[0]:.4f}, PPV {m[1]:.4f}, epoch HR error {m[2]:.2f} bpm, {m[3]:.2f} s per 8 h"
        for name, m in ((name, np.mean(values, axis=0)) for name, values in totals.items())))


if __name__ == "__main__":
    main()

"""Is the simulator realistic enough that a stager trained on real people recognises its stages?

Runs YASA's pre-trained sleep stager (LightGBM trained on thousands of real nights; installed in
its own environment: ``make bench-env``) on simulated 8-hour nights and prints its agreement with
the simulator's ground truth, then compares stage-wise spectral summaries of simulated epochs
with the real snippets in ``../shared/data/real/yasa`` (N2 spindles, N3 slow waves, REM EOG).

    .venv-bench/bin/python benchmarks/simulator_realism.py [--nights 6] [--hours 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import signal as sps

from synthsleepnet.simulate import simulate_night, write_night

STAGES = ("W", "N1", "N2", "N3", "R")
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "yasa"
BANDS = {"delta 0.5-4": (0.5, 4), "theta 4-8": (4, 8), "alpha 8-12": (8, 12), "sigma 12-16": (12, 16),
         "beta 16-30": (16, 30)}


def _relative_powers(x: np.ndarray, sfreq: float) -> dict[str, float]:
    freqs, psd = sps.welch(x, sfreq, nperseg=int(4 * sfreq))
    total = psd[(freqs >= 0.5) & (freqs <= 30)].sum()
    return {name: float(psd[(freqs >= lo) & (freqs < hi)].sum() / total) for name, (lo, hi) in BANDS.items()}


def _stage_yasa(edf: Path, age: float, male: bool) -> np.ndarray:
    import mne
    import yasa

    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sls = yasa.SleepStaging(raw, eeg_name="EEG C4-M1", eog_name="EOG E1-M2", emg_name="EMG Chin",
                                metadata={"age": age, "male": male})
        pred = sls.predict()
    labels = pred.hypno if hasattr(pred, "hypno") else pred  # yasa >= 0.7 returns a Hypnogram
    codes = {"W": 0, "WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "REM": 4}
    return np.array([codes[str(p).upper()] for p in labels])


def _agreement(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import cohen_kappa_score, recall_score

    recalls = recall_score(truth, pred, labels=range(5), average=None, zero_division=0)
    out = {"accuracy": float(np.mean(truth == pred)), "kappa": float(cohen_kappa_score(truth, pred))}
    out.update({f"recall {s}": float(r) for s, r in zip(STAGES, recalls, strict=True)})
    return out


def _spectral_comparison(night_signals: dict[str, tuple[np.ndarray, float, str]], hyp: np.ndarray) -> None:
    eeg, fs = night_signals["EEG C4-M1"][:2]
    per_epoch = int(30 * fs)

    def stage_epochs(stage: int) -> list[np.ndarray]:
        return [eeg[k * per_epoch:(k + 1) * per_epoch] for k in np.flatnonzero(hyp == stage)[:40]]

    print("\nstage-wise relative power (0.5-30 Hz), C4-M1: simulated mean over epochs vs real snippet")
    real_n2 = np.loadtxt(REAL / "data_N2_spindles_15sec_200Hz.txt")
    real_n3 = np.loadtxt(REAL / "data_N3_no-spindles_30sec_100Hz.txt")
    for stage, real, real_fs in ((2, real_n2, 200.0), (3, real_n3, 100.0)):
        sim = np.mean([list(_relative_powers(x, fs).values()) for x in stage_epochs(stage)], axis=0)
        ref = list(_relative_powers(real, real_fs).values())
        print(f"  {STAGES[stage]:>3}  " + "  ".join(f"{b}: sim {s:.2f} real {r:.2f}"
                                                  for b, s, r in zip(BANDS, sim, ref, strict=True)))
    sim_pp = np.mean([np.ptp(x) for x in stage_epochs(3)])
    print(f"  N3 peak-to-peak amplitude: sim {sim_pp:.0f} uV, real {np.ptp(real_n3):.0f} uV")
    rem = np.load(REAL / "data_EOGs_REM_256Hz.npz")
    loc_real, real_fs = rem["data"][0], float(rem["sf"])
    loc_sim, eog_fs = night_signals["EOG E1-M2"][:2]
    rem_epochs = np.flatnonzero(hyp == 4)[:40]
    per = int(30 * eog_fs)
    sim_std = np.mean([np.std(sps.detrend(loc_sim[k * per:(k + 1) * per])) for k in rem_epochs])
    real_std = np.mean([np.std(sps.detrend(loc_real[i:i + int(30 * real_fs)]))
                        for i in range(0, loc_real.size - int(30 * real_fs), int(30 * real_fs))])
    print(f"  REM LOC standard deviation per 30 s: sim {sim_std:.0f} uV, real {real_std:.0f} uV")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=6)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    rows, truths, preds = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.nights):
            t0 = time.perf_counter()
            night = simulate_night(args.seed + i, args.hours)
            edf, _ = write_night(night, tmp)
            pred = _stage_yasa(edf, night.profile.age_years, night.profile.male)
            truth = night.hypnogram[:pred.size]
            truths.append(truth)
            preds.append(pred)
            rows.append(_agreement(truth, pred))
            print(f"night {night.name}: accuracy {rows[-1]['accuracy']:.3f} kappa {rows[-1]['kappa']:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
            if i == 0:
                first = night
    pooled = _agreement(np.concatenate(truths), np.concatenate(preds))
    print(f"\nYASA {len(rows)} simulated {args.hours:g}-h nights, pooled epochs:")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in pooled.items()))
    print(f"  per-night mean accuracy {np.mean([r['accuracy'] for r in rows]):.3f}, "
          f"mean kappa {np.mean([r['kappa'] for r in rows]):.3f}  (targets: accuracy >= 0.75, kappa >= 0.6)")
    from sklearn.metrics import confusion_matrix

    print("  confusion (rows truth W N1 N2 N3 R, columns YASA):")
    for name, row in zip(STAGES, confusion_matrix(np.concatenate(truths), np.concatenate(preds),
                                                  labels=range(5)), strict=True):
        print(f"    {name:>3} " + " ".join(f"{v:6d}" for v in row))
    _spectral_comparison(first.signals, first.hypnogram)


if __name__ == "__main__":
    main()

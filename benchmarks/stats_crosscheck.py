"""Our AASM statistics against YASA's on every real hypnogram in ../shared/data/real.

Run in the benchmark environment (``make bench-env``): YASA is not a package dependency.
Prints, per file, our TST, SE, SOL, WASO, stage minutes and REM latency next to YASA's, and the
largest difference per statistic. Expected differences are definitional and documented in
``synthsleepnet.stats``: REM latency is measured from sleep onset (YASA: from the start,
``Lat_REM``), and when a scoring marks lights off/on (HMC) our TIB, SE and SOL are bounded by
them while YASA uses the whole hypnogram.

    .venv-bench/bin/python benchmarks/stats_crosscheck.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from synthsleepnet import read_scoring
from synthsleepnet.stats import sleep_statistics

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
PAIRS = (("TST_min", "TST"), ("SE_pct", "SE"), ("SOL_min", "SOL"), ("WASO_min", "WASO"), ("N1_min", "N1"),
         ("N2_min", "N2"), ("N3_min", "N3"), ("R_min", "REM"), ("N2_pct", "%N2"))


def _yasa(stages: np.ndarray) -> dict[str, float]:
    import yasa

    names = {-1: "UNS", 0: "WAKE", 1: "N1", 2: "N2", 3: "N3", 4: "REM"}
    hyp = yasa.Hypnogram([names[int(s)] for s in stages], n_stages=5, freq="30s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(hyp.sleep_statistics())


def main() -> None:
    files = [*sorted((REAL / "sleep-edf" / "hypnograms").glob("*.edf")), REAL / "hmc" / "SN001_sleepscoring.edf",
             *sorted((REAL / "yasa").glob("*hypno*.txt"))]
    worst = {ours: 0.0 for ours, _ in PAIRS}
    worst_rem = 0.0
    lights_files = []
    print(f"{'file':<32} " + " ".join(f"{o.split('_')[0]:>13}" for o, _ in PAIRS) + "  REM-lat(ours / YASA-SOL)")
    for path in files:
        scoring = read_scoring(path)
        ours_whole = sleep_statistics(scoring.stages, scoring.epoch_s)  # same TIB as YASA
        ref = _yasa(scoring.stages)
        cells = []
        for o, y in PAIRS:
            diff = abs(ours_whole[o] - ref[y]) if ref[y] == ref[y] else 0.0
            worst[o] = max(worst[o], diff)
            cells.append(f"{ours_whole[o]:6.1f}/{ref[y]:6.1f}")
        rem_yasa = ref["Lat_REM"] - ref["SOL"]
        if rem_yasa == rem_yasa:
            worst_rem = max(worst_rem, abs(ours_whole["R_latency_min"] - rem_yasa))
        print(f"{path.name:<32} " + " ".join(f"{c:>13}" for c in cells) +
              f"  {ours_whole['R_latency_min']:6.1f}/{rem_yasa:6.1f}")
        if scoring.lights_off_s is not None:
            bounded = sleep_statistics(scoring.stages, scoring.epoch_s, lights_off_s=scoring.lights_off_s,
                                       lights_on_s=scoring.lights_on_s)
            lights_files.append((path.name, bounded))
    print("\nlargest |ours - YASA| over all files: " + ", ".join(f"{o} {v:.3g}" for o, v in worst.items()))
    print(f"REM latency from sleep onset vs YASA Lat_REM - SOL: largest difference {worst_rem:.3g} min")
    for name, s in lights_files:
        print(f"{name}: with its lights-off/on marks TIB {s['TIB_min']:.1f} min, SE {s['SE_pct']:.1f} %, "
              f"SOL {s['SOL_min']:.1f} min (YASA ignores the marks)")


if __name__ == "__main__":
    main()

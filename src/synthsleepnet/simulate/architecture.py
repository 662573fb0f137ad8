"""Sleep architecture: a plausible adult hypnogram from a few subject parameters."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["SubjectProfile", "simulate_hypnogram"]

W, N1, N2, N3, REM = 0, 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class SubjectProfile:
    """Per-subject parameters that shape a simulated night.

    Attributes
    ----------
    age_years : float
        Older subjects get less N3, more wake after sleep onset and lower slow-wave amplitude.
    male : bool
        Written into the EDF header.
    ahi : float
        Target apnea-hypopnea index (events per hour of sleep).
    sol_min : float
        Sleep onset latency in minutes (lights off to the first sleep epoch).
    alpha_uv : float
        Amplitude of relaxed-wake alpha in µV; subjects differ widely.
    heart_rate_bpm : float
        Resting heart rate in wake.
    """

    age_years: float
    male: bool
    ahi: float
    sol_min: float
    alpha_uv: float
    heart_rate_bpm: float

    @classmethod
    def random(cls, rng: np.random.Generator, ahi: float | None = None) -> SubjectProfile:
        """Draw a subject; ``ahi`` None draws one from a cohort-like mix of OSA severities."""
        age = float(rng.uniform(25, 70))
        if ahi is None:
            ahi = float(rng.choice([rng.uniform(0, 5), rng.uniform(5, 15), rng.uniform(15, 30),
                                    rng.uniform(30, 50)], p=[0.4, 0.3, 0.2, 0.1]))
        return cls(age_years=age, male=bool(rng.random() < 0.5), ahi=ahi,
                   sol_min=float(np.clip(rng.lognormal(np.log(12), 0.5), 3, 45)),
                   alpha_uv=float(rng.uniform(12, 30)), heart_rate_bpm=float(rng.uniform(58, 78)))


def _segment(stage: int, minutes: float, epoch_s: float) -> list[int]:
    return [stage] * max(int(round(minutes * 60 / epoch_s)), 0)


def _cycle(index: int, n_cycles: int, age: float, rng: np.random.Generator, epoch_s: float) -> list[int]:
    """One NREM–REM cycle: N3 front-loaded, REM lengthening through the night."""
    youth = np.clip((100 - age) / 60, 0.5, 1.0)
    n3_min = max(rng.normal([45, 32, 16, 6, 2, 0][min(index, 5)] * youth, 4), 0)
    rem_min = max(rng.normal([12, 21, 27, 31, 33, 33][min(index, 5)], 4), 4)
    cycle_min = rng.uniform(85, 105)
    n1_min = rng.uniform(3, 7) if index == 0 else rng.uniform(1, 4)
    n2_min = max(cycle_min - n3_min - rem_min - n1_min, 15)
    first_n2 = n2_min * (0.35 if n3_min > 0 else 1.0)
    seq = (_segment(N1, n1_min, epoch_s) + _segment(N2, first_n2, epoch_s) + _segment(N3, n3_min, epoch_s)
           + _segment(N2, n2_min - first_n2, epoch_s) + _segment(REM, rem_min, epoch_s))
    return seq


def simulate_hypnogram(profile: SubjectProfile, hours: float, rng: np.random.Generator,
                       epoch_s: float = 30.0) -> np.ndarray:
    """A hypnogram of ``hours`` from lights off: wake, sleep onset, 4–6 cycles, brief awakenings.

    Stage codes are 0 W, 1 N1, 2 N2, 3 N3, 4 REM. Stage percentages land in normal adult ranges
    (N1 2–10 %, N2 45–60 %, N3 8–25 %, REM 18–27 % of sleep).
    """
    n_epochs = int(round(hours * 3600 / epoch_s))
    stages: list[int] = _segment(W, profile.sol_min, epoch_s)
    index = 0
    while len(stages) < n_epochs:
        stages += _cycle(index, 5, profile.age_years, rng, epoch_s)
        index += 1
    hyp = np.asarray(stages[:n_epochs], dtype=np.int8)
    # final awakening in the morning
    tail = int(rng.uniform(2, 12) * 60 / epoch_s)
    if tail < n_epochs // 4:
        hyp[n_epochs - tail:] = W
    # brief awakenings and N1 transitions, more with age, most at stage changes
    onset = int(profile.sol_min * 60 / epoch_s)
    per_hour = 1.0 + profile.age_years / 40
    n_wake = rng.poisson(per_hour * hours)
    for _ in range(n_wake):
        k = int(rng.integers(onset + 10, max(onset + 11, n_epochs - tail - 2)))
        length = int(rng.choice([1, 1, 2, 3, 6]))
        hyp[k:k + length] = W
        if k + length < n_epochs and hyp[k + length] in (N2, N3, REM):
            hyp[k + length] = N1
    return hyp

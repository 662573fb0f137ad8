"""How much simulated subjects and recording sites differ (``simulate --variability``).

``normal`` is the simulator's default: subjects differ in age, sex, AHI, sleep onset, alpha
amplitude, resting heart rate and sleep architecture, and every night is recorded alike.
``low`` pulls each subject towards the cohort's centre (a third of the spread) — for checks that
need like nights. ``high`` widens the subject spread by 1.6 and adds what real cohorts add, drawn
per subject (seeded by the night's seed) and per recording site (four sites; a night's site is
``seed % 4``) from ranges reported for adults:

================================  ===============  ======================  =====================================
trait                             normal           high                    range reported
================================  ===============  ======================  =====================================
EEG amplitude                     ×1               ×0.6–1.6 (log-uniform)  ~2-fold between adults (skull, age)
aperiodic (1/f) exponent          as staged        ±0.4                    ~1–2.5 across adults (Donoghue 2020)
individual alpha frequency        9–10.5 Hz        8–12 Hz                 8–12 Hz (Klimesch 1999)
wake epochs with eyes closed      60 %             20–90 %                 alpha reactivity varies widely
spindle density (N2)              6 /min           2–10 /min               ~2–10 /min (Purcell 2017)
spindle frequency                 12–14.5 Hz       11–15.5 Hz              slow 11–13, fast 13–16 Hz
slow-wave amplitude               by age           by age ×0.6–1.4         falls with age, varies within
REM density                       18 /min          ×0.4–1.8                several-fold between subjects
heart-rate variability            ×1               ×0.5–2                  HRV several-fold between adults
electrode noise                   4 µV             2–10 µV                 impedance-dependent
site: EEG/EOG sampling rate       256 Hz           128, 200, 256, 500 Hz   clinical systems
site: amplifier band              none             0.1–0.5 Hz to 35–70 Hz  AASM: 0.3–35 Hz recommended
site: mains                       50 Hz, 2 µV      50/60 Hz, ×0.3–3        Europe/Americas
site: electrode pops, movements   2 /h, 3 /h       ×0.3–3                  lab and population dependent
================================  ===============  ======================  =====================================

Every draw comes from its own generators, so ``normal`` nights are byte-identical to nights
simulated without the option, and a seed fixes a night at every level.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._config import SimulationConfig
from .._validation import check_option
from .architecture import SubjectProfile

__all__ = ["VARIABILITY", "Traits", "vary"]

VARIABILITY = ("low", "normal", "high")
_SPREAD = {"low": 1 / 3, "normal": 1.0, "high": 1.6}
_N_SITES = 4


@dataclasses.dataclass(frozen=True)
class Traits:
    """Per-subject and per-site settings of the signal generators (defaults: ``normal``)."""

    eeg_gain: float = 1.0
    slope_shift: float = 0.0  # added to the 1/f exponents of the EEG background
    alpha_hz_shift: float = 0.0
    eyes_closed: tuple[float, float] = (0.4, 0.6)  # P(eyes open), P(eyes closed) in a wake epoch
    spindle_gain: float = 1.0  # spindle density relative to 6 /min in N2
    spindle_hz_shift: float = 0.0
    slow_wave_gain: float = 1.0
    rem_density_gain: float = 1.0
    hrv_gain: float = 1.0
    electrode_noise_uv: float = 4.0
    band_hz: tuple[float, float] | None = None  # the site amplifier's EEG/EOG pass band
    site: int | None = None


def _toward_centre(value: float, low: float, high: float, spread: float) -> float:
    centre = (low + high) / 2
    return centre + spread * (value - centre)


def _profile(profile: SubjectProfile, spread: float) -> SubjectProfile:
    """The subject's numeric traits moved towards (spread < 1) or away from the cohort centre."""
    return dataclasses.replace(
        profile,
        age_years=float(np.clip(_toward_centre(profile.age_years, 25, 70, spread), 18, 90)),
        sol_min=float(np.clip(_toward_centre(profile.sol_min, 3, 25, spread), 2, 60)),
        alpha_uv=float(np.clip(_toward_centre(profile.alpha_uv, 12, 30, spread), 4, 50)),
        heart_rate_bpm=float(np.clip(_toward_centre(profile.heart_rate_bpm, 58, 78, spread), 45, 95)))


def _site(site: int, config: SimulationConfig) -> tuple[SimulationConfig, tuple[float, float]]:
    rng = np.random.default_rng([20_240_101, site])
    rate = float(rng.choice([128.0, 200.0, 256.0, 500.0]))
    artefacts = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    band = (float(rng.uniform(0.1, 0.5)), float(min(rng.uniform(35, 70), 0.45 * rate)))
    return dataclasses.replace(config, eeg_sfreq=rate, eog_sfreq=rate, mains_hz=float(rng.choice([50.0, 60.0])),
                               mains_uv=config.mains_uv * artefacts,
                               electrode_pops_per_hour=config.electrode_pops_per_hour * artefacts,
                               movements_per_hour=config.movements_per_hour * artefacts), band


def vary(profile: SubjectProfile, config: SimulationConfig, variability: str, seed: int
         ) -> tuple[SubjectProfile, Traits, SimulationConfig]:
    """The night's subject, generator traits and recording settings at ``variability``."""
    check_option("variability", variability, VARIABILITY)
    profile = _profile(profile, _SPREAD[variability]) if variability != "normal" else profile
    if variability != "high":
        return profile, Traits(), config
    rng = np.random.default_rng([seed, 1])
    closed = float(rng.uniform(0.2, 0.9))
    site = seed % _N_SITES
    config, band = _site(site, config)
    traits = Traits(eeg_gain=float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))),
                    slope_shift=float(rng.uniform(-0.4, 0.4)), alpha_hz_shift=float(rng.uniform(-1.0, 1.5)),
                    eyes_closed=(1 - closed, closed), spindle_gain=float(rng.uniform(2, 10)) / 6,
                    spindle_hz_shift=float(rng.uniform(-1.0, 1.0)), slow_wave_gain=float(rng.uniform(0.6, 1.4)),
                    rem_density_gain=float(rng.uniform(0.4, 1.8)), hrv_gain=float(rng.uniform(0.5, 2.0)),
                    electrode_noise_uv=float(rng.uniform(2, 10)), band_hz=band, site=site)
    return profile, traits, config

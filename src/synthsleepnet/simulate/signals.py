"""Stage-dependent biopotentials: EEG, EOG, chin EMG and ECG, in µV at native rates.

Each generator takes the hypnogram (one stage per 30-s epoch) and the arousals (onset, duration
in seconds) and returns the whole night, so stage transitions are smooth and nothing is
generated per epoch in Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter1d

from .architecture import N1, N2, N3, REM, SubjectProfile, W
from .noise import band_noise, colored_noise, epoch_envelope, poisson_onsets
from .variability import Traits

__all__ = ["simulate_ecg", "simulate_eeg", "simulate_emg", "simulate_eog"]

Arousals = list[tuple[float, float]]


def _by_stage(hyp: np.ndarray, table: dict[int, float]) -> np.ndarray:
    return np.array([table[int(s)] for s in hyp], dtype=np.float64)


def _stage_rate(hyp: np.ndarray, per_min: dict[int, float], epoch_s: float) -> np.ndarray:
    return _by_stage(hyp, per_min) * epoch_s / 60


def _add(x: np.ndarray, start: int, wave: np.ndarray) -> None:
    stop = min(start + wave.size, x.size)
    if 0 <= start < stop:
        x[start:stop] += wave[:stop - start]


def _arousal_envelope(arousals: Arousals, n: int, sfreq: float) -> np.ndarray:
    env = np.zeros(n)
    for onset, duration in arousals:
        a, b = int(onset * sfreq), int((onset + duration) * sfreq)
        env[max(a, 0):min(b, n)] = 1.0
    return uniform_filter1d(env, size=max(int(0.5 * sfreq), 1), mode="nearest")


def _spindles(shift_hz: float) -> Callable[[float, np.random.Generator], np.ndarray]:
    def spindle(sfreq: float, rng: np.random.Generator) -> np.ndarray:
        duration = rng.uniform(0.5, 1.8)
        t = np.arange(int(duration * sfreq)) / sfreq
        window = np.sin(np.pi * t / duration) ** 2
        amplitude = rng.uniform(15, 35)  # drawn in this order: amplitude, frequency, phase
        hz = rng.uniform(12 + shift_hz, 14.5 + shift_hz)
        return amplitude * window * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6.3))
    return spindle


def _k_complex(sfreq: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(1.2 * sfreq)) / sfreq
    amp = rng.uniform(80, 160)
    return amp * (-np.exp(-((t - 0.3) / 0.09) ** 2) + 0.55 * np.exp(-((t - 0.7) / 0.18) ** 2))


def _vertex_wave(sfreq: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.5 * sfreq)) / sfreq
    return -rng.uniform(40, 80) * np.exp(-((t - 0.2) / 0.06) ** 2)


def _sawtooth_burst(sfreq: float, rng: np.random.Generator) -> np.ndarray:
    duration, freq = rng.uniform(2, 5), rng.uniform(2.5, 4)
    t = np.arange(int(duration * sfreq)) / sfreq
    phase = (freq * t) % 1.0
    wave = np.where(phase < 0.75, phase / 0.75, (1 - phase) / 0.25) - 0.5
    return rng.uniform(25, 45) * wave * np.sin(np.pi * t / duration)


def _place(x: np.ndarray, onsets_s: np.ndarray, sfreq: float,
           make: Callable[[float, np.random.Generator], np.ndarray], rng: np.random.Generator) -> None:
    for onset in onsets_s:
        _add(x, int(onset * sfreq), make(sfreq, rng))


def simulate_eeg(hyp: np.ndarray, profile: SubjectProfile, arousals: Arousals, sfreq: float,
                 rng: np.random.Generator, epoch_s: float = 30.0, n_channels: int = 2,
                 traits: Traits | None = None) -> list[np.ndarray]:
    """Central EEG (C4-M1, C3-M2) in µV.

    1/f background whose slope steepens with depth; relaxed-wake alpha; theta and vertex waves
    in N1; spindles (11–16 Hz, 0.5–2 s) and K-complexes in N2; 0.5–2 Hz slow waves of ≥ 75 µV
    peak-to-peak in N3; low-voltage theta with sawtooth bursts in REM; alpha/beta at arousals.
    Channels share most sources and differ by a private background. ``traits`` set the
    subject's amplitude, 1/f exponent, alpha, spindles, slow waves and electrode noise.
    """
    traits = traits or Traits()
    n = int(round(hyp.size * epoch_s * sfreq))
    youth = float(np.clip((95 - profile.age_years) / 70, 0.5, 1.0))

    def env(table: dict[int, float]) -> np.ndarray:
        return epoch_envelope(_by_stage(hyp, table), n, sfreq, epoch_s)

    slope = traits.slope_shift
    common = (env({W: 7, N1: 9, N2: 10, N3: 11, REM: 8}) * colored_noise(n, sfreq, 1.7 + slope, rng)
              + env({W: 7, N1: 12, N2: 16, N3: 16, REM: 11}) * colored_noise(n, sfreq, 2.0 + slope, rng))
    a = profile.alpha_uv
    # relaxed wake alternates eyes closed (alpha) and open (little alpha): a per-epoch factor
    eyes = np.where(hyp == W, rng.choice([0.25, 1.0], size=hyp.size, p=list(traits.eyes_closed)), 1.0)
    alpha_env = epoch_envelope(_by_stage(hyp, {W: 0.7 * a, N1: 0.2 * a, N2: 0.05 * a, N3: 0.03 * a,
                                                REM: 0.1 * a}) * eyes, n, sfreq, epoch_s)
    arousal = _arousal_envelope(arousals, n, sfreq)
    alpha_hz = rng.uniform(9 + traits.alpha_hz_shift, 10.5 + traits.alpha_hz_shift)
    common += (alpha_env + 0.8 * a * arousal) * band_noise(n, sfreq, 8, 12, rng, peak_hz=alpha_hz)
    common += (env({W: 6, N1: 2, N2: 1, N3: 0.7, REM: 2}) + 10 * arousal) * band_noise(n, sfreq, 16, 30, rng)
    common += env({W: 3, N1: 8, N2: 5, N3: 5, REM: 8}) * band_noise(n, sfreq, 4, 7.5, rng)
    slow = youth * traits.slow_wave_gain
    delta = env({W: 3, N1: 7, N2: 12 * slow, N3: 23 * slow, REM: 7})
    common += delta * band_noise(n, sfreq, 0.5, 2.0, rng, peak_hz=0.9)
    transients = np.zeros(n)
    k = traits.spindle_gain
    _place(transients, poisson_onsets(_stage_rate(hyp, {W: 0, N1: 0.3 * k, N2: 6 * k, N3: 2 * k, REM: 0}, epoch_s),
                                      epoch_s, rng), sfreq, _spindles(traits.spindle_hz_shift), rng)
    _place(transients, poisson_onsets(_stage_rate(hyp, {W: 0, N1: 0.1, N2: 1.5, N3: 0.5, REM: 0}, epoch_s),
                                      epoch_s, rng), sfreq, _k_complex, rng)
    _place(transients, poisson_onsets(_stage_rate(hyp, {W: 0, N1: 2, N2: 0.2, N3: 0, REM: 0}, epoch_s),
                                      epoch_s, rng), sfreq, _vertex_wave, rng)
    _place(transients, poisson_onsets(_stage_rate(hyp, {W: 0, N1: 0, N2: 0, N3: 0, REM: 1.2}, epoch_s),
                                      epoch_s, rng), sfreq, _sawtooth_burst, rng)
    common += transients
    return [traits.eeg_gain * (common + traits.electrode_noise_uv * colored_noise(n, sfreq, 1.5, rng))
            for _ in range(n_channels)]


def _saccades(onsets_s: np.ndarray, n: int, sfreq: float, rng: np.random.Generator,
              amplitude: tuple[float, float], rise_s: float, decay_s: float) -> np.ndarray:
    """Eye movements: a fast step of random sign that drifts back (corneo-retinal dipole)."""
    x = np.zeros(n)
    t = np.arange(int((rise_s + 5 * decay_s) * sfreq)) / sfreq
    shape = np.where(t < rise_s, t / rise_s, np.exp(-(t - rise_s) / decay_s))
    for onset in onsets_s:
        _add(x, int(onset * sfreq), rng.choice([-1, 1]) * rng.uniform(*amplitude) * shape)
    return x


def simulate_eog(hyp: np.ndarray, eeg: np.ndarray, sfreq: float, rng: np.random.Generator,
                 epoch_s: float = 30.0, rem_density_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """E1-M2 and E2-M2 in µV.

    Horizontal movements appear with opposite polarity on E1 and E2, blinks with the same; slow
    rolling movements at sleep onset (N1), rapid eye movements in clusters in REM, saccades and
    blinks in wake; frontal EEG (slow waves, K-complexes) leaks into both, as in real PSG.
    """
    n = eeg.size

    def rate(table: dict[int, float]) -> np.ndarray:
        return _stage_rate(hyp, table, epoch_s)

    # REMs come in phasic clusters: a per-epoch burstiness factor
    phasic = rng.gamma(0.6, 1 / 0.6, hyp.size)
    rem_rate = rate({W: 0, N1: 0, N2: 0, N3: 0, REM: 18 * rem_density_gain}) * phasic
    horizontal = _saccades(poisson_onsets(rem_rate, epoch_s, rng), n, sfreq, rng, (70, 220), 0.08, 0.6)
    horizontal += _saccades(poisson_onsets(rate({W: 10, N1: 1, N2: 0, N3: 0, REM: 0}), epoch_s, rng),
                            n, sfreq, rng, (30, 90), 0.05, 1.0)
    sem = epoch_envelope(_by_stage(hyp, {W: 5, N1: 25, N2: 8, N3: 2, REM: 6}), n, sfreq, epoch_s)
    horizontal += sem * band_noise(n, sfreq, 0.1, 0.6, rng)
    blinks = np.zeros(n)
    t = np.arange(int(0.4 * sfreq)) / sfreq
    for onset in poisson_onsets(rate({W: 12, N1: 2, N2: 0, N3: 0, REM: 0}), epoch_s, rng):
        _add(blinks, int(onset * sfreq), rng.uniform(80, 200) * np.exp(-((t - 0.15) / 0.06) ** 2))
    leak = 0.45 * eeg
    e1 = horizontal + 0.6 * blinks + leak + 5 * colored_noise(n, sfreq, 1.5, rng)
    e2 = -horizontal + 0.6 * blinks + leak + 5 * colored_noise(n, sfreq, 1.5, rng)
    return e1, e2


def simulate_emg(hyp: np.ndarray, arousals: Arousals, sfreq: float, rng: np.random.Generator,
                 epoch_s: float = 30.0) -> np.ndarray:
    """Chin EMG in µV: tone highest in wake, lower through NREM, atonia in REM with twitches, over
    the electrode and amplifier floor."""
    n = int(round(hyp.size * epoch_s * sfreq))
    tone = _by_stage(hyp, {W: 14, N1: 7, N2: 5, N3: 4.5, REM: 1.6})
    tone *= rng.lognormal(0, 0.15, hyp.size) * rng.uniform(0.7, 1.3)
    env = epoch_envelope(tone, n, sfreq, epoch_s, smooth_s=5.0)
    env += 8 * _arousal_envelope(arousals, n, sfreq)
    twitch = np.zeros(n)
    for onset in poisson_onsets(_stage_rate(hyp, {W: 0, N1: 0, N2: 0, N3: 0, REM: 5}, epoch_s), epoch_s, rng):
        length = int(rng.uniform(0.1, 0.3) * sfreq)
        _add(twitch, int(onset * sfreq), np.full(length, rng.uniform(8, 20)))
    muscle = (env + twitch) * band_noise(n, sfreq, 10, min(150, 0.45 * sfreq), rng)
    # the electrode/amplifier floor (≈ 1.5 µV, 1/f) is what remains visible in REM atonia
    return muscle + 1.5 * colored_noise(n, sfreq, 1.0, rng)


def _beat(sfreq: float) -> np.ndarray:
    """One PQRST complex in µV, R peak at 0.25 s."""
    t = np.arange(int(0.7 * sfreq)) / sfreq - 0.25
    waves = ((150, -0.17, 0.025), (-100, -0.03, 0.01), (1000, 0.0, 0.012), (-250, 0.03, 0.012),
             (300, 0.25, 0.045))
    return np.sum([a * np.exp(-0.5 * ((t - mu) / sd) ** 2) for a, mu, sd in waves], axis=0)


def simulate_ecg(hyp: np.ndarray, profile: SubjectProfile, heart_rate_offset: np.ndarray,
                 breathing_hz: float, sfreq: float, rng: np.random.Generator,
                 epoch_s: float = 30.0, hrv_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """ECG in µV and the R-peak times in s.

    Heart rate falls with NREM depth, varies more in REM and wake, follows breathing (sinus
    arrhythmia) and adds ``heart_rate_offset`` (bpm, at 1 Hz: bradycardia during apneas, a surge
    at their end). Each beat follows the rate at its own time, interpolated between the seconds
    (a rate held for whole seconds would change in steps, which a sinus node's does not: HRV
    tools read such steps as ectopic beats). The ECG draws from a generator spawned from
    ``rng``, so the signals drawn after it do not depend on how many beats it has.
    """
    rng = rng.spawn(1)[0]
    n = int(round(hyp.size * epoch_s * sfreq))
    hr_epoch = profile.heart_rate_bpm + _by_stage(hyp, {W: 0, N1: -3, N2: -6, N3: -8, REM: -2})
    seconds = np.arange(int(hyp.size * epoch_s))
    hr = np.repeat(hr_epoch, int(epoch_s))[:seconds.size]
    variability = hrv_gain * _by_stage(hyp, {W: 3, N1: 2, N2: 1.5, N3: 1, REM: 3.5})
    hr = hr + np.repeat(variability, int(epoch_s))[:seconds.size] * colored_noise(seconds.size, 1.0, 2.0, rng, 0.005)
    hr = hr + heart_rate_offset[:seconds.size]
    per_second = np.r_[hr, hr[-1]].tolist()  # the last second repeated: every beat has a next one
    beat_times = []
    t = rng.uniform(0, 1)
    while t < seconds.size:
        beat_times.append(t)
        second = int(t)
        rate = per_second[second] + (t - second) * (per_second[second + 1] - per_second[second])
        rate += 3 * math.sin(2 * math.pi * breathing_hz * t)
        t += 60 / min(max(rate, 40.0), 130.0)
    ecg = np.zeros(n)
    template = _beat(sfreq)
    offset = int(0.25 * sfreq)
    for bt in beat_times:
        _add(ecg, int(bt * sfreq) - offset, template * rng.uniform(0.9, 1.1))
    ecg += 40 * band_noise(n, sfreq, 0.05, 0.4, rng) + 8 * colored_noise(n, sfreq, 0.5, rng)
    return ecg, np.asarray(beat_times)

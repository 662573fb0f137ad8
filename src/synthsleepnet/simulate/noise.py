"""Building blocks for simulated signals: shaped noise, envelopes, transient placement."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.special import expit

__all__ = ["band_noise", "colored_noise", "epoch_envelope", "poisson_onsets"]


def colored_noise(n: int, sfreq: float, exponent: float, rng: np.random.Generator,
                  low_hz: float = 0.3) -> np.ndarray:
    """Unit-variance noise with a 1/f^exponent power spectrum above ``low_hz``."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / sfreq)
    gain = 1.0 / np.maximum(freqs, low_hz) ** (exponent / 2)
    gain[0] = 0.0
    x = np.fft.irfft(spectrum * gain, n)
    return x / (x.std() + 1e-12)


def band_noise(n: int, sfreq: float, low_hz: float, high_hz: float, rng: np.random.Generator,
               *, peak_hz: float | None = None) -> np.ndarray:
    """Unit-variance noise confined to ``low_hz``–``high_hz`` (smooth edges, optional peak)."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / sfreq)
    width = max((high_hz - low_hz) * 0.15, 0.05)
    gain = expit((freqs - low_hz) / width) * expit((high_hz - freqs) / width)
    if peak_hz is not None:
        gain *= np.exp(-0.5 * ((freqs - peak_hz) / max((high_hz - low_hz) / 3, 0.1)) ** 2)
    gain[0] = 0.0
    x = np.fft.irfft(spectrum * gain, n)
    return x / (x.std() + 1e-12)


def epoch_envelope(values: np.ndarray, n: int, sfreq: float, epoch_s: float,
                   smooth_s: float = 10.0) -> np.ndarray:
    """Per-epoch values spread over samples: flat within an epoch, ramped over ``smooth_s``."""
    per_epoch = int(round(epoch_s * sfreq))
    x = np.repeat(np.asarray(values, dtype=np.float64), per_epoch)
    if x.size < n:
        x = np.concatenate([x, np.full(n - x.size, x[-1] if x.size else 0.0)])
    x = x[:n]
    return uniform_filter1d(x, size=max(int(smooth_s * sfreq), 1), mode="nearest")


def poisson_onsets(rate_per_epoch: np.ndarray, epoch_s: float, rng: np.random.Generator) -> np.ndarray:
    """Event onsets in seconds from a per-epoch Poisson rate (events per epoch)."""
    counts = rng.poisson(np.maximum(rate_per_epoch, 0))
    epochs = np.repeat(np.arange(counts.size), counts)
    return np.sort((epochs + rng.random(epochs.size)) * epoch_s)

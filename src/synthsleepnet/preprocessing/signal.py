"""Signal conditioning on the continuous night: resampling, band-pass, robust scaling.

Everything here runs on the whole night before epoching, so filters see no epoch edges.
SciPy's signal module (≈ 0.5 s to import) is imported by the functions that filter, not by this
module: scoring unpickles a night prepared in a worker (:class:`~.pipeline.PreparedNight`, whose
module imports this one) without filtering anything.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .._validation import SignalQualityError

__all__ = ["bandpass", "check_signal_quality", "fit_band", "resample", "robust_scale", "spo2_percent"]

#: Fraction of the native Nyquist frequency a filter edge may reach (the recorder's own
#: anti-alias filter leaves little above it).
NYQUIST_MARGIN = 0.8
#: Fraction of the target Nyquist frequency a filter edge may reach (the paper's EMG band,
#: 25–49 Hz at 100 Hz, is at 0.98).
TARGET_NYQUIST_MARGIN = 0.99


def resample(data: np.ndarray, sfreq_in: float, sfreq_out: float) -> np.ndarray:
    """Anti-aliased polyphase resampling (``scipy.signal.resample_poly``).

    The up/down ratio is the exact rational ratio of the two rates (denominator ≤ 1000).
    """
    if sfreq_in == sfreq_out:
        return np.asarray(data, dtype=np.float64)
    from scipy.signal import resample_poly

    ratio = Fraction(sfreq_out / sfreq_in).limit_denominator(1000)
    return resample_poly(data, ratio.numerator, ratio.denominator, padtype="line")


def _edge(value: float | None) -> str:
    return "∞" if value is None else f"{value:g}"


def fit_band(
    band_hz: tuple[float | None, float | None] | None,
    native_sfreq: float,
    target_sfreq: float,
) -> tuple[tuple[float | None, float | None] | None, str | None]:
    """Fit a filter band to what a channel's native rate can carry.

    Returns the band to apply and a note when it changed. A high edge above
    ``NYQUIST_MARGIN`` × the native (or target) Nyquist frequency is lowered to it. A low edge the
    native rate cannot reach means the channel cannot carry the band at all: the band comes back
    as ``None`` together with the reason, and the caller drops the channel.
    """
    if band_hz is None:
        return None, None
    low, high = band_hz
    native_limit, target_limit = NYQUIST_MARGIN * native_sfreq / 2, TARGET_NYQUIST_MARGIN * target_sfreq / 2
    limit = min(native_limit, target_limit)
    which, rate = ("native", native_sfreq) if native_limit <= target_limit else ("target", target_sfreq)
    if low is not None and low >= limit:
        return None, (f"{which} rate {rate:g} Hz (Nyquist {rate / 2:g} Hz) is too low "
                      f"for the band {low:g}–{_edge(high)} Hz")
    if high is not None and high > limit:
        return (low, round(limit, 3)), (f"band high edge lowered from {high:g} to {limit:.3g} Hz: the "
                                        f"{which} rate is {rate:g} Hz")
    return band_hz, None


def bandpass(data: np.ndarray, sfreq: float, band_hz: tuple[float | None, float | None] | None,
             order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth filter (second-order sections, forward and backward)."""
    if band_hz is None:
        return data
    from scipy.signal import butter, sosfiltfilt

    low, high = band_hz
    if low is not None and high is not None:
        sos = butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    elif low is not None:
        sos = butter(order, low, btype="highpass", fs=sfreq, output="sos")
    elif high is not None:
        sos = butter(order, high, btype="lowpass", fs=sfreq, output="sos")
    else:
        return data
    return sosfiltfilt(sos, data)


def check_signal_quality(data: np.ndarray, label: str, source: str) -> None:
    """Refuse NaN/infinite or flat channels, naming the file and channel."""
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - finite.sum())
        raise SignalQualityError(f"{source}: channel {label!r} has {bad} NaN or infinite samples "
                                 f"({100 * bad / data.size:.1f} %)")
    if data.size == 0 or np.ptp(data) == 0:
        value = float(data[0]) if data.size else float("nan")
        raise SignalQualityError(f"{source}: channel {label!r} is flat (every sample is {value:g})")


#: Where the readings of a night's SpO2 in % lie (a probe off reads 0 and is left out) ...
SPO2_PLAUSIBLE_PCT = (50.0, 100.5)
#: ... and the least share of them there for the channel to be a saturation in % at all.
_SPO2_MIN_SHARE = 0.1


def spo2_percent(data: np.ndarray, label: str, source: str) -> tuple[np.ndarray, str | None]:
    """SpO2 in %, with a note when it had to be converted.

    A trace stored as a fraction (every valid reading within 0–1, typically 0.9–1.0: some
    exports write it so) is scaled by 100 and said. A trace with hardly a reading that is a
    saturation in % (a unit of 0.1 %, a mislabelled channel) is refused rather than read as a
    desaturated night; one whose probe was off for most of the night (0, or a code such as 127)
    keeps its valid stretches (:func:`~synthsleepnet.respiratory.clean_spo2` drops the rest).

    Raises
    ------
    SignalQualityError
        Naming the file, the channel and its median.
    """
    valid = data[np.isfinite(data) & (data > 0)]
    if valid.size == 0:
        return data, None  # no reading at all: the respiratory measures say so
    sample = valid[::max(valid.size // 1_000_000, 1)]  # a million readings suffice
    median, top = (float(v) for v in np.percentile(sample, [50, 99]))
    if 0.5 <= median <= 1.0 and top <= 1.0:
        return data * 100.0, f"channel {label!r} holds SpO2 as a fraction (median {median:.2f}): read as % (× 100)"
    lo, hi = SPO2_PLAUSIBLE_PCT
    share = float(np.mean((sample >= lo) & (sample <= hi)))
    if share < _SPO2_MIN_SHARE:
        raise SignalQualityError(f"{source}: SpO2 channel {label!r} has a median of {median:.4g} and "
                                 f"{100 * share:.0f} % of its readings within {lo:g}–{hi:g}: not a saturation "
                                 "in %; check its unit")
    return data, None


def robust_scale(data: np.ndarray, clip: float, label: str = "channel", source: str = "recording"
                 ) -> tuple[np.ndarray, float, float]:
    """Per-night robust scaling: ``(x - median) / IQR``, clipped to ``±clip``.

    Returns the scaled signal with the median and IQR used (in the input's unit), so the
    scaling can be reported and undone.
    """
    q25, median, q75 = np.percentile(data, [25, 50, 75])
    iqr = float(q75 - q25)
    if iqr <= 0:
        raise SignalQualityError(f"{source}: channel {label!r} has an interquartile range of 0 "
                                 "(mostly constant); it cannot be scaled")
    scaled = np.clip((data - median) / iqr, -clip, clip)
    return scaled, float(median), iqr

"""Preparing a night: conditioning the continuous signal, epoching, labelling."""

from .labels import EpochLabels, align_scoring
from .pipeline import (
    NightReport,
    PreparedNight,
    describe_recording,
    prepare_recording,
    suggest_channel_file,
)
from .signal import bandpass, fit_band, resample, robust_scale, spo2_percent

__all__ = [
    "EpochLabels",
    "NightReport",
    "PreparedNight",
    "align_scoring",
    "bandpass",
    "describe_recording",
    "fit_band",
    "prepare_recording",
    "resample",
    "robust_scale",
    "spo2_percent",
    "suggest_channel_file",
]

"""Preparing a night: conditioning the continuous signal, epoching, labelling."""

from .labels import LABEL_NAMES, EpochLabels, align_scoring, event_epoch_labels
from .pipeline import NightReport, PreparedNight, describe_recording, prepare_recording
from .signal import bandpass, fit_band, resample, robust_scale

__all__ = [
    "LABEL_NAMES",
    "EpochLabels",
    "NightReport",
    "PreparedNight",
    "align_scoring",
    "bandpass",
    "describe_recording",
    "event_epoch_labels",
    "fit_band",
    "prepare_recording",
    "resample",
    "robust_scale",
]

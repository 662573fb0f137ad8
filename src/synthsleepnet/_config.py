"""Typed configuration: the single source of defaults.

Every stage reads its settings from these dataclasses. They round-trip through plain dicts
(and so JSON/TOML files); the preprocessing settings are hashed and stored with every night,
so training and scoring can never disagree on how a signal was prepared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["STAGE_DEFAULTS", "PreprocessingConfig", "SimulationConfig", "TrainConfig", "config_from_dict", "config_hash", "config_to_dict",
           "load_config_file"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """How a continuous PSG signal becomes 30-s model inputs (DESIGN.md §3).

    Parameters
    ----------
    sfreq : float
        Target sampling rate in Hz after polyphase resampling (paper: 100 Hz).
    epoch_s : float
        Epoch length in seconds, aligned to the recording start (AASM: 30 s).
    bands_hz : dict
        Zero-phase Butterworth band per modality, ``(low, high)`` in Hz; ``None`` for either edge
        drops it, ``None`` for the band skips filtering. Paper bands: EEG/EOG 0.5–40 Hz,
        ECG 3–30 Hz, EMG 25–49 Hz (the AASM EMG band, 10–100 Hz, cannot survive 100 Hz).
    filter_order : int
        Butterworth order per pass (applied forward and backward, so the magnitude is squared).
    scaling : dict
        Per modality, ``"robust"`` (per-night median / IQR, then clipping) or ``"fixed"``
        (``(x - offset) / scale`` from ``fixed_scaling``, for SpO2 where the absolute % matters).
    clip : float
        Robust-scaled samples are clipped to ``[-clip, clip]`` IQRs (artefacts, electrode pops).
    fixed_scaling : dict
        ``modality: (offset, scale)`` for ``"fixed"`` scaling.
    store_dtype : str
        On-disk dtype of prepared epochs. ``float16`` keeps 11 bits of mantissa: for robust-scaled
        signals clipped at ±20 the absolute rounding error is at most 0.0078 (IQR units).
    event_min_overlap_s : float
        An epoch is labelled positive for a respiratory event when the event overlaps it by more
        than this many seconds (0: any overlap). Events also keep onset and duration.
    """

    sfreq: float = 100.0
    epoch_s: float = 30.0
    bands_hz: dict[str, tuple[float | None, float | None] | None] = dataclasses.field(
        default_factory=lambda: {
            "eeg": (0.5, 40.0),
            "eog": (0.5, 40.0),
            "emg": (25.0, 49.0),
            "ecg": (3.0, 30.0),
            "resp": (0.05, 5.0),
            "spo2": None,
        }
    )
    filter_order: int = 4
    scaling: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"eeg": "robust", "eog": "robust", "emg": "robust",
                                 "ecg": "robust", "resp": "robust", "spo2": "fixed"}
    )
    clip: float = 20.0
    fixed_scaling: dict[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: {"spo2": (90.0, 10.0)}
    )
    store_dtype: str = "float16"
    event_min_overlap_s: float = 0.0

    @property
    def epoch_samples(self) -> int:
        """Samples per epoch at the target rate (3000 for the paper)."""
        return int(round(self.sfreq * self.epoch_s))


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Native rates and artefact rates of simulated PSG (``synthsleepnet simulate``).

    Rates differ per channel, as in clinical systems, so the reader and the resampler are
    exercised: EEG/EOG 256 Hz, chin EMG 512 Hz, ECG 256 Hz, airflow and effort 32 Hz, SpO2 1 Hz.
    """

    eeg_sfreq: float = 256.0
    eog_sfreq: float = 256.0
    emg_sfreq: float = 512.0
    ecg_sfreq: float = 256.0
    resp_sfreq: float = 32.0
    spo2_sfreq: float = 1.0
    epoch_s: float = 30.0
    mains_hz: float = 50.0
    mains_uv: float = 2.0
    electrode_pops_per_hour: float = 2.0
    movements_per_hour: float = 3.0
    spontaneous_arousals_per_hour: float = 6.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training stage (AdamW, cosine schedule with warm-up).

    Parameters
    ----------
    epochs : int
        Passes over the training items.
    batch_size : int
        Items per optimiser micro-batch (per process under DDP: divided by the world size).
    accumulate : int
        Micro-batches per optimiser step.
    base_lr : float
        Learning rate for an effective batch of 256; the rate used is
        ``base_lr × batch_size × accumulate / 256`` (the paper's scaling rule).
    weight_decay : float
        AdamW weight decay.
    warmup_frac : float
        Fraction of the steps with a linear warm-up before the cosine decay.
    grad_clip : float
        Gradient-norm clip (paper: 2).
    seed : int
        Seeds data order, masking, dropout, splits and label sampling; stored in checkpoints.
    bf16 : bool
        bfloat16 autocast on CPUs that support it (1.4–1.8x faster encoders here).
    max_steps_per_epoch : int | None
        Cap on optimiser steps per epoch (quick runs, CI); None runs full epochs.
    """

    epochs: int = 20
    batch_size: int = 256
    accumulate: int = 1
    base_lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    grad_clip: float = 2.0
    seed: int = 0
    bf16: bool = True
    max_steps_per_epoch: int | None = None

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size * self.accumulate / 256


#: Paper defaults per stage (DESIGN.md §5).
STAGE_DEFAULTS: dict[str, TrainConfig] = {
    "pretrain_unimodal": TrainConfig(epochs=20, batch_size=256, base_lr=1e-4),
    "pretrain_multimodal": TrainConfig(epochs=100, batch_size=256, base_lr=1e-4),
    "probe": TrainConfig(epochs=50, batch_size=512, base_lr=1e-4, weight_decay=0.01),  # lr 2e-4
    "finetune": TrainConfig(epochs=30, batch_size=32, accumulate=4, base_lr=5e-4, weight_decay=0.01),
}


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain, JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, refusing unknown keys with the list of valid ones."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(fields)}")
    values = dict(data)
    for key in ("bands_hz", "fixed_scaling"):
        if key in values and values[key] is not None:
            values[key] = {k: (tuple(v) if v is not None else None) for k, v in values[key].items()}
    return cls(**values)


def config_hash(config: Any) -> str:
    """Stable short hash of a config's content, recorded with every prepared night."""
    text = json.dumps(config_to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a dict."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    elif suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config file {path} must end in .toml, .yaml, .yml or .json, got {suffix!r}")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping at the top level")
    return data

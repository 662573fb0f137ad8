"""Models by name, each rebuilt from a :class:`ModelSpec` that travels in its checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .._config import PRESETS, AdaptConfig, Architecture, Context, ModelConfig, get_preset
from .._validation import check_int
from .classifier import SleepClassifier
from .neuronet import NeuroNet, NeuroNetEncoder
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, TemporalContextModule

__all__ = ["MODELS", "ModelSpec", "build_model", "count_parameters", "describe_presets", "encoder_gflops",
           "model_from_preset"]

_MAX_CHANNELS = 64


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: architecture, sizes, channels, outputs, adapters.

    Parameters
    ----------
    architecture : str
        A key of :data:`MODELS`.
    config : ModelConfig
        Sizes (a preset, possibly with overrides).
    channels : tuple of str
        Canonical channels (fusion models and classifiers: one encoder each).
    n_outputs : int
        Classes (classifiers and heads).
    context : str
        ``epoch`` or ``sequence`` (classifiers).
    adapt : AdaptConfig | None
        Fine-tuning adapters of a sequence classifier.
    resolution_s : float | None
        Per-second classifiers: seconds per output (the task's ``resolution_s``).
    """

    architecture: Architecture
    config: ModelConfig
    channels: tuple[str, ...] = ()
    n_outputs: int = 0
    context: Context = "epoch"
    adapt: AdaptConfig | None = None
    resolution_s: float | None = None

    def __post_init__(self) -> None:
        if len(self.channels) > _MAX_CHANNELS or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be at most {_MAX_CHANNELS} distinct names, got {list(self.channels)}")
        if any(not 0 < len(c) <= 64 for c in self.channels):
            raise ValueError(f"channel names must be 1 to 64 characters, got {list(self.channels)}")
        if self.architecture in ("synthsleepnet", "sleep_classifier") and not self.channels:
            raise ValueError(f"a {self.architecture} model needs at least one channel")
        if self.architecture in ("sleep_classifier", "epoch_head"):
            check_int("n_outputs", self.n_outputs, 2, 1000)
        if self.resolution_s is not None and not 0.1 <= self.resolution_s <= self.config.encoder.epoch_s:
            raise ValueError(f"resolution_s must be between 0.1 s and the epoch length, got {self.resolution_s}")


def _epoch_head(spec: ModelSpec) -> nn.Module:
    temporal = spec.config.temporal
    return EpochHead(spec.config.fusion.fusion_dim, spec.n_outputs, temporal.hidden, temporal.dropout)


MODELS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "neuronet": lambda s: NeuroNet(s.config.encoder, s.config.neuronet),
    "synthsleepnet": lambda s: SynthSleepNet(s.channels, s.config.encoder, s.config.fusion),
    "sleep_classifier": lambda s: SleepClassifier(s.channels, s.config, s.n_outputs, s.context, s.adapt,
                                                  s.resolution_s),
    "epoch_head": _epoch_head,
}


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the model ``spec`` describes; an unknown architecture lists the registered ones."""
    if spec.architecture not in MODELS:
        raise ValueError(f"unknown model {spec.architecture!r}; registered models: {sorted(MODELS)}")
    return MODELS[spec.architecture](spec)


def model_from_preset(architecture: Architecture, preset: str | ModelConfig, *, channels: Sequence[str] = (),
                      n_outputs: int = 0, context: Context = "epoch", adapt: AdaptConfig | None = None
                      ) -> nn.Module:
    """Build ``architecture`` at a preset's size (a name, or a :class:`ModelConfig`)."""
    config = get_preset(preset) if isinstance(preset, str) else preset
    return build_model(ModelSpec(architecture, config, tuple(channels), n_outputs, context, adapt))


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def encoder_gflops(encoder: NeuroNetEncoder) -> dict[str, float]:
    """GFLOPs (2 × multiply-adds) of encoding one epoch of one channel, by part."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, encoder.epoch_samples)
    parts: dict[str, Callable[[torch.Tensor], Any]] = {
        "conv": encoder.backbone._conv_features, "frame_mlp": encoder.backbone.mlp,
        "transformer": encoder.encode_tokens}
    was_training = encoder.training
    encoder.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        conv_in = x if encoder.continuous else \
            x.unfold(-1, encoder.frame_samples, encoder.step_samples).reshape(-1, encoder.frame_samples)
        mlp_in = encoder.backbone._conv_features(conv_in)
        tokens = encoder.embed(encoder.backbone.mlp(mlp_in).reshape(1, encoder.n_frames, -1))
        for name, inputs in (("conv", conv_in), ("frame_mlp", mlp_in), ("transformer", tokens)):
            counter = FlopCounterMode(display=False)
            with counter:
                parts[name](inputs)
            out[name] = counter.get_total_flops() / 1e9
        counter = FlopCounterMode(display=False)
        with counter:
            encoder(x)
        out["total"] = counter.get_total_flops() / 1e9
    encoder.train(was_training)
    return out


def describe_presets(channels: Sequence[str] = ("C4-M1", "E1-M2", "Chin", "ECG")) -> list[dict[str, Any]]:
    """Parameter counts and encoder GFLOPs per 30-s epoch per modality, for every preset.

    ``synthsleepnet`` counts are for one encoder per channel in ``channels`` (the paper's four),
    with LoRA adapters; trainable excludes the frozen encoder weights.
    """
    rows = []
    for name, config in PRESETS.items():
        neuronet = NeuroNet(config.encoder, config.neuronet)
        fusion = SynthSleepNet(channels, config.encoder, config.fusion)
        temporal = TemporalContextModule(config.fusion.fusion_dim, 5, config.temporal)
        n_total, n_train = count_parameters(fusion)
        encoder = neuronet.encoder
        rows.append({
            "preset": name,
            "description": config.description,
            "neuronet_params": count_parameters(neuronet)[0],
            "neuronet_encoder_params": count_parameters(encoder)[0],
            "synthsleepnet_params": n_total,
            "synthsleepnet_trainable": n_train,
            "synthsleepnet_channels": list(channels),
            "temporal_params": count_parameters(temporal)[0],
            "gflops_per_epoch_per_modality": {k: round(v, 3) for k, v in encoder_gflops(encoder).items()},
        })
    return rows

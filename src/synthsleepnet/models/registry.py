"""Models by name, each rebuilt from a :class:`ModelSpec` that travels in its checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .._config import (
    PRESETS,
    AdaptConfig,
    Architecture,
    Context,
    ModelConfig,
    ModelSpec,
    get_preset,
)
from .classifier import SleepClassifier
from .neuronet import NeuroNet, NeuroNetEncoder
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, TemporalContextModule

__all__ = ["MODELS", "ModelSpec", "build_model", "count_parameters", "describe_presets", "encoder_gflops",
           "model_from_preset"]

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

"""Models by name, built from plain-dict configs that round-trip through checkpoints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .classifier import SleepClassifier
from .neuronet import NeuroNet, NeuroNetEncoder
from .presets import get_preset
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, TemporalContextModule

__all__ = ["MODELS", "build_model", "count_parameters", "describe_presets", "encoder_gflops", "get_config",
           "model_from_preset", "sleep_classifier_kwargs"]

MODELS: dict[str, type[nn.Module]] = {
    "neuronet": NeuroNet,
    "neuronet_encoder": NeuroNetEncoder,
    "synthsleepnet": SynthSleepNet,
    "temporal": TemporalContextModule,
    "epoch_head": EpochHead,
    "sleep_classifier": SleepClassifier,
}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build registered model ``name``; its config is kept for checkpoints (``get_config``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    model = MODELS[name](**kwargs)
    model.ssn_config = {"name": name, "kwargs": _jsonable(kwargs)}  # type: ignore[assignment]
    return model


def get_config(model: nn.Module) -> dict[str, Any]:
    """The ``{"name", "kwargs"}`` a model was built from (``build_model(**config)`` rebuilds it)."""
    config = getattr(model, "ssn_config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} was not built with build_model; it has no config")
    return dict(config)


def model_from_preset(name: str, preset: str, *, channels: Sequence[str] = (), n_outputs: int = 0,
                      in_dim: int | None = None) -> nn.Module:
    """Build ``neuronet``, ``synthsleepnet``, ``temporal`` or ``epoch_head`` at a preset's size."""
    p = get_preset(preset)
    if name in ("neuronet", "neuronet_encoder"):
        kwargs = {"encoder": p["encoder"], **p["neuronet"]} if name == "neuronet" else p["encoder"]
    elif name == "synthsleepnet":
        kwargs = {"channels": list(channels), "encoder": p["encoder"], **p["fusion"]}
    elif name == "temporal":
        kwargs = {"in_dim": in_dim or p["fusion"]["fusion_dim"], "n_outputs": n_outputs, **p["temporal"]}
    elif name == "epoch_head":
        kwargs = {"in_dim": in_dim or p["fusion"]["fusion_dim"], "n_outputs": n_outputs,
                  "hidden": p["temporal"]["hidden"], "dropout": p["temporal"]["dropout"]}
    elif name == "sleep_classifier":
        kwargs = sleep_classifier_kwargs(preset, channels, n_outputs, context="epoch")
    else:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    return build_model(name, **_jsonable(kwargs))


def sleep_classifier_kwargs(preset: str, channels: Sequence[str], n_outputs: int, *, context: str
                            ) -> dict[str, Any]:
    """Constructor arguments of a :class:`SleepClassifier` at a preset's size."""
    p = get_preset(preset)
    fusion = {"channels": list(channels), "encoder": p["encoder"], **p["fusion"]}
    if context == "epoch":
        head = {"hidden": p["temporal"]["hidden"], "dropout": p["temporal"]["dropout"]}
        return _jsonable({"fusion": fusion, "n_outputs": n_outputs, "context": "epoch", "head": head})
    head = {k: v for k, v in p["temporal"].items()}
    return _jsonable({"fusion": fusion, "n_outputs": n_outputs, "context": "sequence", "head": head,
                      "finetune_lora": {"rank": 4, "alpha": 8.0}})


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def encoder_gflops(encoder: NeuroNetEncoder) -> dict[str, float]:
    """GFLOPs (2 × multiply-adds) of encoding one epoch of one channel, by part."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, encoder.epoch_samples)
    parts = {"conv": encoder.backbone._conv_features, "frame_mlp": encoder.backbone.mlp,
             "transformer": encoder.encode_tokens}
    was_training = encoder.training
    encoder.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        frames = x.unfold(-1, encoder.frame_samples, encoder.step_samples).reshape(-1, encoder.frame_samples)
        conv_in = frames
        mlp_in = encoder.backbone._conv_features(frames)
        tokens = encoder.embed(encoder.backbone.mlp(mlp_in)[None])
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
    from .presets import PRESETS

    rows = []
    for name, preset in PRESETS.items():
        neuronet = model_from_preset("neuronet", name)
        fusion = model_from_preset("synthsleepnet", name, channels=channels)
        temporal = model_from_preset("temporal", name, n_outputs=5)
        n_total, n_train = count_parameters(fusion)
        rows.append({
            "preset": name,
            "description": preset["description"],
            "neuronet_params": count_parameters(neuronet)[0],
            "neuronet_encoder_params": count_parameters(neuronet.encoder)[0],
            "synthsleepnet_params": n_total,
            "synthsleepnet_trainable": n_train,
            "synthsleepnet_channels": list(channels),
            "temporal_params": count_parameters(temporal)[0],
            "gflops_per_epoch_per_modality": {k: round(v, 3) for k, v in encoder_gflops(neuronet.encoder).items()},
        })
    return rows

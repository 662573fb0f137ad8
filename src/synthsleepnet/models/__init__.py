"""Models: frame backbone, NeuroNet, SynthSleepNet fusion, Mamba2 temporal context, heads.

Names are imported on first use: the checkpoint schema (:mod:`.meta`) and :class:`ModelSpec` need
no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

_API: dict[str, str] = {
    "TransformerBlock": ".blocks",
    "check_compatible": ".checkpoint",
    "load_checkpoint": ".checkpoint",
    "load_classifier": ".checkpoint",
    "load_encoder": ".checkpoint",
    "load_neuronet": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "SleepClassifier": ".classifier",
    "FrameBackbone": ".frame_backbone",
    "fold_batchnorm": ".inference",
    "fuse_for_inference": ".inference",
    "LoRALinear": ".lora",
    "add_lora": ".lora",
    "merge_lora": ".lora",
    "Mamba2": ".mamba2",
    "CheckpointMeta": ".meta",
    "DataIdentity": ".meta",
    "read_checkpoint_meta": ".meta",
    "NeuroNet": ".neuronet",
    "NeuroNetEncoder": ".neuronet",
    "MODELS": ".registry",
    "ModelSpec": ".._config",
    "build_model": ".registry",
    "count_parameters": ".registry",
    "describe_presets": ".registry",
    "encoder_gflops": ".registry",
    "model_from_preset": ".registry",
    "SynthSleepNet": ".synthsleepnet",
    "EpochHead": ".temporal",
    "TemporalContextModule": ".temporal",
}

__all__ = [
    "MODELS",
    "CheckpointMeta",
    "DataIdentity",
    "EpochHead",
    "FrameBackbone",
    "LoRALinear",
    "Mamba2",
    "ModelSpec",
    "NeuroNet",
    "NeuroNetEncoder",
    "SleepClassifier",
    "SynthSleepNet",
    "TemporalContextModule",
    "TransformerBlock",
    "add_lora",
    "build_model",
    "check_compatible",
    "count_parameters",
    "describe_presets",
    "encoder_gflops",
    "fold_batchnorm",
    "fuse_for_inference",
    "load_checkpoint",
    "load_classifier",
    "load_encoder",
    "load_neuronet",
    "merge_lora",
    "model_from_preset",
    "read_checkpoint_meta",
    "save_checkpoint",
]

__getattr__, __dir__ = attach(__name__, _API, globals())

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .._config import ModelSpec
    from .blocks import TransformerBlock
    from .checkpoint import (
        check_compatible,
        load_checkpoint,
        load_classifier,
        load_encoder,
        load_neuronet,
        save_checkpoint,
    )
    from .classifier import SleepClassifier
    from .frame_backbone import FrameBackbone
    from .inference import fold_batchnorm, fuse_for_inference
    from .lora import LoRALinear, add_lora, merge_lora
    from .mamba2 import Mamba2
    from .meta import CheckpointMeta, DataIdentity, read_checkpoint_meta
    from .neuronet import NeuroNet, NeuroNetEncoder
    from .registry import (
        MODELS,
        build_model,
        count_parameters,
        describe_presets,
        encoder_gflops,
        model_from_preset,
    )
    from .synthsleepnet import SynthSleepNet
    from .temporal import EpochHead, TemporalContextModule

"""Models: frame backbone, NeuroNet, SynthSleepNet fusion, Mamba2 temporal context, heads."""

from .blocks import TransformerBlock
from .checkpoint import (
    CheckpointMeta,
    DataIdentity,
    check_compatible,
    load_checkpoint,
    load_classifier,
    load_encoder,
    load_neuronet,
    read_checkpoint_meta,
    save_checkpoint,
)
from .classifier import SleepClassifier
from .frame_backbone import FrameBackbone
from .lora import LoRALinear, add_lora, merge_lora
from .mamba2 import Mamba2
from .neuronet import NeuroNet, NeuroNetEncoder
from .registry import (
    MODELS,
    ModelSpec,
    build_model,
    count_parameters,
    describe_presets,
    encoder_gflops,
    model_from_preset,
)
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, TemporalContextModule

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
    "load_checkpoint",
    "load_classifier",
    "load_encoder",
    "load_neuronet",
    "merge_lora",
    "model_from_preset",
    "read_checkpoint_meta",
    "save_checkpoint",
]

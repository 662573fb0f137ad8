"""Models: frame backbone, NeuroNet, SynthSleepNet fusion, Mamba2 temporal context, heads."""

from .blocks import TransformerBlock
from .checkpoint import check_compatible, load_checkpoint, read_checkpoint_metadata, save_checkpoint
from .frame_backbone import FrameBackbone
from .lora import LoRALinear, add_lora, merge_lora
from .mamba2 import Mamba2
from .neuronet import NeuroNet, NeuroNetEncoder
from .presets import PRESETS, get_preset
from .registry import (
    MODELS,
    build_model,
    count_parameters,
    describe_presets,
    encoder_gflops,
    get_config,
    model_from_preset,
)
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, TemporalContextModule

__all__ = [
    "MODELS",
    "PRESETS",
    "EpochHead",
    "FrameBackbone",
    "LoRALinear",
    "Mamba2",
    "NeuroNet",
    "NeuroNetEncoder",
    "SynthSleepNet",
    "TemporalContextModule",
    "TransformerBlock",
    "add_lora",
    "build_model",
    "check_compatible",
    "count_parameters",
    "describe_presets",
    "encoder_gflops",
    "get_config",
    "get_preset",
    "load_checkpoint",
    "merge_lora",
    "model_from_preset",
    "read_checkpoint_metadata",
    "save_checkpoint",
]

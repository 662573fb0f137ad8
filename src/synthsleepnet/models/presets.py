"""Named model sizes. ``paper`` is the published configuration; ``small`` and ``tiny`` keep every
mechanism at a size a CPU can train (tests and the demo use ``tiny``)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PRESETS", "get_preset"]

_FRAMES = {"sfreq": 100.0, "epoch_s": 30.0, "frame_s": 4.0, "frame_step_s": 1.0}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "description": "published configuration (NeuroNet arXiv:2404.17585; SynthSleepNet)",
        "encoder": {**_FRAMES, "backbone": {"stem_channels": 64, "channels": (64, 128, 128, 256),
                                            "strides": (1, 1, 2, 2), "kernels": (3, 5, 7), "pools": (16, 11, 6)},
                    "embed_dim": 768, "depth": 4, "n_heads": 8},
        "neuronet": {"decoder_dim": 256, "decoder_depth": 3, "decoder_heads": 8, "projection": (1024, 512),
                     "mask_ratio": 0.8},
        "fusion": {"fusion_dim": 512, "fusion_depth": 4, "fusion_heads": 8, "decoder_dim": 256,
                   "decoder_depth": 3, "decoder_heads": 8, "projection": (512, 256), "mask_ratio": 0.4,
                   "lora_rank": 4, "lora_alpha": 16.0},
        "temporal": {"mixer": "mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "seq_len": 20,
                     "hidden": 256, "dropout": 0.5},
    },
    "small": {
        "description": "a quarter of the width: trains on a CPU in hours",
        "encoder": {**_FRAMES, "backbone": {"stem_channels": 32, "channels": (32, 64, 64, 128),
                                            "strides": (1, 1, 2, 2), "kernels": (3, 5, 7), "pools": (16, 11, 6)},
                    "embed_dim": 256, "depth": 4, "n_heads": 8},
        "neuronet": {"decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4, "projection": (512, 256),
                     "mask_ratio": 0.8},
        "fusion": {"fusion_dim": 256, "fusion_depth": 2, "fusion_heads": 8, "decoder_dim": 128,
                   "decoder_depth": 2, "decoder_heads": 4, "projection": (256, 128), "mask_ratio": 0.4,
                   "lora_rank": 4, "lora_alpha": 16.0},
        "temporal": {"mixer": "mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "seq_len": 20,
                     "hidden": 128, "dropout": 0.5},
    },
    "tiny": {
        "description": "every mechanism at toy size: tests and the demo",
        "encoder": {**_FRAMES, "backbone": {"stem_channels": 16, "channels": (16, 32, 32, 64),
                                            "strides": (1, 1, 2, 2), "kernels": (3, 5, 7), "pools": (16, 11, 6)},
                    "embed_dim": 64, "depth": 2, "n_heads": 4},
        "neuronet": {"decoder_dim": 64, "decoder_depth": 1, "decoder_heads": 4, "projection": (128, 64),
                     "mask_ratio": 0.8},
        "fusion": {"fusion_dim": 64, "fusion_depth": 1, "fusion_heads": 4, "decoder_dim": 32,
                   "decoder_depth": 1, "decoder_heads": 4, "projection": (64, 32), "mask_ratio": 0.4,
                   "lora_rank": 4, "lora_alpha": 16.0},
        "temporal": {"mixer": "mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "seq_len": 20,
                     "hidden": 64, "dropout": 0.5},
    },
}


def get_preset(name: str) -> dict[str, Any]:
    """A deep copy of preset ``name``; the error lists the valid names."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; presets: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])

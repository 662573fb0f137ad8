"""How much an exact restructuring of the overlapping frames could save the paper preset (issue #15).

The paper cuts each 30-s epoch into 27 overlapping 4-s frames, so its frame backbone sees every
sample 3.6 times. A layer whose output at a sample does not depend on which frame the sample is
in (away from the frame's edges) could run once over the continuous epoch and be sliced, the
edges recomputed. In this backbone those layers are the stem and, in each branch, the first
block's two convolutions (with their BatchNorm and activation): the squeeze-excitation that
follows scales every channel by its mean over the frame, so from there on each value depends on
its frame. This counts the FLOPs of one frame with torch's ``FlopCounterMode`` on the preset's
own encoder, splits them into those layers and the rest, and prints what computing those layers
once per epoch would save at most (edges for free), the night's FLOPs after it (960 epochs, 4
channels, as ``synthsleepnet models`` counts), and the seconds they need at least at this
machine's fp32 matrix-multiply peak (measured in the same run).

    python benchmarks/frame_overlap.py [--preset paper]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _measure import CHANNELS, describe_cpu, matmul_peak
from torch.utils.flop_counter import FlopCounterMode

from synthsleepnet._config import get_preset
from synthsleepnet.models.frame_backbone import FrameBackbone, _SEResBlock
from synthsleepnet.models.neuronet import NeuroNet
from synthsleepnet.models.registry import encoder_gflops

NIGHT_EPOCHS = 960


def _flops(run: Callable[..., Any], *args: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        run(*args)
    return float(counter.get_total_flops())


def _frame_local_flops(backbone: FrameBackbone, frame: torch.Tensor) -> float:
    """FLOPs of one frame in the layers that do not depend on the frame: the stem, and each
    branch's first block up to its squeeze-excitation."""
    stem_out = backbone.stem(frame)
    total = _flops(backbone.stem, frame)
    for branch in backbone.branches:
        block = next(iter(branch.children()))
        assert isinstance(block, _SEResBlock)
        first = block.conv1(stem_out)
        total += _flops(block.conv1, stem_out) + _flops(block.conv2, F.elu(block.bn1(first)))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    args = parser.parse_args()
    config = get_preset(args.preset)
    if config.encoder.frames != "overlapping":
        raise SystemExit(f"the {args.preset} preset runs its backbone once over the epoch already")
    encoder = NeuroNet(config.encoder, config.neuronet).encoder.eval()
    assert isinstance(encoder.backbone, FrameBackbone)
    frame = torch.zeros(1, encoder.frame_samples)
    conv = _flops(encoder.backbone._conv_features, frame)
    local = _frame_local_flops(encoder.backbone, frame)
    per_epoch = encoder_gflops(encoder)["total"] * 1e9
    overlap = encoder.n_frames * encoder.frame_samples / encoder.epoch_samples
    saved = local * encoder.n_frames * (1 - 1 / overlap)  # those layers on the epoch once instead of on 27 frames
    night = NIGHT_EPOCHS * len(CHANNELS)
    peak = matmul_peak()["fp32"] * 1e12
    print(describe_cpu())
    print(f"{args.preset}: {encoder.n_frames} frames of {encoder.frame_samples} samples per {encoder.epoch_samples}-"
          f"sample epoch ({overlap:.2f}x overlap)")
    print(f"per frame: convolutions {conv / 1e9:.4f} GFLOP, of which frame-independent (stem, each branch's first "
          f"block before its squeeze-excitation) {local / 1e9:.4f} GFLOP = {100 * local / conv:.1f} %")
    print(f"per epoch and channel: {per_epoch / 1e9:.2f} GFLOP now; computed once, those layers would save at most "
          f"{saved / 1e9:.2f} GFLOP ({100 * saved / per_epoch:.1f} %)")
    print(f"per 8-hour 4-channel night: {per_epoch * night / 1e12:.1f} TFLOP now, at best {(per_epoch - saved) * night / 1e12:.1f}"
          f" TFLOP after; at this machine's fp32 peak ({peak / 1e12:.3f} TFLOP/s) at least "
          f"{per_epoch * night / peak:.0f} s now and {(per_epoch - saved) * night / peak:.0f} s after")


if __name__ == "__main__":
    main()

"""NeuroNet encoder throughput: reference-style loop vs ours (fp32, bf16 autocast), same weights.

(a) reference style: a Python loop over the 27 frames, each through the CNN, fp32 — how the
    authors' code runs; (b) ours: frames from ``unfold``, batched in chunks, fp32;
(c) ours under bf16 autocast (AMX/AVX-512 on these CPUs). Also the max deviation of (c) from
(b) and where the time goes (conv / frame MLP / transformer).

    python benchmarks/encoder_speed.py [--presets paper small] [--batch 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import torch

from synthsleepnet._config import PRESETS, get_preset
from synthsleepnet._device import Runtime, cpu_supports_bf16
from synthsleepnet.models.neuronet import NeuroNetEncoder


def reference_style(encoder: NeuroNetEncoder, x: torch.Tensor) -> torch.Tensor:
    """The authors' way: one CNN call per frame position in a Python loop."""
    frames = x.unfold(-1, encoder.frame_samples, encoder.step_samples)
    conv = torch.stack([encoder.backbone._conv_features(frames[:, i]) for i in range(frames.shape[1])], dim=1)
    return encoder.encode_tokens(encoder.embed(encoder.backbone.mlp(conv)))


def _time(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - t0) / repeats, out


def _parts(encoder: NeuroNetEncoder, x: torch.Tensor, repeats: int) -> dict[str, float]:
    frames = x.unfold(-1, encoder.frame_samples, encoder.step_samples)
    flat = frames.reshape(-1, encoder.frame_samples)
    t_conv, conv = _time(lambda: torch.cat([encoder.backbone._conv_features(c)
                                            for c in flat.split(encoder.backbone.chunk_frames)]), repeats)
    t_mlp, feats = _time(lambda: encoder.backbone.mlp(conv), repeats)
    tokens = encoder.embed(feats.reshape(x.shape[0], -1, feats.shape[-1]))
    t_tr, _ = _time(lambda: encoder.encode_tokens(tokens), repeats)
    total = t_conv + t_mlp + t_tr
    return {"conv": t_conv / total, "frame MLP": t_mlp / total, "transformer": t_tr / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    overlapping = [name for name, config in PRESETS.items() if config.encoder.frames == "overlapping"]
    parser.add_argument("--presets", nargs="+", default=["paper", "small"], choices=overlapping,
                        help="presets with overlapping frames (the reference loop is over them)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"bf16 CPU support: {cpu_supports_bf16()}")
    for preset in args.presets:
        torch.manual_seed(0)
        encoder = NeuroNetEncoder(get_preset(preset).encoder).eval()
        x = torch.randn(args.batch, encoder.epoch_samples)
        with torch.inference_mode():
            t_ref, ref = _time(functools.partial(reference_style, encoder, x), args.repeats)
            t_fp32, out32 = _time(functools.partial(encoder, x), args.repeats)
            with Runtime(torch.device("cpu"), torch.bfloat16).autocast():
                t_bf16, out16 = _time(functools.partial(encoder, x), args.repeats)
            parts = _parts(encoder, x, args.repeats)
        deviation = (out16.float() - out32).abs().max().item()
        scale = out32.abs().max().item()
        loop_gap = (ref - out32).abs().max().item()
        n = args.batch
        print(f"\n[{preset}] batch {n} epochs, one channel")
        print(f"  (a) reference-style frame loop, fp32 : {n / t_ref:8.1f} epochs/s")
        print(f"  (b) ours, unfold + chunks, fp32       : {n / t_fp32:8.1f} epochs/s  ({t_ref / t_fp32:.2f}x (a))")
        print(f"  (c) ours, bf16 autocast               : {n / t_bf16:8.1f} epochs/s  ({t_ref / t_bf16:.2f}x (a))")
        print(f"  max |c - b| = {deviation:.3g} (outputs up to {scale:.3g}); max |a - b| = {loop_gap:.2g}")
        print("  fp32 time by part: " + ", ".join(f"{k} {v:.0%}" for k, v in parts.items()))


if __name__ == "__main__":
    main()

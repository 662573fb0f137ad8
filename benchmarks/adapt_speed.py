"""Fine-tuning speed with and without the frozen-convolution cache, same data and schedule.

Simulates a few nights, prepares them, and fine-tunes the staging model (``tiny`` by default,
LoRA + Mamba2 temporal module, 20-epoch windows of 4 channels, batch 4) twice from the same
random fusion: once recomputing the frozen convolutions at every step, once from the cache
(``AdaptConfig.cache_conv``). Prints seconds per step, the one-off cost of the cache, the steps
an equal wall time buys, and the largest weight difference between the two results.

    python benchmarks/adapt_speed.py [--preset tiny] [--steps 20] [--nights 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _measure import CHANNELS
from safetensors.torch import load_file

from synthsleepnet import prepare_store
from synthsleepnet._config import AdaptConfig, TrainConfig
from synthsleepnet.simulate import simulate_cohort
from synthsleepnet.training import assign_splits, finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--hours", type=float, default=1.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        simulate_cohort(work / "rec", args.nights, args.hours, seed=3, progress=False)
        prepare_store(work / "rec", work / "store", progress=False)
        assign_splits(work / "store", fractions={"pretrain": 0.0, "train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
        seconds: dict[tuple[bool, int], float] = {}
        weights = {}
        short = max(1, args.steps // 4)
        for cached in (False, True):
            for steps in (short, args.steps):
                config = TrainConfig(epochs=1, batch_size=4, max_steps_per_epoch=steps, seed=0)
                t0 = time.perf_counter()
                result = finetune(work / "store", "stage", 1.0, work / f"run-{cached}-{steps}", preset=args.preset,
                                  channels=CHANNELS, config=config, adapt=AdaptConfig(cache_conv=cached),
                                  progress=False)
                seconds[cached, steps] = time.perf_counter() - t0
            weights[cached] = load_file(str(result.checkpoint))
    print(f"{args.preset} fine-tuning, {args.nights} simulated {args.hours:g}-h nights (60 % train, 20 % validation), "
          f"batches of 4 windows × 20 epochs × {len(CHANNELS)} channels; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; runs of {short} and {args.steps} steps separate the cost per step "
          "from the run's fixed cost (model, data, validation, and the cache when on)")
    print("| | per step | fixed per run | a 1-hour budget buys |\n|---|---|---|---|")
    per_step = {}
    for cached in (False, True):
        per_step[cached] = (seconds[cached, args.steps] - seconds[cached, short]) / (args.steps - short)
        fixed = seconds[cached, short] - short * per_step[cached]
        name = "cached convolutions" if cached else "convolutions every step"
        print(f"| {name} | {per_step[cached]:.3f} s | {fixed:.1f} s | {(3600 - fixed) / per_step[cached]:,.0f} steps |")
    print(f"steps per second: {per_step[False] / per_step[True]:.1f}x with the cache")
    diff = max((weights[True][k].float() - weights[False][k].float()).abs().max().item() for k in weights[True])
    print(f"max weight difference between the two {args.steps}-step runs: {diff:.2g}")


if __name__ == "__main__":
    main()

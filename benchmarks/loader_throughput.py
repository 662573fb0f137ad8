"""Epochs per second the training data pipeline delivers (no model), by loader workers and cache.

Builds a store of simulated nights, then runs the same DataLoader the training loop builds
(seeded `EpochSampler`, batches of 256 epoch-channels for unimodal pretraining; batches of 32
windows of 20 epochs for fine-tuning) with 0, 1, 2 and 4 worker processes, with a warm page
cache and with every night evicted from it before the run (cold). Counts epoch-channels: what a
GPU consumes.

    python benchmarks/loader_throughput.py [--nights 8] [--hours 8] [--batches 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from synthsleepnet import EpochStore, prepare_store
from synthsleepnet.simulate import simulate_cohort
from synthsleepnet.training.data import ChannelEpochs, Windows
from synthsleepnet.training.loop import EpochSampler

PRETRAIN_BATCH = 256
WINDOW_BATCH = 32


def _measure(store: EpochStore, kind: str, workers: int, cold: bool, batches: int) -> float:
    """Epoch-channels per second over ``batches`` batches (after one warm-up batch)."""
    nights = store.night_ids
    if kind == "pretrain":
        data: ChannelEpochs | Windows = ChannelEpochs(store, nights, ["C4-M1", "C3-M2", "E1-M2", "E2-M2"])
        batch, per_item = PRETRAIN_BATCH, 1
    else:
        channels = ["C4-M1", "E1-M2", "Chin", "ECG"]
        data = Windows(store, nights, channels, length=20, stride=10)
        batch, per_item = WINDOW_BATCH, 20 * len(channels)
    sampler = EpochSampler(len(data), seed=0)
    loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
                        collate_fn=torch.utils.data.default_collate)
    batches = min(batches, len(loader) - 1)
    if cold:
        store.drop_cache()
    iterator = iter(loader)
    next(iterator)  # workers start; not counted
    t0 = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - t0
    del iterator, loader
    return batches * batch * per_item / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=8)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2, 4])
    parser.add_argument("--workdir", help="keep the store here (default: a temporary folder)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores, on purpose
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        if not (work / "store" / "store.json").exists():
            simulate_cohort(work / "sim", args.nights, args.hours, seed=900, progress=False)
            prepare_store(work / "sim", work / "store", workers=2, progress=False)
        store = EpochStore(work / "store")
        size = sum(f.stat().st_size for f in (work / "store" / "nights").rglob("signals.npy")) / 2**20
        print(f"store: {len(store)} nights × {args.hours:g} h, {store.summary()['epochs']} epochs × "
              f"{len(store.night(store.night_ids[0]).channels)} channels, {size:.0f} MB of float16 signals; "
              f"{torch.get_num_threads()} CPU threads")
        print("| data | workers | warm cache (epoch-channels/s) | cold cache |")
        print("|---|---|---|---|")
        for kind, label in (("pretrain", "random epochs (pretraining), batch 256"),
                            ("windows", "20-epoch windows × 4 channels (fine-tuning), batch 32")):
            for workers in args.workers:
                warm = _measure(store, kind, workers, cold=False, batches=args.batches)
                cold = _measure(store, kind, workers, cold=True, batches=args.batches)
                print(f"| {label} | {workers} | {warm:,.0f} | {cold:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""Random-access speed of the epoch store from a cold page cache.

Simulates a cohort (8-hour nights), prepares it into a store, then reads random batches of 256
epochs, evicting every night's pages from the OS cache before each batch (posix_fadvise
DONTNEED), and prints epochs/s. Side by side, in the same run: the same reads through a
memory-mapped ``np.load(mmap_mode="r")`` of the same files, also cold.

    python benchmarks/store_random_access.py [--nights 8] [--hours 8] [--batches 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from synthsleepnet import EpochStore, prepare_store
from synthsleepnet.simulate import simulate_cohort


def _pread_batches(store: EpochStore, batches: int, batch: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    elapsed = 0.0
    for _ in range(batches):
        store.drop_cache()
        t0 = time.perf_counter()
        store.random_epochs(rng, batch)
        elapsed += time.perf_counter() - t0
    return batches * batch / elapsed


def _mmap_batches(store: EpochStore, batches: int, batch: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    counts = store.manifest["n_epochs"].to_numpy()
    bounds = np.cumsum(counts)
    elapsed = 0.0
    for _ in range(batches):
        store.drop_cache()
        t0 = time.perf_counter()
        flat = np.sort(rng.choice(int(counts.sum()), size=batch, replace=False))
        which = np.searchsorted(bounds, flat, side="right")
        for pos in np.unique(which):
            arr = np.load(store.path / "nights" / store.night_ids[pos] / "signals.npy", mmap_mode="r")
            np.asarray(arr[flat[which == pos] - (bounds[pos] - counts[pos])], dtype=np.float32)
        elapsed += time.perf_counter() - t0
    return batches * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=8)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workdir", help="keep the cohort and store here (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        t0 = time.perf_counter()
        simulate_cohort(work / "recordings", args.nights, args.hours, seed=100)
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepare_store(work / "recordings", work / "store", workers=2)
        t_prep = time.perf_counter() - t0
        store = EpochStore(work / "store")
        summary = store.summary()
        night_mb = (work / "store" / "nights" / store.night_ids[0] / "signals.npy").stat().st_size / 1e6
        print(f"store: {summary['nights']} nights, {summary['epochs']} epochs, "
              f"{len(store.night(store.night_ids[0]).channels)} channels, {night_mb:.0f} MB per night (float16)")
        print(f"simulate {t_sim:.1f} s, prepare {t_prep:.1f} s ({t_prep / args.nights:.1f} s per night, 2 workers)")
        pread = _pread_batches(store, args.batches, args.batch_size, 0)
        mmap = _mmap_batches(store, args.batches, args.batch_size, 0)
        print(f"cold random batches of {args.batch_size}: pread store {pread:,.0f} epochs/s | "
              f"np.load(mmap) {mmap:,.0f} epochs/s | ratio {pread / mmap:.1f}x")
        print(f"target >= 5,000 epochs/s: {'met' if pread >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()

"""Preparing a cohort at scale: the local process pool against a Dask LocalCluster, same nights.

Simulates ``--nights`` nights (default 100 of 1 h), then prepares them into two stores — with
``prepare_store(workers=N)`` and with ``engine="dask"`` on a ``LocalCluster`` of N single-thread
worker processes — and prints nights/s, nights/s per core, recorded hours per second per core
and the store size per recorded hour; then the arithmetic for SHHS-1 (5,793 nights of ≈ 8.5 h)
and for 65,000 nights at that rate per core.

    python benchmarks/prepare_scale.py [--nights 100] [--hours 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from synthsleepnet import prepare_store
from synthsleepnet.simulate import simulate_cohort


def _size_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=100)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        simulate_cohort(work / "rec", args.nights, args.hours, seed=100, progress=False)
        print(f"simulated {args.nights} nights of {args.hours:g} h in {time.perf_counter() - t0:.0f} s")
        seconds = {}
        t0 = time.perf_counter()
        local = prepare_store(work / "rec", work / "local", workers=args.workers, progress=False)
        seconds["local process pool"] = time.perf_counter() - t0
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster:
            t0 = time.perf_counter()
            dask = prepare_store(work / "rec", work / "dask", engine="dask", scheduler=cluster.scheduler_address,
                                 progress=False)
            seconds["Dask LocalCluster"] = time.perf_counter() - t0
        assert local.ok and dask.ok and len(local.prepared) == len(dask.prepared) == args.nights
        per_hour_gb = _size_gb(work / "local" / "nights") / (args.nights * args.hours)
    cores = args.workers
    print(f"\n{args.nights} simulated {args.hours:g}-h nights (10 channels, EDF+ and NSRR XML), "
          f"{cores} worker processes, one night per task\n")
    print("| engine | wall time | nights/s | nights/s/core | recorded h/s/core |\n|---|---|---|---|---|")
    for name, s in seconds.items():
        rate = args.nights / s
        print(f"| {name} | {s:.0f} s | {rate:.2f} | {rate / cores:.2f} | {rate * args.hours / cores:.2f} |")
    slowest = max(seconds.values())
    hours_per_core_s = args.nights * args.hours / slowest / cores
    print(f"\nstore size: {per_hour_gb * 1000:.0f} MB per recorded hour ({per_hour_gb * 8.5:.2f} GB per 8.5-h night)")
    for name, nights in (("SHHS-1", 5793), ("65,000 nights", 65000)):
        core_h = nights * 8.5 / hours_per_core_s / 3600
        print(f"{name}: {nights} nights × 8.5 h = {core_h:,.0f} core-hours at the slower engine's rate; "
              f"{_duration(core_h / 64)} on 64 cores, {_duration(core_h / 512)} on 512; store "
              f"{nights * 8.5 * per_hour_gb / 1000:.1f} TB")


if __name__ == "__main__":
    main()

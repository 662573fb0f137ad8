"""Scoring speed: one 8-hour night end to end, next to YASA, and a batch of nights.

Simulates one 8-hour night (EDF+), then runs each scorer in its own fresh process, timed from
the process start to its exit (imports included, as a user waits for them): the `synthsleepnet
score` command with the `fast`, `tiny`, `small` and `paper` presets (4 channels, stage model with
the Mamba2 temporal module, every export and the report; weights untrained, which does not change
the cost) and YASA 0.8.1's stager on the same EDF. Prints wall time, peak memory (VmHWM; for ours
also the read-ahead worker's, which has exited before the model runs), the models' own seconds
and their TFLOP/s (beside the machine's own matrix-multiply peak); then a batch of 20 nights scored by one
`synthsleepnet score FOLDER`, with one worker and with two (nights per hour), and the time of
`synthsleepnet --help` (the fastest of 5). Run it where YASA is installed (``make bench-env``):

    .venv-bench/bin/python benchmarks/score_night.py [--hours 8] [--presets fast tiny small paper]
        [--repeats 1] [--batch 20] [--batch-for fast] [--batch-workers 1 2]

A shared machine's speed drifts by 10–20 % over minutes, so two models are compared with
``--repeats N``: the scorers run in turn, N rounds, and each row is the medians of its N runs.

``--presets`` also takes model variants, files like ``benchmarks/model_variants/*.toml`` whose
``[model]`` section changes a preset's fields (a row named by the file).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _measure import CHANNELS, describe_cpu, matmul_peak, peak_rss_mb

if TYPE_CHECKING:  # the timed children import only what scoring imports
    from synthsleepnet._config import ModelConfig


def _models(entries: list[str]) -> dict[str, ModelConfig]:
    """The models to time: presets by name, and variants from ``--config``-style files (a
    ``[model]`` section, e.g. ``benchmarks/model_variants/*.toml``) named by the file."""
    from synthsleepnet._config import get_preset, load_run_config

    models: dict[str, ModelConfig] = {}
    for entry in entries:
        is_file = bool(Path(entry).suffix)
        name = Path(entry).stem if is_file else entry
        if name in models or name in ("yasa", "peak"):  # a row each; the children's other kinds
            raise ValueError(f"--presets: {entry!r} would be a second row named {name!r}")
        models[name] = load_run_config(entry).model_config() if is_file else get_preset(entry)
    return models


def _checkpoint(name: str, config: ModelConfig, workdir: Path) -> Path:
    import torch

    from synthsleepnet import PreprocessingConfig
    from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint

    path = workdir / f"{name}.safetensors"
    torch.manual_seed(0)
    spec = ModelSpec("sleep_classifier", config, CHANNELS, 5, "sequence")
    meta = CheckpointMeta(phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig())
    save_checkpoint(path, build_model(spec), meta)
    return path


def _gflop_per_epoch_channel(config: ModelConfig) -> float:
    """Counted in the parent: the FLOP counter's own start-up is no part of scoring."""
    from synthsleepnet.models import encoder_gflops
    from synthsleepnet.models.neuronet import NeuroNetEncoder

    return float(encoder_gflops(NeuroNetEncoder(config.encoder))["total"])


def _ours(edf: str, preset: str, workdir: str) -> dict[str, float]:
    """`synthsleepnet score` as the command runs it (the night read in a worker while torch loads),
    with the model's own seconds taken from its log record."""
    import logging

    from synthsleepnet.cli import main

    seconds: list[float] = []

    def model_seconds(record: logging.LogRecord) -> bool:  # a filter: the command replaces the handlers
        seconds.extend([record.model_seconds] if hasattr(record, "model_seconds") else [])
        return True

    logging.getLogger("synthsleepnet").addFilter(model_seconds)
    status = main(["-v", "score", edf, "--model", str(Path(workdir) / f"{preset}.safetensors"), "--out",
                   str(Path(workdir) / f"out-{preset}"), "--overwrite", "--device", "cpu"])
    if status or len(seconds) != 1:
        raise RuntimeError(f"synthsleepnet score failed (status {status})")
    summary = json.loads((Path(workdir) / f"out-{preset}" / "summary.json").read_text())
    # The read-ahead worker's peak (its pages shared with this process at the fork included); it
    # has exited before the model runs, so the two peaks do not coincide.
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"model_seconds": seconds[0], "epochs": summary["n_epochs"], "worker_rss_mb": worker_mb}


def _yasa(edf: str) -> dict[str, float]:
    import warnings

    import mne
    import yasa

    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = yasa.SleepStaging(raw, eeg_name="EEG C4-M1", eog_name="EOG E1-M2", emg_name="EMG Chin").predict()
    return {"model_seconds": time.perf_counter() - t0, "epochs": len(getattr(pred, "hypno", pred))}


def _child(kind: str, edf: str, workdir: str) -> None:
    if kind == "peak":
        sys.stdout.write(json.dumps(matmul_peak()) + "\n")
        return
    out = _yasa(edf) if kind == "yasa" else _ours(edf, kind, workdir)
    out["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    if kind == "yasa":
        gc.freeze()  # YASA's script exits normally, spared the final garbage collection
        return
    from synthsleepnet.cli import exit_now

    exit_now(0)  # as the `synthsleepnet` command ends (cli.run)


def _timed(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--presets", nargs="+", default=["fast", "tiny", "small", "paper"],
                        help="preset names, or files whose [model] section changes a preset's fields")
    parser.add_argument("--batch", type=int, default=20, help="nights in the batch rows (0: none)")
    parser.add_argument("--batch-for", nargs="+", metavar="NAME",
                        help="the rows (preset or variant file names) that get a batch row (default: the first)")
    parser.add_argument("--batch-workers", nargs="+", type=int, default=[1, 2], metavar="N",
                        help="a batch row for each `score --workers N` (default: 1 and 2)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of every scorer in turn; each row is the medians of its runs")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    try:
        models = _models(args.presets)
    except (ValueError, OSError) as err:  # a ConfigError is a ValueError
        parser.error(str(err))
    batch_for = args.batch_for or list(models)[:1]
    if unknown := sorted(set(batch_for) - set(models)):
        parser.error(f"--batch-for: {unknown} are not among the rows {list(models)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if min(args.batch_workers) < 1:
        parser.error(f"--batch-workers must each be at least 1, got {args.batch_workers}")
    from synthsleepnet.simulate import simulate_night, write_night

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        edf, _ = write_night(simulate_night(7, args.hours), work / "night")
        for name, config in models.items():
            _checkpoint(name, config, work)
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in ["yasa", *models]}
        for _ in range(args.repeats):
            for kind, done in runs.items():
                wall, out = _timed([sys.executable, __file__, "--child", kind, str(edf), tmp])
                done.append({"wall": wall, **json.loads(out.strip().splitlines()[-1])})
        rows = {kind: {key: statistics.median(run[key] for run in done) for key in done[0]}
                for kind, done in runs.items()}
        for kind, row in rows.items():
            gflop = float("nan") if kind == "yasa" else _gflop_per_epoch_channel(models[kind])
            row["tflops"] = gflop * row["epochs"] * len(CHANNELS) / 1e3 / row["model_seconds"]
        help_s = min(_timed([str(Path(sys.executable).with_name("synthsleepnet")), "--help"])[0] for _ in range(5))
        yasa = rows["yasa"]["wall"]
        from synthsleepnet._device import resolve_runtime

        rounds = f"; medians of {args.repeats} rounds, the scorers in turn" if args.repeats > 1 else ""
        print(f"one {args.hours:g}-h night ({rows['yasa']['epochs']:.0f} epochs) on {describe_cpu()}, precision "
              f"{resolve_runtime('cpu').precision}; each scorer in a fresh process timed from its start to its "
              f"exit{rounds}")
        print("| scorer | wall time | vs YASA | peak memory | model seconds | model TFLOP/s |")
        print("|---|---|---|---|---|---|")
        for kind, row in rows.items():
            name = "YASA 0.8.1 (same EDF)" if kind == "yasa" else f"SynthSleepNet `{kind}`, 4 channels"
            tflops = "–" if row["tflops"] != row["tflops"] else f"{row['tflops']:.3f}"
            worker = f" (worker {row['worker_rss_mb'] / 1024:.2f})" if "worker_rss_mb" in row else ""
            print(f"| {name} | {row['wall']:.1f} s | {yasa / row['wall']:.2f}x | {row['peak_rss_mb'] / 1024:.2f} GB{worker} | "
                  f"{row['model_seconds']:.1f} s | {tflops} |")
        if args.batch:
            folder = work / "batch"
            folder.mkdir()
            for i in range(args.batch):  # one night, linked under 20 names: the cost is the same
                (folder / f"night{i:02d}.edf").symlink_to(edf)
        for name, workers in [(name, n) for name in batch_for for n in args.batch_workers] if args.batch else []:
            batch_s, _ = _timed([str(Path(sys.executable).with_name("synthsleepnet")), "score", str(folder),
                                 "--model", str(work / f"{name}.safetensors"), "--out",
                                 str(work / f"batch-{name}-{workers}"), "--quiet", "--device", "cpu",
                                 "--workers", str(workers)])
            print(f"| batch: `synthsleepnet score FOLDER --workers {workers}` of {args.batch} nights, `{name}` | "
                  f"{batch_s:.0f} s | {3600 * args.batch / batch_s:,.0f} nights/hour | | | |")
        print(f"\n`synthsleepnet --help`: {help_s:.2f} s (the fastest of 5)")
        _, out = _timed([sys.executable, __file__, "--child", "peak", str(edf), tmp])
        peak = json.loads(out.strip().splitlines()[-1])
        print("this machine's matrix-multiply peak (4096³, all cores): "
              + ", ".join(f"{name} {tflops:.3f} TFLOP/s" for name, tflops in peak.items()))
        scoring = "bf16" if "bf16" in peak else "fp32"
        from synthsleepnet._config import get_preset

        paper = _gflop_per_epoch_channel(get_preset("paper")) * rows["yasa"]["epochs"] * len(CHANNELS) / 1e3
        print(f"the paper preset's {paper:.1f} TFLOP per night take ≥ {paper / peak[scoring]:.0f} s at the {scoring} "
              f"peak; 40 s would need {paper / 40:.2f} TFLOP/s")


if __name__ == "__main__":
    main()

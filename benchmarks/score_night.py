"""Wall time and peak memory of scoring one 8-hour night end to end, next to YASA.

Simulates one night (EDF+), then in separate processes (so peak memory is each one's own):
SynthSleepNet scoring with the ``paper`` and ``small`` presets (read → preprocess → encode 4
channels → Mamba2 temporal module → outputs and report; weights are untrained, which does not
change the cost), and YASA's stager on the same EDF. Run it where YASA is installed
(``make bench-env``):

    .venv-bench/bin/python benchmarks/score_night.py [--hours 8] [--presets paper small]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import peak_rss_mb

CHANNELS = ["C4-M1", "E1-M2", "Chin", "ECG"]


def _ours(edf: str, preset: str, workdir: str) -> dict[str, float]:
    import torch

    from synthsleepnet import PreprocessingConfig, score_night
    from synthsleepnet._config import get_preset
    from synthsleepnet.models import CheckpointMeta, ModelSpec, build_model, save_checkpoint

    torch.manual_seed(0)
    spec = ModelSpec("sleep_classifier", get_preset(preset), tuple(CHANNELS), 5, "sequence")
    meta = CheckpointMeta(phase="finetune", spec=spec, task="stage", preprocessing=PreprocessingConfig())
    ckpt = save_checkpoint(Path(workdir) / f"{preset}.safetensors", build_model(spec), meta)
    t0 = time.perf_counter()
    night = score_night(edf, [ckpt], Path(workdir) / f"out-{preset}", overwrite=True)
    return {"seconds": time.perf_counter() - t0, "epochs": night.result.n_epochs}


def _yasa(edf: str) -> dict[str, float]:
    import warnings

    import mne
    import yasa

    t0 = time.perf_counter()
    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = yasa.SleepStaging(raw, eeg_name="EEG C4-M1", eog_name="EOG E1-M2", emg_name="EMG Chin").predict()
    return {"seconds": time.perf_counter() - t0, "epochs": len(getattr(pred, "hypno", pred))}


def _child(kind: str, edf: str, workdir: str) -> None:
    out = _yasa(edf) if kind == "yasa" else _ours(edf, kind, workdir)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--presets", nargs="+", default=["paper", "small"])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from synthsleepnet.simulate import simulate_night, write_night

    with tempfile.TemporaryDirectory() as tmp:
        edf, _ = write_night(simulate_night(7, args.hours), tmp)
        rows = {}
        for kind in [*args.presets, "yasa"]:
            proc = subprocess.run([sys.executable, __file__, "--child", kind, str(edf), tmp],
                                  capture_output=True, text=True, check=True)
            rows[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{kind:<6} {rows[kind]['seconds']:7.1f} s  peak {rows[kind]['peak_rss_mb']:6.0f} MB  "
                  f"({rows[kind]['epochs']} epochs)", flush=True)
        base = rows["yasa"]["seconds"]
        print(f"\none {args.hours:g}-h night, 2 CPU cores; SynthSleepNet with 4 channels (C4-M1, E1-M2, Chin, ECG), "
              "bf16 autocast, stage model with the Mamba2 temporal module, all outputs and the report")
        for kind in args.presets:
            print(f"  {kind}: {rows[kind]['seconds'] / base:.1f}x YASA's time")


if __name__ == "__main__":
    main()

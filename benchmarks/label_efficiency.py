"""The paper's central claim on the simulator: pretraining helps when labels are few.

Builds a simulated cohort, pretrains NeuroNet per modality and SynthSleepNet fusion on the
pretraining subjects (no labels), then for stage, apnea and hypopnea × {1 %, 5 %, 100 %} of the
labelled-train epochs trains three models and evaluates each on the held-out test subjects:

- scratch: the fine-tuning protocol (LoRA + Mamba2 temporal module + head) from random weights;
- probe: frozen pretrained encoder, MLP head on single epochs;
- fine-tune: the fine-tuning protocol from the pretrained fusion model.

Staging uses the paper's four channels (EEG, EOG, EMG, ECG); apnea and hypopnea use EEG (arousals),
ECG (heart rate), nasal airflow and SpO2, as a clinician scores them when they are recorded. One
fusion model, pretrained on all six modalities, serves both (a classifier may use any subset of
its channels), and four channels per task keep every task at the same cost. Everything uses the
``tiny`` preset and short schedules to finish in about an hour on 2 CPU cores; the schedule and
the time of each phase are printed with the table.

    python benchmarks/label_efficiency.py [--nights 36] [--hours 1.5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from synthsleepnet import prepare_store
from synthsleepnet._config import TrainConfig
from synthsleepnet.io.channels import load_channel_table
from synthsleepnet.models import read_checkpoint_meta
from synthsleepnet.simulate import simulate_cohort
from synthsleepnet.training import (
    assign_splits,
    evaluate,
    finetune,
    pretrain_multimodal,
    pretrain_unimodal,
    probe,
)

TASKS = ("stage", "apnea", "hypopnea")
FRACTIONS = (0.01, 0.05, 1.0)
MODALITIES = ("eeg", "eog", "emg", "ecg", "resp", "spo2")
TASK_MODALITIES = {"stage": ("eeg", "eog", "emg", "ecg"), "apnea": ("eeg", "ecg", "resp", "spo2"),
                   "hypopnea": ("eeg", "ecg", "resp", "spo2")}
SUBJECTS = {"train": 6, "val": 2, "test": 3}  # the rest pretrain


def _channels_for(task: str, fusion_channels: list[str]) -> list[str]:
    modality = load_channel_table().modality
    return [c for c in fusion_channels if modality[c] in TASK_MODALITIES[task]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=36)
    parser.add_argument("--hours", type=float, default=1.5)
    parser.add_argument("--pretrain-steps", type=int, default=80)
    parser.add_argument("--tune-steps", type=int, default=12, help="fine-tuning steps per epoch")
    parser.add_argument("--tune-epochs", type=int, default=2)
    parser.add_argument("--workdir", help="keep everything here (default: a temporary folder)")
    args = parser.parse_args()
    if args.nights <= sum(SUBJECTS.values()):
        parser.error(f"--nights must exceed the {sum(SUBJECTS.values())} labelled subjects")
    clock = {"start": time.perf_counter()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        simulate_cohort(work / "recordings", args.nights, args.hours, seed=500, progress=False)
        prepare_store(work / "recordings", work / "store", workers=2, progress=False)
        fractions = {k: v / args.nights for k, v in SUBJECTS.items()}
        fractions["pretrain"] = 1 - sum(fractions.values())
        assign_splits(work / "store", fractions=fractions, seed=0, overwrite=True)
        clock["data"] = time.perf_counter()
        again = {"resume": True, "progress": False}  # a rerun with --workdir reuses finished runs
        pre = TrainConfig(epochs=1, batch_size=32, base_lr=8e-3, max_steps_per_epoch=args.pretrain_steps)
        encoders = {m: pretrain_unimodal(work / "store", m, work / "runs" / m, config=pre, **again).checkpoint
                    for m in MODALITIES}
        fusion = pretrain_multimodal(work / "store", encoders, work / "runs" / "fusion", config=pre, **again).checkpoint
        fusion_channels = read_checkpoint_meta(fusion).channels
        clock["pretraining"] = time.perf_counter()
        tune = TrainConfig(epochs=args.tune_epochs, batch_size=4, base_lr=0.192, max_steps_per_epoch=args.tune_steps)
        probing = TrainConfig(epochs=100, batch_size=256, base_lr=1e-3)
        rows = []
        for task in TASKS:
            channels = _channels_for(task, fusion_channels)
            for fraction in FRACTIONS:
                tag = f"{task}-{fraction:g}"
                runs = {
                    "scratch": finetune(work / "store", task, fraction, work / "runs" / f"scratch-{tag}",
                                        preset="tiny", channels=channels, config=tune, **again),
                    "probe": probe(work / "store", task, fraction, work / "runs" / f"probe-{tag}",
                                   fusion_checkpoint=fusion, channels=channels, config=probing, **again),
                    "fine-tune": finetune(work / "store", task, fraction, work / "runs" / f"finetune-{tag}",
                                          fusion_checkpoint=fusion, channels=channels, config=tune, **again),
                }
                for name, result in runs.items():
                    m = evaluate(result.checkpoint, work / "store")
                    rows.append({"task": task, "labels": fraction, "model": name, "macro_f1": m["macro_f1"],
                                 "kappa": m["kappa"], "auroc": m.get("auroc"), "auprc": m.get("auprc"),
                                 "n_test_epochs": m["n_epochs"]})
                    print(f"{task:<9} {fraction:>5.0%} {name:<9} macro-F1 {m['macro_f1']:.3f}  kappa {m['kappa']:.3f}"
                          + (f"  AUROC {m['auroc']:.3f}" if m.get("auroc") is not None else ""), flush=True)
            clock[task] = time.perf_counter()
        _report(args, rows, clock, {t: _channels_for(t, fusion_channels) for t in TASKS})
        (work / "label_efficiency.json").write_text(json.dumps(
            {"rows": rows, "seconds": clock[TASKS[-1]] - clock["start"], "args": vars(args),
             "pretrain": dataclasses.asdict(pre), "tune": dataclasses.asdict(tune),
             "probe": dataclasses.asdict(probing)}, indent=1))


def _report(args: argparse.Namespace, rows: list[dict], clock: dict[str, float], channels: dict[str, list[str]]) -> None:
    labelled = sum(SUBJECTS.values())
    print(f"\n{args.nights} simulated {args.hours:g}-h nights ({args.nights - labelled}/{SUBJECTS['train']}/"
          f"{SUBJECTS['val']}/{SUBJECTS['test']} pretrain/train/val/test subjects), tiny preset; "
          + "; ".join(f"{t} on {', '.join(c)}" for t, c in channels.items())
          + f"; pretraining {args.pretrain_steps} steps of 32 × {len(MODALITIES) + 1} models; "
          f"fine-tuning {args.tune_epochs}×{args.tune_steps} steps of 4 windows; probing 100 epochs")
    phases = ["data", "pretraining", *TASKS]
    times = [clock[p] - clock[prev] for prev, p in zip(["start", *phases], phases, strict=False)]
    print("time: " + ", ".join(f"{p} {t / 60:.1f} min" for p, t in zip(phases, times, strict=True))
          + f"; total {(clock[TASKS[-1]] - clock['start']) / 60:.1f} min")
    print("\n| task | labels | scratch F1 / κ | probe F1 / κ | fine-tune F1 / κ |\n|---|---|---|---|---|")
    for task in TASKS:
        for fraction in FRACTIONS:
            cells = {r["model"]: r for r in rows if r["task"] == task and r["labels"] == fraction}
            print(f"| {task} | {fraction:.0%} | " + " | ".join(
                f"{cells[k]['macro_f1']:.3f} / {cells[k]['kappa']:.3f}" for k in ("scratch", "probe", "fine-tune")) + " |")
    print("\n| event | labels | scratch AUROC | probe AUROC | fine-tune AUROC |\n|---|---|---|---|---|")
    for task in TASKS[1:]:
        for fraction in FRACTIONS:
            cells = {r["model"]: r for r in rows if r["task"] == task and r["labels"] == fraction}
            print(f"| {task} | {fraction:.0%} | " + " | ".join(
                "n/a" if cells[k]["auroc"] is None else f"{cells[k]['auroc']:.3f}"
                for k in ("scratch", "probe", "fine-tune")) + " |")


if __name__ == "__main__":
    main()

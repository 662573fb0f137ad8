"""The paper's central claim on the simulator: pretraining helps when labels are few.

Builds a simulated cohort, pretrains NeuroNet per modality and SynthSleepNet fusion on the
pretraining subjects (no labels), then for stage, apnea and hypopnea × {1 %, 5 %, 100 %} of the
labelled-train epochs trains three models and evaluates each on the held-out test subjects:

- scratch: the fine-tuning protocol (LoRA + Mamba2 temporal module + head) from random weights;
- probe: frozen pretrained encoder, MLP head on single epochs;
- fine-tune: the fine-tuning protocol from the pretrained fusion model.

Everything uses the ``tiny`` preset and short schedules so it finishes in about 45 minutes on
2 CPU cores; the schedule is printed with the table.

    python benchmarks/label_efficiency.py [--nights 40] [--hours 2] [--workdir DIR]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=40)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--pretrain-steps", type=int, default=100)
    parser.add_argument("--tune-steps", type=int, default=12, help="fine-tuning steps per epoch")
    parser.add_argument("--tune-epochs", type=int, default=2)
    parser.add_argument("--workdir", help="keep everything here (default: a temporary folder)")
    args = parser.parse_args()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        simulate_cohort(work / "recordings", args.nights, args.hours, seed=500, progress=False)
        prepare_store(work / "recordings", work / "store", workers=2, progress=False)
        n = args.nights
        fractions = {"train": 4 / n, "val": 2 / n, "test": 4 / n}
        fractions["pretrain"] = 1 - sum(fractions.values())
        assign_splits(work / "store", fractions=fractions, seed=0, overwrite=True)
        t_data = time.perf_counter() - t_start
        pre = TrainConfig(epochs=1, batch_size=32, base_lr=8e-3, max_steps_per_epoch=args.pretrain_steps)
        encoders = {m: pretrain_unimodal(work / "store", m, work / "runs" / m, config=pre, progress=False).checkpoint
                    for m in ("eeg", "eog", "emg", "ecg")}
        fusion = pretrain_multimodal(work / "store", encoders, work / "runs" / "fusion", config=pre,
                                     progress=False).checkpoint
        t_pre = time.perf_counter() - t_start - t_data
        tune = TrainConfig(epochs=args.tune_epochs, batch_size=4, base_lr=0.064, max_steps_per_epoch=args.tune_steps)
        probing = TrainConfig(epochs=30, batch_size=256, base_lr=1e-3)
        rows = []
        for task in TASKS:
            for fraction in FRACTIONS:
                tag = f"{task}-{fraction:g}"
                runs = {
                    "scratch": finetune(work / "store", task, fraction, work / "runs" / f"scratch-{tag}",
                                        preset="tiny", config=tune, progress=False),
                    "probe": probe(work / "store", task, fraction, work / "runs" / f"probe-{tag}",
                                   fusion_checkpoint=fusion, config=probing, progress=False),
                    "fine-tune": finetune(work / "store", task, fraction, work / "runs" / f"finetune-{tag}",
                                          fusion_checkpoint=fusion, config=tune, progress=False),
                }
                for name, result in runs.items():
                    m = evaluate(result.checkpoint, work / "store")
                    rows.append({"task": task, "labels": fraction, "model": name, "macro_f1": m["macro_f1"],
                                 "kappa": m["kappa"], "auroc": m.get("auroc"), "n_test_epochs": m["n_epochs"]})
                    print(f"{task:<9} {fraction:>5.0%} {name:<9} macro-F1 {m['macro_f1']:.3f}  kappa {m['kappa']:.3f}"
                          + (f"  AUROC {m['auroc']:.3f}" if m.get("auroc") is not None else ""), flush=True)
        total = time.perf_counter() - t_start
        print(f"\n{args.nights} simulated {args.hours:g}-h nights (30/4/2/4 pretrain/train/val/test subjects at 40), "
              f"tiny preset; pretraining {args.pretrain_steps} steps × 5 models; fine-tuning "
              f"{args.tune_epochs}×{args.tune_steps} steps of 4 windows; probing 30 epochs")
        print(f"time: data {t_data:.0f} s, pretraining {t_pre:.0f} s, total {total / 60:.1f} min")
        print("\n| task | labels | scratch F1 / κ | probe F1 / κ | fine-tune F1 / κ |\n|---|---|---|---|---|")
        for task in TASKS:
            for fraction in FRACTIONS:
                cells = {r["model"]: r for r in rows if r["task"] == task and r["labels"] == fraction}
                print(f"| {task} | {fraction:.0%} | " + " | ".join(
                    f"{cells[k]['macro_f1']:.3f} / {cells[k]['kappa']:.3f}" for k in ("scratch", "probe", "fine-tune")) + " |")
        (work / "label_efficiency.json").write_text(json.dumps(
            {"rows": rows, "seconds": total, "args": vars(args), "pretrain": dataclasses.asdict(pre),
             "tune": dataclasses.asdict(tune), "probe": dataclasses.asdict(probing)}, indent=1))


if __name__ == "__main__":
    main()

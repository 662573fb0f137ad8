"""Respiratory events from our models and from psgscoring, side by side on held-out nights.

Fine-tunes two ``events`` models (seed 0, the label-efficiency schedule) from the label-efficiency
study's pretrained fusion model — one with EEG, ECG, airflow and SpO2, one with EEG, EOG, EMG and
ECG only (the paper's setting) — on labelled simulated nights spanning AHI 0–60 (``--train-nights``
of ``--train-hours``, seeds 800+, split train/validation by subject; the study's own labelled
subjects have AHI 6–16, and a model that never saw back-to-back events undercounts severe
nights), each decoding events as chosen on its validation nights. It then scores nights simulated
from seeds no model saw, spanning AHI 0–60, with both models and with psgscoring's default
profile (benchmark environment only: ``make bench-env``). Every method is given the true
hypnogram for its indices, so the AHIs differ by the events alone. Prints per night and per
method: AHI mean absolute error, bias and 95 % limits of agreement (Bland–Altman),
severity-class κ (< 5, 5–15, 15–30, ≥ 30; scikit-learn), event F1 overall and by type (a match =
any overlap, and ≥ 50 % overlap) and ODI3/ODI4 error against the simulator's designed
desaturations. Our ODIs are the package's deterministic SpO2 rule, the same for both models.

Targets (issue #14), ours with airflow and SpO2: AHI MAE ≤ 3/h, severity κ ≥ 0.8, event F1 ≥ 0.8,
and better than psgscoring on the same nights.

    .venv-bench/bin/python benchmarks/respiratory_agreement.py [--test-nights 10] [--test-hours 3]
        [--train-nights 12] [--train-hours 2] [--workdir DIR (shared with label_efficiency.py)]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _psgscoring import psgscoring_night
from label_efficiency import (
    TASK_MODALITIES,
    parse_cohort_arguments,
    pretrained_fusion,
    schedules,
    simulated_cohort,
)
from sklearn.metrics import cohen_kappa_score

from synthsleepnet import prepare_store
from synthsleepnet.events import event_agreement, shift_nights
from synthsleepnet.io.channels import load_channel_table
from synthsleepnet.models import read_checkpoint_meta
from synthsleepnet.respiratory import respiratory_indices, severity_band, spo2_measures
from synthsleepnet.scoring.score import NightScorer
from synthsleepnet.simulate import SimulatedNight, simulate_night, write_night
from synthsleepnet.tasks import RESPIRATORY_EVENTS
from synthsleepnet.training import assign_splits, finetune

#: Our two settings: the modalities each events model reads.
SETTINGS = {"ours, airflow + SpO2": TASK_MODALITIES["events"],  # EEG, ECG, airflow, SpO2
            "ours, EEG/EOG/EMG/ECG only": TASK_MODALITIES["stage"]}
PSGSCORING = "psgscoring (aasm_v3_rec)"
TYPES = ("obstructive", "central", "mixed", "hypopnea")


@dataclasses.dataclass(frozen=True)
class Judged:
    """One method's reading of one night."""

    events: pd.DataFrame
    ahi: float
    odi3: float
    odi4: float


def _training_tag(args: argparse.Namespace) -> str:
    """Names the events models' data, so other settings never resume these runs."""
    return f"{args.train_nights}x{args.train_hours:g}h-ahi{args.max_ahi:g}-seed{args.train_seed}"


def _events_store(work: Path, args: argparse.Namespace) -> Path:
    """Labelled nights spanning AHI 0–``max_ahi`` (seeds from ``train_seed``), prepared as the
    study's store and split train/validation by subject (kept in ``work``: built once)."""
    store = work / f"events-{_training_tag(args)}" / "store"
    if (store / "splits.json").exists():
        return store
    for i, target in enumerate(np.linspace(0, args.max_ahi, args.train_nights)):
        write_night(simulate_night(args.train_seed + i, args.train_hours, ahi=float(target)), store.parent / "nights")
    prepare_store(store.parent / "nights", store, workers=2, progress=False)
    val = max(2, round(args.train_nights / 6)) / args.train_nights
    assign_splits(store, fractions={"train": 1 - val, "val": val}, seed=0, overwrite=True)
    return store


def _events_models(work: Path, runs: Path, args: argparse.Namespace) -> dict[str, Path]:
    """The two events models, fine-tuned from the study's pretrained fusion model."""
    budgets = schedules(args)
    fusion = pretrained_fusion(work, runs, args.model, budgets["pretrain"])
    store = _events_store(work, args)
    fused = read_checkpoint_meta(fusion).channels
    tune = dataclasses.replace(budgets["tune"], seed=0)
    modality = load_channel_table().modality
    models = {}
    for name, modalities in SETTINGS.items():
        channels = [c for c in fused if modality[c] in modalities]
        result = finetune(store, "events", 1.0, runs / f"events-{_training_tag(args)}" / "-".join(modalities), fusion_checkpoint=fusion,
                          channels=channels, config=tune, resume=True, progress=False)
        models[name] = result.checkpoint
        decoding = read_checkpoint_meta(result.checkpoint).decoding
        print(f"{name}: {channels}; decoding {decoding}", flush=True)
    return models


def _truth(night: SimulatedNight) -> Judged:
    events = night.events[night.events["event"].isin(RESPIRATORY_EVENTS)].reset_index(drop=True)
    hours = float(np.sum(night.hypnogram != 0)) * night.epoch_s / 3600
    drops = night.respiratory_truth.get("desaturation_pct", pd.Series(dtype=float))
    odi = {k: float((drops >= k).sum()) / hours if hours else float("nan") for k in (3, 4)}
    return Judged(events, respiratory_indices(events, night.hypnogram, night.epoch_s)["AHI"], odi[3], odi[4])


def _ours(scorer: NightScorer, edf: Path, night: SimulatedNight) -> Judged:
    result = scorer.score(scorer.prepare(edf))
    events = result.respiratory_events()
    spo2 = spo2_measures(np.asarray(result.spo2, dtype=float), night.hypnogram, night.epoch_s)
    return Judged(events, respiratory_indices(events, night.hypnogram, night.epoch_s)["AHI"],
                  spo2["ODI3"], spo2["ODI4"])


def _psgscoring(edf: Path, night: SimulatedNight) -> Judged:
    judged = psgscoring_night(edf, night.hypnogram)
    return Judged(judged.events, judged.ahi, judged.odi3, judged.odi4)


def _pooled(pairs: Sequence[tuple[Judged, Judged]], min_overlap: float) -> dict[str, Any]:
    """Event agreement over all nights, each shifted a day apart so no event crosses nights."""
    offsets = [86400.0 * i for i in range(len(pairs))]
    truth = shift_nights([t.events for t, _ in pairs], offsets)
    found = shift_nights([f.events for _, f in pairs], offsets)
    return event_agreement(truth, found, min_overlap=min_overlap)


def _summary(pairs: Sequence[tuple[Judged, Judged]]) -> dict[str, Any]:
    diff = np.array([f.ahi - t.ahi for t, f in pairs])
    sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
    bands = [severity_band(t.ahi) for t, _ in pairs], [severity_band(f.ahi) for _, f in pairs]
    any_overlap, half = _pooled(pairs, 0.0), _pooled(pairs, 0.5)
    return {"AHI MAE": float(np.abs(diff).mean()), "AHI bias": float(diff.mean()),
            "LoA": f"{diff.mean() - 1.96 * sd:+.1f} to {diff.mean() + 1.96 * sd:+.1f}",
            "severity κ": float(cohen_kappa_score(*bands)),
            "event F1": any_overlap["event_f1"], "event F1 ≥50 %": half["event_f1"],
            **{f"F1 {k}": any_overlap[f"event_f1_{k}"] for k in TYPES},
            "ODI3 MAE": statistics.fmean(abs(f.odi3 - t.odi3) for t, f in pairs),
            "ODI4 MAE": statistics.fmean(abs(f.odi4 - t.odi4) for t, f in pairs)}


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(rows[0])
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in columns) + " |"
            for r in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-nights", type=int, default=10)
    parser.add_argument("--test-hours", type=float, default=3.0)
    parser.add_argument("--max-ahi", type=float, default=60.0)
    parser.add_argument("--test-seed", type=int, default=900, help="first held-out seed (the cohort uses 500+)")
    parser.add_argument("--train-nights", type=int, default=12, help="labelled nights for the events models")
    parser.add_argument("--train-hours", type=float, default=2.0)
    parser.add_argument("--train-seed", type=int, default=800, help="first seed of the events models' nights")
    args = parse_cohort_arguments(parser)
    t0 = time.perf_counter()
    methods = [*SETTINGS, PSGSCORING]
    pairs: dict[str, list[tuple[Judged, Judged]]] = {m: [] for m in methods}
    per_night = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        simulated_cohort(work, args)
        models = _events_models(work, work / "runs" / args.study, args)
        scorers = {name: NightScorer.load([path], device="cpu") for name, path in models.items()}
        trained = time.perf_counter()
        for i, target in enumerate(np.linspace(0, args.max_ahi, args.test_nights)):
            night = simulate_night(args.test_seed + i, args.test_hours, ahi=float(target))
            edf, _ = write_night(night, tmp)
            truth = _truth(night)
            judged = {name: _ours(scorer, edf, night) for name, scorer in scorers.items()}
            judged[PSGSCORING] = _psgscoring(edf, night)
            for name in methods:
                pairs[name].append((truth, judged[name]))
            per_night.append({"night": night.name, "AHI truth": truth.ahi,
                              **{f"AHI {name.split(',')[0] if name == PSGSCORING else name}": judged[name].ahi
                                 for name in methods},
                              "ODI3 truth": truth.odi3, "ODI3 ours": judged[methods[0]].odi3,
                              "ODI3 psgscoring": judged[PSGSCORING].odi3})
            print(f"{night.name}: AHI truth {truth.ahi:.1f}, "
                  + ", ".join(f"{name} {judged[name].ahi:.1f}" for name in methods), flush=True)
    summary = [{"method": name, **_summary(pairs[name])} for name in methods]
    print(f"\n{args.test_nights} held-out simulated {args.test_hours:g}-h nights (seeds {args.test_seed}–"
          f"{args.test_seed + args.test_nights - 1}, AHI 0–{args.max_ahi:g}); events models: `{args.study}`, "
          f"fine-tuned on {args.train_nights} labelled {args.train_hours:g}-h nights (seeds {args.train_seed}–"
          f"{args.train_seed + args.train_nights - 1}, AHI 0–{args.max_ahi:g}); training "
          f"{(trained - t0) / 60:.1f} min, scoring {(time.perf_counter() - trained) / 60:.1f} min\n")
    print(_table(per_night) + "\n\n" + _table(summary))
    ours = summary[0]
    judge = summary[-1]
    print(f"\ntargets for {methods[0]}: AHI MAE {ours['AHI MAE']:.2f} ≤ 3, severity κ {ours['severity κ']:.2f} ≥ 0.8, "
          f"event F1 {ours['event F1']:.2f} ≥ 0.8; better than psgscoring on AHI MAE "
          f"({ours['AHI MAE'] < judge['AHI MAE']}) and event F1 ({ours['event F1'] > judge['event F1']})")


if __name__ == "__main__":
    main()

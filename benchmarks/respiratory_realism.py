"""Does a clinical respiratory scorer accept the simulator's breathing?

Runs psgscoring (open AASM respiratory scoring, default profile ``aasm_v3_rec``; installed in the
benchmark environment only: ``make bench-env``) on simulated nights spanning AHI 0–60, given the
EDF and the true hypnogram, and prints per night and pooled: AHI against the simulator's truth,
apneas and hypopneas found, apnea typing, event F1 (any overlap) and hypopnea recall.

Targets (issue #13): AHI within ±15 % or ±3/h of truth on every night, event F1 ≥ 0.75,
hypopnea recall ≥ 0.7, apnea type right ≥ 80 %.

    .venv-bench/bin/python benchmarks/respiratory_realism.py [--hours 4] [--ahi 0 5 15 30 45 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import pandas as pd
from _psgscoring import psgscoring_night

from synthsleepnet.events import event_agreement, shift_nights
from synthsleepnet.respiratory import respiratory_indices
from synthsleepnet.simulate import simulate_night, write_night

APNEAS = ("apnea_obstructive", "apnea_central", "apnea_mixed")


def _typing(truth: pd.DataFrame, found: pd.DataFrame) -> tuple[int, int]:
    """Apneas found that overlap a true apnea, and how many of them carry its type."""
    right = matched = 0
    for o, d, kind in zip(found["onset_s"], found["duration_s"], found["event"], strict=True):
        if kind not in APNEAS:
            continue
        hits = truth[(truth["onset_s"] < o + d) & (truth["onset_s"] + truth["duration_s"] > o)
                     & truth["event"].isin(APNEAS)]
        if len(hits):
            matched += 1
            right += int(hits["event"].iloc[0] == kind)
    return right, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--ahi", type=float, nargs="+", default=[0, 5, 15, 30, 45, 60])
    parser.add_argument("--seed", type=int, default=700)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    pooled_truth, pooled_found = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, target in enumerate(args.ahi):
            night = simulate_night(args.seed + i, args.hours, ahi=target)
            edf, _ = write_night(night, tmp)
            truth = night.events[night.events["event"].isin([*APNEAS, "hypopnea"])].reset_index(drop=True)
            judged = psgscoring_night(edf, night.hypnogram)
            found, ahi_found = judged.events, judged.ahi
            true_ahi = respiratory_indices(truth, night.hypnogram, night.epoch_s)["AHI"]
            agreement = event_agreement(truth, found)
            hyp = event_agreement(truth[truth["event"] == "hypopnea"], found[found["event"] == "hypopnea"])
            right, matched = _typing(truth, found)
            pooled_truth.append(truth)
            pooled_found.append(found)
            rows.append({"night": night.name, "AHI truth": true_ahi, "AHI psgscoring": ahi_found,
                         "apneas truth/found": f"{truth['event'].isin(APNEAS).sum()}/{found['event'].isin(APNEAS).sum()}",
                         "hypopneas truth/found": f"{(truth['event'] == 'hypopnea').sum()}/"
                                                  f"{(found['event'] == 'hypopnea').sum()}",
                         "type right": f"{right}/{matched}", "event F1": agreement["event_f1"],
                         "hypopnea recall": hyp["event_recall"],
                         "AHI ok": abs(ahi_found - true_ahi) <= max(3.0, 0.15 * true_ahi),
                         "_right": right, "_matched": matched})
    offsets = [86400.0 * i for i in range(len(pooled_truth))]
    truth_all, found_all = shift_nights(pooled_truth, offsets), shift_nights(pooled_found, offsets)
    pooled = event_agreement(truth_all, found_all)
    hyp_pooled = event_agreement(truth_all[truth_all["event"] == "hypopnea"],
                                 found_all[found_all["event"] == "hypopnea"])
    right = sum(r["_right"] for r in rows)
    matched = sum(r["_matched"] for r in rows)
    print(f"psgscoring (aasm_v3_rec) on {len(rows)} simulated {args.hours:g}-h nights, "
          f"{time.perf_counter() - t0:.0f} s\n")
    columns = [c for c in rows[0] if not c.startswith("_")]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in columns) + " |")
    type_rate = right / matched if matched else float("nan")
    print(f"\npooled: event F1 {pooled['event_f1']:.2f} (target ≥ 0.75), hypopnea recall "
          f"{hyp_pooled['event_recall']:.2f} (≥ 0.7), apnea type right {type_rate:.0%} (≥ 80 %), "
          f"AHI within ±15 % or ±3/h on {sum(r['AHI ok'] for r in rows)}/{len(rows)} nights (all)")


if __name__ == "__main__":
    main()

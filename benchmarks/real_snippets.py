"""How a stage model trained only on simulated nights stages the few real signals we have.

The real recordings in ``../shared/data/real`` are short and partial: 30 s of central EEG in N3
and 15 s in N2 (YASA's example data), 859 s of LOC/ROC EOG in REM (same source), and the first
300 s of Sleep-EDF SC4001E0 (Fpz-Cz, Pz-Oz, horizontal EOG; all Wake). Each is scored as a
recording with the channels it has — the model says how reliable that is — and the predicted
stages and the probability given to the scorer's stage are printed. Nothing was tuned on these
signals; four snippets are an illustration of transfer, not an accuracy estimate (the 15-s N2
snippet is shorter than one epoch and is not scored).

    python benchmarks/real_snippets.py --model runs/tiny/finetune-stage-1-seed0/best.safetensors
    python benchmarks/real_snippets.py --workdir DIR   # the label-efficiency study's 100 % model, seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synthsleepnet.io.recording import Recording, Signal, read_recording
from synthsleepnet.scoring.score import NightScorer
from synthsleepnet.tasks import STAGES

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _snippets() -> list[tuple[str, str, Recording]]:
    """(name, the scorer's stage, recording) for every real snippet at least one epoch long."""
    yasa = REAL / "yasa"
    n3 = np.loadtxt(yasa / "data_N3_no-spindles_30sec_100Hz.txt")
    rem = np.load(yasa / "data_EOGs_REM_256Hz.npz")
    eog = [Signal.from_array(label, rem["data"][i], float(rem["sf"]), "uV")
           for i, label in enumerate(("EOG E1-M2", "EOG E2-M2"))]
    return [
        ("YASA N3, 30 s central EEG", "N3",
         Recording(yasa / "data_N3_no-spindles_30sec_100Hz.txt", [Signal.from_array("EEG C4-M1", n3, 100.0, "uV")],
                   None, [])),
        ("YASA REM, 859 s LOC/ROC EOG", "R", Recording(yasa / "data_EOGs_REM_256Hz.npz", eog, None, [])),
        ("Sleep-EDF SC4001E0, first 300 s", "W", read_recording(REAL / "sleep-edf" / "short_psg.edf")),
    ]


def _model(args: argparse.Namespace) -> Path:
    if args.model:
        return Path(args.model)
    found = sorted(Path(args.workdir, "runs", args.preset, "finetune-stage-1-seed0").glob("*.safetensors"))
    if not found:
        raise SystemExit(f"no stage model in {args.workdir}/runs/{args.preset}/finetune-stage-1-seed0: run "
                         "benchmarks/label_efficiency.py --workdir there first, or pass --model")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a stage checkpoint trained on simulated nights")
    parser.add_argument("--workdir", help="the label-efficiency study's --workdir (its 100 %% seed-0 model)")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} is absent: the real snippets live in ../shared/data beside the checkout")
    model = _model(args)
    scorer = NightScorer.load([model], device="cpu")
    print(f"stage model: {model} (trained on simulated nights only)\n")
    print("| snippet | scorer | epochs | predicted stages | P(scorer's stage), mean | channels used | reliability |")
    print("|---|---|---|---|---|---|---|")
    for name, truth, recording in _snippets():
        result = scorer.score(scorer.prepare(recording))
        proba = np.asarray(result.stage_proba)
        counts = {s: result.stages.count(s) for s in STAGES if s in result.stages}
        print(f"| {name} | {truth} | {result.n_epochs} | " + ", ".join(f"{s} {n}" for s, n in counts.items())
              + f" | {proba[:, STAGES.index(truth)].mean():.2f} | {', '.join(result.channels_used)} | "
              f"{result.reliability['level']} |")


if __name__ == "__main__":
    main()

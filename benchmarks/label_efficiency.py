"""The paper's central claim on the simulator, over seeds: pretraining helps when labels are few.

Builds a simulated cohort (each subject recorded for ``--hours``, a window placed at random in
a simulated ``--night-hours`` night, so every stage is there in whole-night proportions),
pretrains NeuroNet per modality and SynthSleepNet fusion on the pretraining subjects (no
labels, one seed), then for each task × label fraction × seed trains
three models, each selected on the validation subjects, and evaluates them on the test subjects:

- scratch: the fine-tuning protocol (LoRA + Mamba2 temporal module + head) from random weights;
- probe: frozen pretrained encoder, MLP head on single epochs;
- fine-tune: the fine-tuning protocol from the pretrained fusion model.

A seed sets the label sample, the initialisation and the item order of every protocol; scratch
and fine-tune share one schedule (the paper's recipe shape — batches of windows, gradient
accumulation, warm-up and cosine decay — scaled to the hour), on cached frozen convolutions.
Staging uses EEG, EOG, EMG and ECG; apnea and hypopnea use EEG, ECG, airflow and SpO2, from one
fusion model pretrained on six modalities. Prints each cell as mean ± standard deviation over
seeds and the paired (same-seed) differences that answer "does pretraining help" and "does
fine-tuning beat probing"; writes the per-seed values (``label_efficiency_runs.csv``), the
summary (``label_efficiency.json``) and the plot (``label_efficiency.png``) to ``--out``.

    python benchmarks/label_efficiency.py [--seeds 3] [--preset tiny | --model-config FILE]
        [--teacher-study STUDY] [--tasks stage apnea hypopnea]
        [--fractions 0.01 0.05 1] [--hours 1.5] [--night-hours 8] [--variability low|normal|high]
        [--workdir DIR] [--out DIR]
    python benchmarks/label_efficiency.py --tables-from RUNS.csv [RUNS.csv ...] --out DIR
    python benchmarks/label_efficiency.py --compare fast=RUNS.csv small=RUNS.csv --out DIR

With ``--workdir`` the data, the pretraining and every finished run are kept and reused, so an
interrupted study resumes and other models can share the data. Runs go to ``runs/<study>``: the
preset, or the ``--model-config`` file's name (a ``[model]`` section: a preset and the fields it
changes, e.g. ``benchmarks/model_variants/fast-wide-transformer.toml``), followed by any
pretraining or fine-tuning budget other than the default (``fast-pretrain400``), so a study
resumes only its own runs (training refuses to resume a different run).
``--teacher-study`` distils: each fine-tune run also learns the predictions of that study's
fine-tuned model of the same task, labels and seed (run that study first in the same
``--workdir``); the pretraining is the plain study's, the runs go to ``runs/<study>-from-<teacher>``.
``--tables-from`` trains nothing: it prints the tables and draws the plot of the per-seed rows of
earlier runs (for a study run in parts, e.g. one task or label fraction at a time).
``--protocols`` trains only some protocols (more seeds of one, where a preset is slow), and
``--compare`` sets two studies side by side, seed by seed, with the paired differences and their
95 % t-interval (e.g. two presets on the same data: the seeds share their label samples).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synthsleepnet import prepare_store
from synthsleepnet._atomic import atomic_write_text
from synthsleepnet._config import (
    ModelConfig,
    TrainConfig,
    config_differences,
    config_to_dict,
    get_preset,
    load_run_config,
)
from synthsleepnet.io.channels import load_channel_table
from synthsleepnet.models import read_checkpoint_meta
from synthsleepnet.simulate import simulate_cohort
from synthsleepnet.simulate.variability import VARIABILITY
from synthsleepnet.tasks import get_task
from synthsleepnet.training import (
    assign_splits,
    evaluate,
    finetune,
    pretrain_multimodal,
    pretrain_unimodal,
    probe,
)

MODALITIES = ("eeg", "eog", "emg", "ecg", "resp", "spo2")
TASK_MODALITIES = {"stage": ("eeg", "eog", "emg", "ecg"), "apnea": ("eeg", "ecg", "resp", "spo2"),
                   "hypopnea": ("eeg", "ecg", "resp", "spo2"), "events": ("eeg", "ecg", "resp", "spo2")}
SUBJECTS = {"train": 6, "val": 2, "test": 3}  # the rest pretrain
PROTOCOLS = ("scratch", "probe", "fine-tune")
# the metrics that fit each task: the first is the headline (plotted)
METRICS = {"stage": ("macro_f1", "kappa"), "apnea": ("auprc", "event_f1"), "hypopnea": ("auprc", "event_f1"),
           "events": ("event_f1_50", "event_f1", "ahi_error")}  # ≥ 50 % overlap first: one night-long
# "event" overlaps every scored event, so any-overlap F1 alone would reward it


def _protocols(task: str, chosen: Sequence[str] = PROTOCOLS) -> tuple[str, ...]:
    """The ``chosen`` protocols that fit ``task``: a probe sees single epochs, so it cannot
    predict the per-second events task."""
    return tuple(p for p in PROTOCOLS if p in chosen and not (p == "probe" and get_task(task).per_second))


def schedules(args: argparse.Namespace) -> dict[str, TrainConfig]:
    """Per-protocol budgets. Fine-tuning follows the paper's shape (AdamW, warm-up + cosine,
    batches of 20-epoch windows with gradient accumulation; paper: 32 × 4 windows, 30 epochs)
    scaled down 16x in batch and to ``--tune-epochs`` epochs; learning rate 3e-3 for 8 windows."""
    pre = TrainConfig(epochs=1, batch_size=32, base_lr=8e-3, max_steps_per_epoch=args.pretrain_steps, seed=0)
    tune = TrainConfig(epochs=args.tune_epochs, batch_size=4, accumulate=2, base_lr=3e-3 * 256 / 8, warmup_frac=0.1)
    probing = TrainConfig(epochs=100, batch_size=256, base_lr=1e-3)
    return {"pretrain": pre, "tune": tune, "probe": probing}


def channels_for(task: str, fusion_channels: Sequence[str]) -> list[str]:
    """The fusion model's channels of the modalities a task uses."""
    modality = load_channel_table().modality
    return [c for c in fusion_channels if modality[c] in TASK_MODALITIES[task]]


def pretrained_fusion(work: Path, runs: Path, model: ModelConfig, config: TrainConfig) -> Path:
    """NeuroNet per modality, then the fusion model, on the pretraining subjects (kept in ``runs``)."""
    again: dict[str, Any] = {"resume": True, "progress": False}
    encoders = {m: pretrain_unimodal(work / "store", m, runs / m, preset=model, config=config, **again).checkpoint
                for m in MODALITIES}
    return pretrain_multimodal(work / "store", encoders, runs / "fusion", config=config, **again).checkpoint


def simulated_cohort(work: Path, args: argparse.Namespace) -> None:
    """The simulated cohort's store in ``work``, split by subject (kept: built once): a
    ``--hours`` window of each ``--night-hours`` night, so the recordings hold every stage in
    whole-night proportions (a night's first 1.5 h hold almost no REM)."""
    if (work / "store" / "splits.json").exists():
        return
    window = None if args.night_hours == args.hours else args.hours
    simulate_cohort(work / "recordings", args.nights, args.night_hours, seed=500, variability=args.variability,
                    window_hours=window, progress=False)
    prepare_store(work / "recordings", work / "store", workers=2, progress=False)
    fractions = {k: v / args.nights for k, v in SUBJECTS.items()}
    fractions["pretrain"] = 1 - sum(fractions.values())
    assign_splits(work / "store", fractions=fractions, seed=0, overwrite=True)


def _run_cell(work: Path, runs: Path, fusion: Path, task: str, fraction: float, seed: int, args: argparse.Namespace,
              schedules: Mapping[str, TrainConfig]) -> list[dict[str, Any]]:
    """The protocols (``--protocols``) for one task, label fraction and seed; a row per protocol."""
    channels = channels_for(task, read_checkpoint_meta(fusion).channels)
    tune = dataclasses.replace(schedules["tune"], seed=seed)
    probing = dataclasses.replace(schedules["probe"], seed=seed)
    again: dict[str, Any] = {"resume": True, "progress": False}
    store = work / "store"
    tag = f"{task}-{fraction:g}-seed{seed}"
    calls = {
        "scratch": lambda: finetune(store, task, fraction, runs / f"scratch-{tag}", preset=args.model,
                                    channels=channels, config=tune, **again),
        "probe": lambda: probe(store, task, fraction, runs / f"probe-{tag}", fusion_checkpoint=fusion,
                               channels=channels, config=probing, **again),
        "fine-tune": lambda: finetune(store, task, fraction, runs / f"finetune-{tag}", fusion_checkpoint=fusion,
                                      channels=channels, config=tune, teacher=teacher_checkpoint(work, args, tag),
                                      **again),
    }
    rows = []
    for protocol in _protocols(task, args.protocols):
        call = calls[protocol]
        t0 = time.perf_counter()
        result = call()
        seconds = _wall_time(result.checkpoint.parent, time.perf_counter() - t0)
        m = evaluate(result.checkpoint, store)
        meta = read_checkpoint_meta(result.checkpoint)
        rows.append({"task": task, "labels": fraction, "protocol": protocol, "seed": seed,
                     "n_labelled_epochs": meta.n_labelled_epochs, "best_epoch": result.best_epoch,
                     "epochs": len(result.history), "seconds": round(seconds, 1), "val_score": result.best_score,
                     **{k: m.get(k) for k in ("macro_f1", "kappa", "auroc", "auprc", "event_f1", "event_f1_50",
                                              "ahi_error")}})
        print(f"{task:<9} {fraction:>5.0%} seed {seed} {protocol:<9} "
              + "  ".join(f"{k} {rows[-1][k]:.3f}" for k in METRICS[task]) + f"  ({seconds:.0f} s)", flush=True)
    return rows


def teacher_checkpoint(work: Path, args: argparse.Namespace, tag: str) -> Path | None:
    """With ``--teacher-study``: that study's finished fine-tuned model of the same task, label
    fraction and seed (so the teacher learned from the same labels)."""
    if not args.teacher_study:
        return None
    run = work / "runs" / args.teacher_study / f"finetune-{tag}"
    if not (run / "benchmark_seconds.json").is_file():  # written when the benchmark saw the run finish
        raise SystemExit(f"{run}: no finished teacher; run the {args.teacher_study!r} study's fine-tune protocol "
                         f"({tag}) in this --workdir first")
    return run / "model.safetensors"


def _wall_time(run: Path, seconds: float) -> float:
    """A run's wall time (cache, training, validation), kept in the run the first time it
    finishes, so a resumed study reports the time the run took, not the resume's."""
    path = run / "benchmark_seconds.json"
    if path.exists():
        return float(json.loads(path.read_text())["seconds"])
    atomic_write_text(path, json.dumps({"seconds": round(seconds, 1)}))
    return seconds


def _spread(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {sd:.3f}"


def _cells(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, float, str], dict[int, Mapping[str, Any]]]:
    out: dict[tuple[str, float, str], dict[int, Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["task"], r["labels"], r["protocol"]), {})[r["seed"]] = r
    return out


def _tables(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str], fractions: Sequence[float]) -> list[str]:
    """Markdown: per task, each metric as mean ± sd over seeds (with the count where a protocol ran
    fewer seeds than another), and the paired differences over the seeds both sides ran."""
    cells = _cells(rows)
    lines = []
    for task in tasks:
        headline = METRICS[task][0]
        protocols = [p for p in _protocols(task) if any((task, f, p) in cells for f in fractions)]
        pretrained = [p for p in protocols if p != "scratch"]
        lines += ["", f"**{task}** ({' / '.join(METRICS[task])}; mean ± sd over seeds)", "",
                  "| labels | labelled epochs | " + " | ".join(protocols)
                  + f" | {headline}: best pretrained − scratch | {headline}: fine-tune − probe |",
                  "|---|---|" + "---|" * (len(protocols) + 2)]
        for fraction in [f for f in fractions if any((task, f, p) in cells for p in protocols)]:
            by = {p: cells.get((task, fraction, p), {}) for p in protocols}
            most = max(len(seeds) for seeds in by.values())
            n_epochs = statistics.fmean(r["n_labelled_epochs"] for seeds in by.values() for r in seeds.values())
            metric_cells = [" / ".join(_spread([r[k] for r in by[p].values()]) for k in METRICS[task])
                            + ("" if len(by[p]) == most else f" ({len(by[p])} seeds)") if by[p] else "–"
                            for p in protocols]
            gain = _paired(by, headline, pretrained, "scratch")
            ft_vs_probe = _paired(by, headline, ["fine-tune"], "probe")
            lines.append(f"| {fraction:.0%} | {n_epochs:.0f} | " + " | ".join(metric_cells)
                         + f" | {gain} | {ft_vs_probe} |")
    return lines


def _paired(by: Mapping[str, Mapping[int, Mapping[str, Any]]], metric: str, better: Sequence[str],
            baseline: str) -> str:
    """The best of ``better`` minus ``baseline`` in ``metric``, over the seeds all of them ran; "–" for none."""
    if not better or any(p not in by for p in (*better, baseline)):
        return "–"
    seeds = sorted(set(by[baseline]).intersection(*(by[p] for p in better)))
    return _signed([max(by[p][s][metric] for p in better) - by[baseline][s][metric] for s in seeds]) if seeds else "–"


def _signed(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    wins = sum(v > 0 for v in values)
    return f"{mean:+.3f} ± {sd:.3f} ({wins}/{len(values)} seeds > 0)"


#: One marker and colour per protocol, the same in every panel.
_STYLE = {"scratch": ("o", "C0"), "probe": ("s", "C1"), "fine-tune": ("D", "C2")}


def _plot(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str], fractions: Sequence[float], path: Path,
          title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cells = _cells(rows)
    fig = Figure(figsize=(4.2 * len(tasks), 3.6))
    FigureCanvasAgg(fig)
    for i, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        metric = METRICS[task][0]
        for protocol in _protocols(task):
            marker, color = _STYLE[protocol]
            present = [f for f in fractions if (task, f, protocol) in cells]
            values = [[r[metric] for r in cells[task, f, protocol].values()] for f in present]
            means = [statistics.fmean(v) for v in values]
            sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            ax.errorbar([100 * f for f in present], means, yerr=sds, marker=marker, color=color, capsize=3,
                        label=protocol)
        ax.set_xscale("log")
        ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g} %" for f in fractions])
        ax.set_xlabel("labelled epochs of the train subjects")
        ax.set_ylabel(metric.replace("_", "-"))
        ax.set_title(task)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
        return out.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_cohort_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the cohort, pretraining and fine-tuning settings (shared by the benchmarks that reuse
    this study's ``--workdir``) and parse."""
    parser.add_argument("--preset", help="model preset (default: the --model-config file's, else tiny)")
    parser.add_argument("--model-config", metavar="FILE",
                        help="a TOML/YAML/JSON file whose [model] section (a preset and the fields it changes) is "
                             "the model; its runs go to runs/<file name>")
    parser.add_argument("--nights", type=int, default=36)
    parser.add_argument("--hours", type=float, default=1.5, help="recorded hours per subject")
    parser.add_argument("--night-hours", type=float, default=8.0,
                        help="the recordings are --hours windows, placed at random, of nights this long")
    parser.add_argument("--variability", default="normal", choices=VARIABILITY,
                        help="how much simulated subjects and sites differ (use a fresh --workdir per level)")
    parser.add_argument("--pretrain-steps", type=int, default=80)
    parser.add_argument("--tune-epochs", type=int, default=5, help="fine-tuning (and scratch) epochs")
    parser.add_argument("--workdir", help="keep data, pretraining and runs here (default: a temporary folder)")
    args = parser.parse_args()
    if not 0 < args.hours <= args.night_hours:
        parser.error(f"--hours ({args.hours:g}) must be positive and at most --night-hours ({args.night_hours:g})")
    if args.nights <= sum(SUBJECTS.values()):
        parser.error(f"--nights must exceed the {sum(SUBJECTS.values())} labelled subjects")
    try:
        args.model = load_run_config(args.model_config).model_config(args.preset)
    except (ValueError, OSError) as err:  # a ConfigError is a ValueError
        parser.error(str(err))
    args.study = study_name(args, parser)
    return args


def arguments_record(args: argparse.Namespace) -> dict[str, Any]:
    """The command's arguments for the summary JSON, the model as its config's fields."""
    return {**vars(args), "model": config_to_dict(args.model)}


def study_name(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The folder of a study's runs in a shared ``--workdir``: the model (the ``--model-config``
    file's name, else the preset) and every budget that differs from the default."""
    name = Path(args.model_config).stem if args.model_config else args.model.preset
    budgets = {"pretrain": args.pretrain_steps, "tune": args.tune_epochs}
    defaults = {"pretrain": parser.get_default("pretrain_steps"), "tune": parser.get_default("tune_epochs")}
    return "-".join([name, *(f"{k}{v}" for k, v in budgets.items() if v != defaults[k])])


def _model_text(args: argparse.Namespace) -> str:
    """The preset and the fields ``--model-config`` changes in it."""
    changed = config_differences(config_to_dict(get_preset(args.model.preset)), config_to_dict(args.model))
    return f"`{args.model.preset}` preset" + (f" with {', '.join(changed)}" if changed else "")


def _read_rows(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Per-seed rows from ``label_efficiency_runs.csv`` files (a later file's cell wins)."""
    cells: dict[tuple[str, float, str, int], dict[str, Any]] = {}
    for path in paths:
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such file (a label_efficiency_runs.csv of an earlier run)")
        with open(path, newline="") as f:
            for raw in csv.DictReader(f):
                row: dict[str, Any] = {k: (None if v in ("", "None") else v) for k, v in raw.items()}
                for key, value in row.items():
                    if key not in ("task", "protocol") and value is not None:
                        row[key] = int(value) if key in ("seed", "n_labelled_epochs", "epochs") else float(value)
                cells[row["task"], row["labels"], row["protocol"], row["seed"]] = row
    return list(cells.values())


def _write_results(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str], fractions: Sequence[float], out: Path,
                   header: Sequence[str], summary: Mapping[str, Any]) -> None:
    print("\n" + "\n".join([*header, *_tables(rows, tasks, fractions)]))
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "label_efficiency_runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (out / "label_efficiency.json").write_text(json.dumps({**summary, "rows": list(rows)}, indent=1))
    _plot(rows, tasks, fractions, out / "label_efficiency.png", header[0])
    print(f"wrote label_efficiency_runs.csv, label_efficiency.json and label_efficiency.png to {out}")


def _comparison(studies: Mapping[str, Sequence[Mapping[str, Any]]], validation: bool = False) -> list[str]:
    """Markdown: two studies' headline metric per task, label fraction, protocol and seed, and the
    first minus the second over the seeds both ran (mean, sd, 95 % t-interval of the mean); with
    ``validation``, the selected model's validation score (the task's selection metric) instead."""
    from scipy.stats import t

    (first, rows_a), (second, rows_b) = studies.items()
    a, b = _cells(rows_a), _cells(rows_b)
    tasks, protocols = list(TASK_MODALITIES), list(PROTOCOLS)
    lines = [f"| task | labels | protocol | seeds | `{first}` | `{second}` | `{first}` − `{second}` | 95 % interval |",
             "|---|---|---|---|---|---|---|---|"]
    for key in sorted(set(a) | set(b), key=lambda k: (tasks.index(k[0]), k[1], protocols.index(k[2]))):
        task, fraction, protocol = key
        metric, seeds_a, seeds_b = "val_score" if validation else METRICS[task][0], a.get(key, {}), b.get(key, {})
        seeds = sorted(set(seeds_a) | set(seeds_b))
        both = [seeds_a[s][metric] - seeds_b[s][metric] for s in seeds if s in seeds_a and s in seeds_b]
        interval = "–"
        if len(both) > 1:
            half = t.ppf(0.975, len(both) - 1) * statistics.stdev(both) / len(both) ** 0.5
            interval = f"{statistics.fmean(both) - half:+.3f} to {statistics.fmean(both) + half:+.3f}"
        name = f"validation {get_task(task).selection}" if validation else metric
        lines.append(f"| {task} {name.replace('_', '-')} | {fraction:.0%} | {protocol} | "
                     f"{' / '.join(map(str, seeds))} | "
                     + " | ".join(" / ".join(f"{c[s][metric]:.3f}" if s in c else "–" for s in seeds)
                                  for c in (seeds_a, seeds_b))
                     + f" | {_signed(both) if both else '–'} | {interval} |")
    return lines


def _compare(named: Sequence[str], out: Path) -> None:
    """Print and write (``label_efficiency_comparison.md``) the comparison of two studies' rows."""
    paths = dict(item.partition("=")[::2] for item in named)
    if len(paths) != 2 or not all(paths) or not all(paths.values()):
        raise SystemExit(f"--compare takes two NAME=label_efficiency_runs.csv with different names, got {named}")
    studies = {name: _read_rows([path]) for name, path in paths.items()}
    lines = [" against ".join(f"{name} ({path})" for name, path in paths.items()), "", "Test subjects:", "",
             *_comparison(studies)]
    if all(r.get("val_score") is not None for rows in studies.values() for r in rows):
        lines += ["", "Validation subjects (the selected model's score: what a design is chosen on):", "",
                  *_comparison(studies, validation=True)]
    text = "\n".join(lines)
    print(text)
    atomic_write_text(out / "label_efficiency_comparison.md", text + "\n")
    print(f"wrote label_efficiency_comparison.md to {out}")


def _tables_from(paths: Sequence[str], out: Path) -> None:
    """The tables and plot of the rows finished by earlier runs (cells of other runs together)."""
    rows = _read_rows(paths)
    tasks = [t for t in TASK_MODALITIES if any(r["task"] == t for r in rows)]
    fractions = sorted({r["labels"] for r in rows})
    header = [f"rows of {', '.join(paths)}"]
    _write_results(rows, tasks, fractions, out, header, {"sources": list(paths)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", default=list(TASK_MODALITIES), choices=list(TASK_MODALITIES))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.01, 0.05, 1.0])
    parser.add_argument("--out", default=".", help="where the CSV, JSON and PNG go")
    parser.add_argument("--tables-from", nargs="+", metavar="CSV",
                        help="train nothing: the tables and plot of these label_efficiency_runs.csv files")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS,
                        help="train only these (e.g. more seeds of fine-tune for a comparison)")
    parser.add_argument("--teacher-study", metavar="STUDY",
                        help="fine-tune also learns the predictions of that study's fine-tuned model of the same "
                             "task, labels and seed (distillation; its runs must be in --workdir)")
    parser.add_argument("--compare", nargs=2, metavar="NAME=CSV",
                        help="train nothing: two studies' label_efficiency_runs.csv side by side, per seed, "
                             "with the paired differences")
    args = parse_cohort_arguments(parser)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.tables_from:
        _tables_from(args.tables_from, out)
        return
    if args.compare:
        _compare(args.compare, out)
        return
    budgets = schedules(args)
    commit = _commit()  # the code this run imports, not what the checkout holds when it ends
    clock = {"start": time.perf_counter()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        runs = work / "runs" / args.study
        simulated_cohort(work, args)
        clock["data"] = time.perf_counter()
        fusion = pretrained_fusion(work, runs, args.model, budgets["pretrain"])
        clock["pretraining"] = time.perf_counter()
        if args.teacher_study:  # the same pretraining; the distilled runs in their own folder
            runs = runs.with_name(f"{args.study}-from-{args.teacher_study}")
        rows = []
        for task in args.tasks:
            for fraction in args.fractions:
                for seed in range(args.seeds):
                    rows += _run_cell(work, runs, fusion, task, fraction, seed, args, budgets)
            clock[task] = time.perf_counter()
    total = clock[args.tasks[-1]] - clock["start"]
    phases = ["data", "pretraining", *args.tasks]
    times = ", ".join(f"{p} {(clock[p] - clock[q]) / 60:.1f} min" for q, p in zip(["start", *phases], phases,
                                                                                       strict=False))
    recordings = (f"{args.hours:g}-h nights" if args.hours == args.night_hours else
                  f"{args.hours:g}-h windows of {args.night_hours:g}-h nights")
    conditions = (f"{args.nights} simulated {recordings}, {args.variability} variability "
                  f"({args.nights - sum(SUBJECTS.values())}/"
                  f"{SUBJECTS['train']}/{SUBJECTS['val']}/{SUBJECTS['test']} pretrain/train/val/test subjects), "
                  f"`{args.study}` study ({_model_text(args)}), {args.seeds} seeds, commit {commit}")
    budget = (f"pretraining {args.pretrain_steps} steps of 32 per model ({len(MODALITIES)} NeuroNets + fusion); "
              f"scratch and fine-tune {args.tune_epochs} epochs over the labelled windows, batches of 4 windows "
              f"× 2 accumulated, lr 3e-3, 10 % warm-up then cosine; probe 100 epochs of 256 on cached "
              f"embeddings, lr 1e-3; every model selected on the validation subjects"
              + (f"; fine-tune distilled from the `{args.teacher_study}` study's fine-tuned model of the same labels "
                 "and seed, over every training window" if args.teacher_study else ""))
    _write_results(rows, args.tasks, args.fractions, out,
                   [conditions, budget, f"time: {times}; total {total / 60:.1f} min"],
                   {"conditions": conditions, "budget": budget, "seconds": total, "args": arguments_record(args),
                    "schedules": {k: dataclasses.asdict(v) for k, v in budgets.items()}})


if __name__ == "__main__":
    main()

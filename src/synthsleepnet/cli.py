"""SynthSleepNet command line: read, prepare, pretrain, adapt and score polysomnography.

Each subcommand is a thin layer over one public Python function.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._config import PreprocessingConfig, config_from_dict, load_config_file
from ._logging import logger

__all__ = ["main"]


def _doc(func: Callable[..., Any]) -> str:
    """First paragraph of a function's docstring, used as the subcommand's help."""
    return (func.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _install_handler(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)] + [handler]
    logger.setLevel(level)


def _preprocessing(path: str | None) -> PreprocessingConfig:
    if path is None:
        return PreprocessingConfig()
    data = load_config_file(path)
    return config_from_dict(PreprocessingConfig, data.get("preprocessing", data))


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


# --- info -----------------------------------------------------------------------------------
def _cmd_info(args: argparse.Namespace) -> int:
    from .io import load_channel_table, read_recording
    from .preprocessing import describe_recording

    recording = read_recording(args.file)
    rows = describe_recording(recording, config=_preprocessing(args.config),
                              channel_table=load_channel_table(args.channel_file))
    if args.json:
        _print(json.dumps({"file": str(recording.path), "start": str(recording.start),
                           "duration_s": recording.duration_s, "channels": rows,
                           "annotations": len(recording.annotations), "notes": recording.notes},
                          indent=1))
        return 0
    _print(f"{recording.path}  start {recording.start or 'anonymised'}  "
           f"duration {recording.duration_s:.1f} s  annotations {len(recording.annotations)}")
    for note in recording.notes:
        _print(f"  note: {note}")
    width = max((len(r["label"]) for r in rows), default=5)
    _print(f"  {'label':<{width}}  {'Hz':>7}  {'seconds':>9}  {'unit':<6}  use")
    for r in rows:
        _print(f"  {r['label']:<{width}}  {r['sfreq']:>7g}  {r['duration_s']:>9.1f}  "
               f"{r['unit'] or '-':<6}  {r['use']}")
    return 0


# --- prepare --------------------------------------------------------------------------------
def _cmd_prepare(args: argparse.Namespace) -> int:
    from .io import RecordingFiles
    from .store import prepare_store

    inputs: Any
    if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir():
        if args.scoring:
            raise SystemExit("--scoring pairs files one by one; with a folder use --scoring-dir")
        inputs = args.inputs[0]
    else:
        scorings = args.scoring or [None] * len(args.inputs)
        if len(scorings) != len(args.inputs):
            raise SystemExit(f"got {len(args.inputs)} recordings but {len(scorings)} --scoring files")
        inputs = [RecordingFiles(Path(r), Path(s) if s else None)
                  for r, s in zip(args.inputs, scorings, strict=True)]
    summary = prepare_store(inputs, args.out, config=_preprocessing(args.config),
                            scoring_dirs=args.scoring_dir, channel_file=args.channel_file,
                            required=args.require, cohort=args.cohort,
                            subject_pattern=args.subject_pattern, workers=args.workers,
                            overwrite=args.overwrite, progress=not args.quiet)
    for report in summary.reports.values():
        _print(report)
    _print(summary.text())
    return 0 if summary.ok or args.keep_going else 1


# --- inspect --------------------------------------------------------------------------------
def _cmd_inspect(args: argparse.Namespace) -> int:
    from .store import EpochStore

    summary = EpochStore(args.store).summary()
    if args.json:
        _print(json.dumps(summary, indent=1))
        return 0
    _print(f"{summary['path']}: {summary['nights']} nights, {summary.get('subjects', 0)} subjects, "
           f"{summary['epochs']} epochs ({summary.get('hours', 0)} h)")
    for key in ("nights_per_modality", "nights_per_channel", "stages", "splits"):
        if key in summary:
            _print(f"  {key.replace('_', ' ')}: " +
                   ", ".join(f"{k} {v}" for k, v in summary[key].items()))
    if "apnea_epochs" in summary:
        _print(f"  apnea epochs {summary['apnea_epochs']}, hypopnea epochs {summary['hypopnea_epochs']}")
    return 0


# --- training -------------------------------------------------------------------------------
_TRAIN_FLAGS = ("epochs", "batch_size", "accumulate", "base_lr", "weight_decay", "seed", "max_steps_per_epoch")


def _train_config(args: argparse.Namespace, stage: str) -> Any:
    """Stage defaults, then the config file's [train] table, then command-line flags."""
    from ._config import STAGE_DEFAULTS, TrainConfig, config_to_dict

    values = config_to_dict(STAGE_DEFAULTS[stage])
    if args.config:
        values.update(load_config_file(args.config).get("train", {}))
    values.update({k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None})
    if args.no_bf16:
        values["bf16"] = False
    return config_from_dict(TrainConfig, values)


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="epoch store folder")
    p.add_argument("--out", required=True, help="output folder (checkpoint, log.csv, tensorboard/)")
    p.add_argument("--config", help="TOML/YAML/JSON file with a [train] table")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--accumulate", type=int, help="micro-batches per optimiser step")
    p.add_argument("--base-lr", type=float, help="learning rate per 256 items")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    p.add_argument("--no-bf16", action="store_true", help="train in float32")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _print_fit(result: Any) -> None:
    last = result.history[-1] if result.history else {}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
    _print(f"saved {result.checkpoint}" + (f" (best validation epoch {result.best_epoch})" if result.best_epoch else ""))
    if shown:
        _print(f"last epoch: {shown}")


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from .training import pretrain_multimodal, pretrain_unimodal

    if args.kind == "unimodal":
        result = pretrain_unimodal(args.store, args.modality, args.out, preset=args.preset,
                                   config=_train_config(args, "pretrain_unimodal"), resume=args.resume,
                                   progress=not args.quiet)
    else:
        encoders = {}
        for item in args.encoders:
            modality, sep, path = item.partition("=")
            if not sep:
                raise SystemExit(f"--encoders takes MODALITY=CHECKPOINT, got {item!r}")
            encoders[modality] = path
        result = pretrain_multimodal(args.store, encoders, args.out, channels=args.channels,
                                     config=_train_config(args, "pretrain_multimodal"), resume=args.resume,
                                     progress=not args.quiet)
    _print_fit(result)
    return 0


def _cmd_adapt(args: argparse.Namespace) -> int:
    from .training import finetune, probe

    if (args.fusion is None) == (not args.scratch):
        raise SystemExit("give --fusion CHECKPOINT (pretrained) or --scratch (same architecture, random start)")
    func = probe if args.command == "probe" else finetune
    result = func(args.store, args.task, args.labels, args.out, fusion_checkpoint=args.fusion,
                  preset=args.preset, channels=args.channels, config=_train_config(args, args.command),
                  resume=args.resume, progress=not args.quiet)
    _print_fit(result)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate

    metrics = evaluate(args.checkpoint, args.store, split=args.split)
    if args.json:
        _print(json.dumps(metrics, indent=1, default=float))
        return 0
    _print(f"{metrics['task']} on {metrics['nights']} {metrics['split']} nights ({metrics['n_epochs']} epochs): "
           f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, kappa {metrics['kappa']:.3f}")
    _print("  per-class F1: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics["f1"].items()))
    for key in ("auroc", "auprc", "event_f1"):
        if key in metrics:
            _print(f"  {key}: {metrics[key]:.3f}")
    return 0


# --- scoring --------------------------------------------------------------------------------
def _cmd_score(args: argparse.Namespace) -> int:
    from .export import export_all
    from .report import write_report
    from .scoring import score_recording

    out = Path(args.out)
    if (out / "summary.json").exists() and not args.overwrite:
        raise SystemExit(f"{out} already holds a scored night; pass --overwrite to replace it")
    result = score_recording(args.recording, args.model, annotations=args.annotations,
                             channel_file=args.channel_file, threshold=args.threshold)
    export_all(result, out, overwrite=args.overwrite)
    _, html_path = write_report(result, out)
    stats, resp = result.sleep_statistics(), result.ahi()
    _print(f"{args.recording}: {result.n_epochs} epochs; modalities used {', '.join(result.modalities_used)} "
           f"({', '.join(result.channels_used)})")
    if result.channels_missing:
        _print(f"  not in this recording: {', '.join(result.channels_missing)}")
    for note in result.notes:
        _print(f"  note: {note}")
    _print(f"  TST {stats['TST_min']:.1f} min, SE {stats['SE_pct']:.1f} %, SOL {stats['SOL_min']:.1f} min, "
           f"WASO {stats['WASO_min']:.1f} min; AHI {resp['ahi']:.1f}/h ({resp['severity']})")
    agreement = result.agreement()
    if agreement:
        _print(f"  agreement with {args.annotations}: accuracy {agreement['accuracy']:.3f}, kappa {agreement['kappa']:.3f}")
    _print(f"  wrote {out}/epochs.csv, summary.json, annotations.edf, events.tsv, annotations_edfbrowser.txt, "
           f"report.png; open {html_path}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from .io import read_scoring
    from .stats import sleep_statistics

    scoring = read_scoring(args.hypnogram)
    stats = sleep_statistics(scoring.stages, scoring.epoch_s, lights_off_s=scoring.lights_off_s,
                             lights_on_s=scoring.lights_on_s)
    if args.json:
        _print(json.dumps(stats, indent=1))
        return 0
    _print(f"{args.hypnogram}: {scoring.n_epochs} epochs of {scoring.epoch_s:g} s")
    for key, value in stats.items():
        _print(f"  {key:<16} {value:9.2f}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from .scoring import embed_epochs, write_embeddings

    table = embed_epochs(args.source, args.model)
    path = write_embeddings(table, args.out, overwrite=args.overwrite)
    _print(f"wrote {len(table)} epochs × {table.shape[1] - 3} dimensions to {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(args.out, nights=args.nights, hours=args.hours, steps=args.steps, progress=not args.quiet,
                      verbose=logger.level if args.verbose else "info")
    agreement = result["agreement"]
    _print(f"demo finished in {sum(result['timings_s'].values()):.0f} s: " +
           ", ".join(f"{k} {v:.0f} s" for k, v in result["timings_s"].items()))
    _print(f"held-out night {result['night']}: agreement with its ground truth: accuracy "
           f"{agreement['accuracy']:.3f}, kappa {agreement['kappa']:.3f} (tiny model, {args.steps} steps per stage)")
    _print(f"AHI estimate {result['respiratory']['ahi']:.1f}/h ({result['respiratory']['severity']})")
    _print(f"report: {result['report']}")
    return 0


# --- models ---------------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_presets

    rows = describe_presets()
    if args.json:
        _print(json.dumps(rows, indent=1))
        return 0
    _print(f"{'preset':<7} {'NeuroNet':>10} {'SynthSleepNet (4 ch)':>22} {'trainable':>10} "
           f"{'temporal':>9}  GFLOP/epoch/modality (conv + frame MLP + transformer)")
    for r in rows:
        g = r["gflops_per_epoch_per_modality"]
        _print(f"{r['preset']:<7} {r['neuronet_params'] / 1e6:>9.1f}M {r['synthsleepnet_params'] / 1e6:>21.1f}M "
               f"{r['synthsleepnet_trainable'] / 1e6:>9.1f}M {r['temporal_params'] / 1e6:>8.2f}M  "
               f"{g['total']:.2f} = {g['conv']:.2f} + {g['frame_mlp']:.2f} + {g['transformer']:.2f}")
    return 0


# --- simulate -------------------------------------------------------------------------------
def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_cohort

    out = Path(args.out)
    existing = sorted(out.glob("*.edf")) if out.exists() else []
    if existing and not args.overwrite:
        raise SystemExit(f"{out} already holds {len(existing)} EDF files; pass --overwrite to replace them")
    paths = simulate_cohort(out, args.nights, args.hours, seed=args.seed, ahi=args.ahi,
                            progress=not args.quiet)
    _print(f"wrote {len(paths)} nights to {out} (EDF+ signals, NSRR XML scorings)")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    from .preprocessing import describe_recording
    from .simulate import simulate_cohort
    from .store import EpochStore, prepare_store
    from .training import evaluate, finetune, pretrain_multimodal, pretrain_unimodal, probe

    parser = argparse.ArgumentParser(prog="synthsleepnet", description=__doc__)
    parser.add_argument("--version", action="version", version=f"synthsleepnet {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help=_doc(describe_recording), description=_doc(describe_recording))
    p.add_argument("file", help="EDF/EDF+/BDF recording (or any format MNE reads)")
    p.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases")
    p.add_argument("--config", help="TOML/YAML/JSON file with preprocessing settings")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("prepare", help=_doc(prepare_store), description=_doc(prepare_store))
    p.add_argument("inputs", nargs="+", help="a folder of recordings, or recording files")
    p.add_argument("--out", required=True, help="store folder (created if needed)")
    p.add_argument("--scoring", action="append", help="scoring file for each recording, in order")
    p.add_argument("--scoring-dir", action="append", default=[], help="extra folder to search for scorings")
    p.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases")
    p.add_argument("--config", help="TOML/YAML/JSON file with preprocessing settings")
    p.add_argument("--require", action="append", default=[],
                   help="modality or canonical channel every night must have (repeatable)")
    p.add_argument("--cohort", default="", help="cohort name for the manifest")
    p.add_argument("--subject-pattern", help="regex with one group extracting the subject id")
    p.add_argument("--workers", type=int, default=1, help="nights prepared in parallel")
    p.add_argument("--overwrite", action="store_true", help="re-prepare nights already in the store")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some nights failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("inspect", help=_doc(EpochStore.summary), description=_doc(EpochStore.summary))
    p.add_argument("store", help="store folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("pretrain", help="self-supervised pretraining (unimodal NeuroNet, multimodal fusion)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    q = kinds.add_parser("unimodal", help=_doc(pretrain_unimodal), description=_doc(pretrain_unimodal))
    q.add_argument("--modality", required=True, choices=["eeg", "eog", "emg", "ecg", "resp", "spo2"])
    q.add_argument("--preset", default="tiny", help="model size: paper, small or tiny")
    _add_train_flags(q)
    q.set_defaults(func=_cmd_pretrain)
    q = kinds.add_parser("multimodal", help=_doc(pretrain_multimodal), description=_doc(pretrain_multimodal))
    q.add_argument("--encoders", nargs="+", required=True, metavar="MODALITY=CKPT",
                   help="unimodal checkpoints, e.g. eeg=runs/eeg/model.safetensors")
    q.add_argument("--channels", nargs="+", help="canonical channels (default: one per modality)")
    _add_train_flags(q)
    q.set_defaults(func=_cmd_pretrain)

    for name, func in (("probe", probe), ("finetune", finetune)):
        q = sub.add_parser(name, help=_doc(func), description=_doc(func))
        q.add_argument("--task", required=True, choices=["stage", "apnea", "hypopnea"])
        q.add_argument("--labels", type=float, default=1.0,
                       help="fraction of the labelled-train epochs used (0.01, 0.05, 1.0)")
        q.add_argument("--fusion", help="multimodal checkpoint to start from")
        q.add_argument("--scratch", action="store_true", help="random start: the scratch baseline")
        q.add_argument("--preset", default="tiny", help="model size for --scratch")
        q.add_argument("--channels", nargs="+", help="canonical channels (scratch default: one per modality)")
        _add_train_flags(q)
        q.set_defaults(func=_cmd_adapt)

    q = sub.add_parser("evaluate", help=_doc(evaluate), description=_doc(evaluate))
    q.add_argument("checkpoint", help="probe or fine-tune checkpoint")
    q.add_argument("--store", required=True, help="epoch store folder")
    q.add_argument("--split", default="test", choices=["pretrain", "train", "val", "test"])
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_evaluate)

    from .demo import run_demo
    from .scoring import embed_epochs, score_recording
    from .stats import sleep_statistics

    q = sub.add_parser("score", help=_doc(score_recording), description=_doc(score_recording))
    q.add_argument("recording", help="EDF/EDF+/BDF recording")
    q.add_argument("--model", action="append", required=True,
                   help="probe or fine-tune checkpoint; repeat for stage, apnea and hypopnea models")
    q.add_argument("--annotations", help="reference scoring to compare with")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases")
    q.add_argument("--threshold", type=float, default=0.5, help="event probability threshold")
    q.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    q.set_defaults(func=_cmd_score)

    q = sub.add_parser("stats", help=_doc(sleep_statistics), description=_doc(sleep_statistics))
    q.add_argument("hypnogram", help="any scoring file the data layer reads")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_stats)

    q = sub.add_parser("embed", help=_doc(embed_epochs), description=_doc(embed_epochs))
    q.add_argument("source", help="a recording or an epoch store")
    q.add_argument("--model", required=True, help="multimodal, probe or fine-tune checkpoint")
    q.add_argument("--out", required=True, help="Parquet file")
    q.add_argument("--overwrite", action="store_true", help="replace an existing file")
    q.set_defaults(func=_cmd_embed)

    q = sub.add_parser("demo", help=_doc(run_demo), description=_doc(run_demo))
    q.add_argument("--out", default="demo", help="output folder")
    q.add_argument("--nights", type=int, default=8)
    q.add_argument("--hours", type=float, default=1.5)
    q.add_argument("--steps", type=int, default=25, help="optimiser steps per stage")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_demo)

    models_help = ("Parameter counts and encoder GFLOPs per 30-s epoch per modality, for every preset "
                   "(see synthsleepnet.models.describe_presets).")
    p = sub.add_parser("models", help=models_help, description=models_help)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("simulate", help=_doc(simulate_cohort), description=_doc(simulate_cohort))
    p.add_argument("--nights", type=int, default=4, help="number of nights")
    p.add_argument("--hours", type=float, default=8.0, help="time in bed per night, hours")
    p.add_argument("--seed", type=int, default=0, help="seed of the first night (then +1, +2...)")
    p.add_argument("--ahi", type=float, help="apnea-hypopnea index of every night (default: drawn)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``synthsleepnet`` command; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _install_handler(logging.WARNING - 10 * min(args.verbose, 2))
    try:
        return int(args.func(args))
    except (ValueError, OSError, KeyError) as err:
        logger.error("%s", err)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

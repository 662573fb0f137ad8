"""SynthSleepNet command line: read, prepare, pretrain, adapt and score polysomnography.

Each subcommand is a thin layer over one public Python function. The parser imports nothing
heavy: help texts are read from the functions' docstrings in the source, and each command
imports what it runs, so ``--help``, ``info``, ``stats`` and ``inspect`` never import torch.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import datetime as dt
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._config import PRESETS, RunConfig, load_run_config
from ._json import strict_json
from ._logging import log_to_stderr, logger
from ._validation import clock_time, failure_text
from ._version import __version__
from .io.channels import MODALITIES
from .tasks import TASKS

__all__ = ["main", "run"]

_PACKAGE = Path(__file__).resolve().parent


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _doc(module: str, qualname: str) -> str:
    """First paragraph of a function's docstring, read from its source file (nothing imported).

    Only the function's own lines are parsed: parsing the 16 modules whole took 0.1 s of every
    ``--help``. A block ends at the first line indented no deeper than its ``def`` or ``class``
    (a signature's closing bracket excepted).
    """
    lines = _PACKAGE.joinpath(*module.split(".")).with_suffix(".py").read_text(encoding="utf-8").splitlines()
    start, end = 0, len(lines)
    for depth, part in enumerate(qualname.split(".")):
        indent = r"\s+" if depth else ""  # a top-level name, then its members
        header = re.compile(rf"{indent}(?:def|class) {part}\b")
        start = next(i for i in range(start, end) if header.match(lines[i]))
        end = next((i for i in range(start + 1, end) if lines[i].strip() and _indent(lines[i]) <= _indent(lines[start])
                    and lines[i].lstrip()[0] not in ")]"), end)
    node: Any = ast.parse(textwrap.dedent("\n".join(lines[start:end]))).body[0]
    return (ast.get_docstring(node) or "").split("\n\n")[0].replace("\n", " ")


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _run_config(args: argparse.Namespace) -> RunConfig:
    return load_run_config(getattr(args, "config", None))


# --- info -----------------------------------------------------------------------------------
def _cmd_info(args: argparse.Namespace) -> int:
    from ._atomic import atomic_write_text
    from ._validation import check_fname
    from .io import load_channel_table, read_recording
    from .io.annotations import embedded_scoring
    from .preprocessing import describe_recording, suggest_channel_file

    if args.suggest:
        check_fname(args.suggest, overwrite=args.overwrite, what="channel file")
    recording = read_recording(args.file)
    config = _run_config(args).preprocessing
    rows = describe_recording(recording, config=config, channel_table=load_channel_table(args.channel_file))
    own = embedded_scoring(recording, config.epoch_s)
    staged = int((own.stages >= 0).sum()) if own is not None else 0
    if args.suggest:
        atomic_write_text(args.suggest, suggest_channel_file(rows, str(recording.path)))
        logger.warning("wrote %s: complete it and pass it with --channel-file", args.suggest)
    if args.json:
        _print(strict_json({"file": str(recording.path), "start": str(recording.start),
                            "duration_s": recording.duration_s, "channels": rows,
                            "annotations": len(recording.annotations), "own_scoring_epochs": staged,
                            "notes": recording.notes}))
        return 0
    _print(f"{recording.path}  start {recording.start or 'anonymised'}  "
           f"duration {recording.duration_s:.1f} s  annotations {len(recording.annotations)}")
    for note in recording.notes:
        _print(f"  note: {note}")
    if staged:
        _print(f"  its own scoring: {staged} epochs staged in its annotations (score compares with it, and "
               "prepare takes its labels from it, when no scoring file is given)")
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
            raise ValueError("--scoring pairs files one by one; with a folder use --scoring-dir")
        inputs = args.inputs[0]
    else:
        scorings = args.scoring or [None] * len(args.inputs)
        if len(scorings) != len(args.inputs):
            raise ValueError(f"got {len(args.inputs)} recordings but {len(scorings)} --scoring files")
        inputs = [RecordingFiles(Path(r), Path(s) if s else None)
                  for r, s in zip(args.inputs, scorings, strict=True)]
    summary = prepare_store(inputs, args.out, config=_run_config(args).preprocessing,
                            scoring_dirs=args.scoring_dir, channel_file=args.channel_file,
                            required=args.require, cohort=args.cohort,
                            subject_pattern=args.subject_pattern, workers=args.workers, engine=args.engine,
                            scheduler=args.scheduler, overwrite=args.overwrite, progress=not args.quiet)
    for report in summary.reports.values():
        _print(report)
    _print(summary.text())
    return 0 if summary.ok or args.keep_going else 1


# --- inspect --------------------------------------------------------------------------------
def _cmd_inspect(args: argparse.Namespace) -> int:
    from .store import EpochStore

    summary = EpochStore(args.store).summary()
    if args.json:
        _print(strict_json(summary))
        return 0
    _print(f"{summary['path']}: {summary['nights']} nights, {summary.get('subjects', 0)} subjects, "
           f"{summary['epochs']} epochs ({summary.get('hours', 0)} h)")
    for key in ("nights_per_modality", "nights_per_channel", "stages", "splits"):
        if key in summary:
            _print(f"  {key.replace('_', ' ')}: " +
                   ", ".join(f"{k} {v}" for k, v in summary[key].items()))
    events = [f"{k.removesuffix('_epochs')} {v}" for k, v in summary.items() if k.endswith("_epochs")]
    if events:
        _print(f"  event epochs: {', '.join(events)}")
    return 0


# --- training -------------------------------------------------------------------------------
_TRAIN_FLAGS = ("epochs", "batch_size", "accumulate", "base_lr", "weight_decay", "seed", "max_steps_per_epoch",
                "device", "precision", "workers")


def _train_config(args: argparse.Namespace, phase: str) -> Any:
    """Phase defaults, then the config file's [train] table, then command-line flags."""
    return _run_config(args).train_config(phase, **{k: getattr(args, k) for k in _TRAIN_FLAGS})


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"],
                   help="auto: bf16 where the hardware has it, else fp32")


def _add_lights_flags(p: argparse.ArgumentParser) -> None:
    for mark in ("off", "on"):
        p.add_argument(f"--lights-{mark}", type=_clock_time, metavar="HH:MM[:SS]",
                       help=f"clock time of lights {mark} (time in bed runs from lights off to lights on; default: "
                            "the marks in the files, else the whole night)")


def _clock_time(value: str) -> dt.time:
    """:func:`clock_time` for argparse, which shows an ``ArgumentTypeError``'s own words."""
    try:
        return clock_time(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="epoch store folder")
    p.add_argument("--out", required=True, help="output folder (checkpoint, log.csv, tensorboard/)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--accumulate", type=int, help="micro-batches per optimiser step")
    p.add_argument("--base-lr", type=float, help="learning rate per 256 items")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    p.add_argument("--workers", type=int, help="data-loader worker processes (results do not change)")
    _add_runtime_flags(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    group.add_argument("--restart", action="store_true", help="discard the run in --out and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _print_fit(result: Any) -> None:
    last = result.history[-1] if result.history else {}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
    _print(f"saved {result.checkpoint}" + (f" (best validation epoch {result.best_epoch})" if result.best_epoch else ""))
    if shown:
        _print(f"last epoch: {shown}")
    if result.skipped:
        _print(f"left out {len(result.skipped)} night(s); see {Path(result.checkpoint).parent / 'skipped.json'}")


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from .training import pretrain_multimodal, pretrain_unimodal

    run = _run_config(args)
    if args.kind == "unimodal":
        result = pretrain_unimodal(args.store, args.modality, args.out, preset=run.model_config(args.preset),
                                   config=_train_config(args, "pretrain_unimodal"), resume=args.resume,
                                   restart=args.restart, progress=not args.quiet)
    else:
        encoders = {}
        for item in args.encoders:
            modality, sep, path = item.partition("=")
            if not sep:
                raise ValueError(f"--encoders takes MODALITY=CHECKPOINT, got {item!r}")
            encoders[modality] = path
        result = pretrain_multimodal(args.store, encoders, args.out, channels=args.channels,
                                     config=_train_config(args, "pretrain_multimodal"), resume=args.resume,
                                     restart=args.restart, progress=not args.quiet)
    _print_fit(result)
    return 0


def _cmd_adapt(args: argparse.Namespace) -> int:
    from .training import finetune, probe

    if (args.fusion is None) == (not args.scratch):
        raise ValueError("give --fusion CHECKPOINT (pretrained) or --scratch (same architecture, random start)")
    run = _run_config(args)
    func = probe if args.command == "probe" else finetune
    distill = {"teacher": args.teacher} if args.command == "finetune" else {}
    result = func(args.store, args.task, args.labels, args.out, fusion_checkpoint=args.fusion,
                  preset=run.model_config(args.preset) if args.scratch else None, channels=args.channels,
                  config=_train_config(args, args.command), adapt=run.adapt, resume=args.resume,
                  restart=args.restart, progress=not args.quiet, **distill)
    _print_fit(result)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate

    metrics = evaluate(args.checkpoint, args.store, split=args.split, device=args.device or "auto",
                       precision=args.precision or "auto")
    if args.json:
        _print(strict_json(metrics))
        return 0
    _print(f"{metrics['task']} on {metrics['nights']} {metrics['split']} nights ({metrics['n_epochs']} epochs): "
           f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, kappa {metrics['kappa']:.3f}")
    _print("  per-class F1: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics["f1"].items()))
    for key in ("auroc", "auprc", "event_f1"):
        if key in metrics:
            _print(f"  {key}: {metrics[key]:.3f}")
    for night, reason in metrics["skipped"].items():
        _print(f"  left out {night}: {reason}")
    return 0


# --- scoring --------------------------------------------------------------------------------
def _cmd_score(args: argparse.Namespace) -> int:
    from .cardiac import describe_cardiac
    from .positional import describe_position
    from .respiratory import describe_respiratory
    from .score_files import reuse_freed_memory, score_night, score_nights

    reuse_freed_memory()

    device, precision = args.device or "auto", args.precision or "auto"
    batch = len(args.recordings) > 1 or Path(args.recordings[0]).is_dir()
    if batch:
        if args.annotations:
            raise ValueError("--annotations pairs with one recording; in a batch, scorings beside the recordings "
                             "are found by their names")
        summary = score_nights(args.recordings if len(args.recordings) > 1 else args.recordings[0], args.model,
                               args.out, channel_file=args.channel_file, overwrite=args.overwrite,
                               threshold=args.threshold, require=args.require, progress=not args.quiet, device=device,
                               precision=precision, workers=args.workers, lights=(args.lights_off, args.lights_on))
        _print(summary.text())
        return 0 if summary.ok else 1
    scored = score_night(args.recordings[0], args.model, args.out, annotations=args.annotations,
                         channel_file=args.channel_file, overwrite=args.overwrite, threshold=args.threshold,
                         require=args.require, device=device, precision=precision,
                         lights=(args.lights_off, args.lights_on))
    result = scored.result
    if result.reliability["level"] != "full":
        _print(f"WARNING: reliability {result.reliability['level'].upper()}: "
               + "; ".join(result.reliability["reasons"]))
    stats, resp = result.sleep_statistics(), result.respiratory()
    _print(f"{args.recordings[0]}: {result.n_epochs} epochs; modalities used {', '.join(result.modalities_used)} "
           f"({', '.join(result.channels_used)})")
    if result.channels_missing:
        _print(f"  not used (absent, or skipped as noted): {', '.join(result.channels_missing)}")
    for note in result.notes:
        _print(f"  note: {note}")
    sleep = (f"TST {stats['TST_min']:.1f} min, SE {stats['SE_pct']:.1f} %, SOL {stats['SOL_min']:.1f} min, "
             f"WASO {stats['WASO_min']:.1f} min" if result.stage_proba is not None else "no stage model")
    _print(f"  {sleep}; {describe_respiratory(resp)}"
           + (f"; ODI3 {resp['ODI3']:.1f}/h, T90 {resp['T90_min']:.1f} min, SpO2 min {resp['spo2_min']:.0f} %"
              if "ODI3" in resp else "")
           + f"; {describe_cardiac(result.cardiac())}")
    if result.body_position is not None:
        _print(f"  body position: {describe_position(result.position())}")
    agreement = result.agreement()
    if agreement:
        _print(f"  agreement with {args.annotations or 'its own scoring'}: accuracy {agreement['accuracy']:.3f}, "
               f"kappa {agreement['kappa']:.3f}")
    _print(f"  wrote {', '.join(p.name for p in scored.outputs.values())} to {args.out}; "
           f"open {scored.outputs['html']}")
    return 0


def _stats_inputs(args: argparse.Namespace) -> list[tuple[str | None, str | None]]:
    """The (scoring, recording) pairs ``stats`` is asked for: scoring files (one with
    ``--recording``), or the recordings of a folder each with the scoring found beside it."""
    if args.recordings:
        from .io.discover import find_recordings

        if args.hypnogram or args.recording:
            raise ValueError("give scoring files or --recordings FOLDER, not both")
        found = find_recordings(args.recordings, scoring_dirs=args.scoring_dir)
        if not found:
            raise ValueError(f"{args.recordings}: holds no recordings")
        return [(None if f.scoring is None else str(f.scoring), str(f.recording)) for f in found]
    if not args.hypnogram:
        raise ValueError("give a scoring file (or several), or --recordings FOLDER")
    if args.recording and len(args.hypnogram) != 1:
        raise ValueError(f"--recording goes with one scoring, not {len(args.hypnogram)}: its heart rate is measured by "
                         "that scoring's stages (--recordings FOLDER pairs many)")
    return [(path, args.recording) for path in args.hypnogram]


def _cmd_stats(args: argparse.Namespace) -> int:
    from .stats import scoring_statistics

    lights = (args.lights_off, args.lights_on)
    pairs = _stats_inputs(args)
    channel_table = None
    if any(recording for _, recording in pairs):
        from .io.channels import load_channel_table

        channel_table = load_channel_table(args.channel_file)

    def statistics(scoring: str | None, recording: str | None) -> dict[str, Any]:
        if scoring is None:
            raise ValueError(f"{recording}: no scoring found beside it (--scoring-dir says where else to look)")
        if recording is None:
            return scoring_statistics(scoring, lights=lights)
        return scoring_statistics(scoring, lights=lights, recording=recording, channel_table=channel_table)

    if len(pairs) == 1 and not args.out and not args.recordings:
        stats = statistics(*pairs[0])
        if args.json:
            _print(strict_json(stats))
            return 0
        _print(f"{pairs[0][0]}:")
        for key, value in stats.items():
            _print(f"  {key:<16} {value:9.2f}" if isinstance(value, float) else f"  {key:<16} {value:>9}")
        return 0
    import pandas as pd

    rows, failed = [], {}
    for scoring, recording in pairs:  # one unreadable file never stops the others
        row = {"scoring": scoring, **({"recording": recording} if args.recordings else {})}
        try:
            rows.append({**row, **statistics(scoring, recording)})
        except Exception as err:  # reported in its row and the exit status, as a batch's nights are
            name = str(scoring or recording)
            failed[name] = failure_text(err, scoring, recording)
            rows.append({**row, "error": failed[name]})
    table = pd.DataFrame(rows)
    if args.out:
        from ._atomic import atomic_write_text

        atomic_write_text(Path(args.out), table.to_csv(index=False))
        _print(f"{len(rows) - len(failed)} scoring(s) → {args.out}")
    else:
        _print(table.to_json(orient="records", indent=1) if args.json else table.to_csv(index=False).rstrip())
    for why in failed.values():
        logger.error("FAILED %s", why)
    return 1 if failed else 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from ._validation import check_fname
    from .scoring import embed_epochs, write_embeddings

    check_fname(args.out, overwrite=args.overwrite, what="embeddings file")  # before the work, not after
    table = embed_epochs(args.source, args.model, device=args.device or "auto", precision=args.precision or "auto")
    path = write_embeddings(table, args.out, overwrite=args.overwrite)
    _print(f"wrote {len(table)} epochs × {table.shape[1] - 3} dimensions to {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .cardiac import describe_cardiac
    from .demo import run_demo
    from .positional import describe_position
    from .respiratory import describe_respiratory

    result = run_demo(args.out, nights=args.nights, hours=args.hours, steps=args.steps, progress=not args.quiet,
                      device=args.device or "auto", precision=args.precision or "auto",
                      verbose=logger.level if args.verbose else "info")
    agreement = result["agreement"]
    _print(f"demo finished in {sum(result['timings_s'].values()):.0f} s: " +
           ", ".join(f"{k} {v:.0f} s" for k, v in result["timings_s"].items()))
    _print(f"held-out night {result['night']}: agreement with its ground truth: accuracy "
           f"{agreement['accuracy']:.3f}, kappa {agreement['kappa']:.3f} (tiny model, {args.steps} steps per stage)")
    _print(f"respiratory estimate: {describe_respiratory(result['respiratory'])}")
    _print(describe_cardiac(result["cardiac"]))
    _print(f"body position: {describe_position(result['position'])}")
    _print(f"report: {result['report']}")
    return 0


# --- models ---------------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_presets

    rows = describe_presets()
    if args.json:
        _print(strict_json(rows))
        return 0
    _print(f"{'preset':<7} {'NeuroNet':>10} {'SynthSleepNet (4 ch)':>22} {'trainable':>10} "
           f"{'temporal':>9}  GFLOP/epoch/modality (conv + frame MLP + transformer)")
    for r in rows:
        g = r["gflops_per_epoch_per_modality"]
        _print(f"{r['preset']:<7} {r['neuronet_params'] / 1e6:>9.1f}M {r['synthsleepnet_params'] / 1e6:>21.1f}M "
               f"{r['synthsleepnet_trainable'] / 1e6:>9.1f}M {r['temporal_params'] / 1e6:>8.2f}M  "
               f"{g['total']:.2f} = {g['conv']:.2f} + {g['frame_mlp']:.2f} + {g['transformer']:.2f}")
    return 0


# --- fetch ----------------------------------------------------------------------------------
def _cmd_fetch(args: argparse.Namespace) -> int:
    from .fetch import DATASETS, fetch, list_files, read_token

    token = read_token(args.token_file)
    if args.list:
        files = list_files(args.dataset, token=token, mirror=args.mirror, subjects=args.subjects, limit=args.limit)
        for f in files:
            _print(f"{f.path}\t{'' if f.size is None else f.size}")
        _print(f"{len(files)} files of {DATASETS[args.dataset].description}")
        return 0
    summary = fetch(args.dataset, args.out, subjects=args.subjects, limit=args.limit, token=token,
                    mirror=args.mirror, workers=args.workers, progress=not args.quiet)
    _print(summary.text())
    return 0 if summary.ok else 1


# --- run ------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from .recipes import STEPS, run_recipe

    result = run_recipe(args.recipe, args.out, steps=args.steps or STEPS, progress=not args.quiet)
    _print(f"{args.recipe}: ran {', '.join(result.ran) or 'nothing'}; skipped (done before, same settings) "
           f"{', '.join(result.skipped) or 'nothing'}")
    if result.results:
        _print(f"results: {result.results}")
    return 0


# --- simulate -------------------------------------------------------------------------------
def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_cohort

    out = Path(args.out)
    existing = sorted(out.glob("*.edf")) if out.is_dir() else []
    if existing and not args.overwrite:
        raise FileExistsError(f"{out} already holds {len(existing)} EDF files; pass --overwrite to replace them")
    paths = simulate_cohort(out, args.nights, args.hours, seed=args.seed, ahi=args.ahi, style=args.style,
                            variability=args.variability, window_hours=args.window_hours, progress=not args.quiet)
    _print(f"wrote {len(paths)} nights to {out} ({args.style} style, {args.variability} variability: "
           f"{paths[0][0].name}, {paths[0][1].name}, ...)")
    return 0


def _sub(sub: Any, name: str, module: str, qualname: str, func: Callable[[argparse.Namespace], int]
         ) -> argparse.ArgumentParser:
    text = _doc(module, qualname)
    # argparse %-formats a help string (never a description without "%(prog)"): "3 %" must read "3 %%"
    p: argparse.ArgumentParser = sub.add_parser(name, help=text.replace("%", "%%"), description=text)
    p.add_argument("--config", help="TOML/YAML/JSON file with [preprocessing], [model], [adapt], [train] sections")
    p.set_defaults(func=func)
    return p


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthsleepnet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"synthsleepnet {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tasks, presets = list(TASKS), sorted(PRESETS)

    p = _sub(sub, "info", "preprocessing.pipeline", "describe_recording", _cmd_info)
    p.add_argument("file", help="EDF/EDF+/BDF recording (or any format MNE reads)")
    p.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases")
    p.add_argument("--suggest", metavar="FILE.toml", help="write a channel file for the labels not mapped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --suggest file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = _sub(sub, "prepare", "store.build", "prepare_store", _cmd_prepare)
    p.add_argument("inputs", nargs="+", help="a folder of recordings, or recording files")
    p.add_argument("--out", required=True, help="store folder (created if needed)")
    p.add_argument("--scoring", action="append", help="scoring file for each recording, in order")
    p.add_argument("--scoring-dir", action="append", default=[], help="extra folder to search for scorings")
    p.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases")
    p.add_argument("--require", action="append", default=[],
                   help="modality or canonical channel every night must have (repeatable)")
    p.add_argument("--cohort", default="", help="cohort name for the manifest")
    p.add_argument("--subject-pattern", help="regex with one group extracting the subject id")
    p.add_argument("--workers", type=int, default=1, help="nights prepared in parallel (local engine)")
    p.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local process pool, or a Dask distributed cluster (SLURM, PBS, Kubernetes)")
    p.add_argument("--scheduler", help="Dask scheduler address for --engine dask (tcp://host:8786)")
    p.add_argument("--overwrite", action="store_true", help="re-prepare nights already in the store")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some nights failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _sub(sub, "inspect", "store.epoch_store", "EpochStore.summary", _cmd_inspect)
    p.add_argument("store", help="store folder")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("pretrain", help="self-supervised pretraining (unimodal NeuroNet, multimodal fusion)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    q = _sub(kinds, "unimodal", "training.pretrain", "pretrain_unimodal", _cmd_pretrain)
    q.add_argument("--modality", required=True, choices=list(MODALITIES))
    q.add_argument("--preset", choices=presets, help="model size (default: the config's [model] preset, else tiny)")
    _add_train_flags(q)
    q = _sub(kinds, "multimodal", "training.pretrain", "pretrain_multimodal", _cmd_pretrain)
    q.add_argument("--encoders", nargs="+", required=True, metavar="MODALITY=CKPT",
                   help="unimodal checkpoints, e.g. eeg=runs/eeg/model.safetensors")
    q.add_argument("--channels", nargs="+", help="canonical channels (default: one per modality)")
    _add_train_flags(q)

    for name in ("probe", "finetune"):
        q = _sub(sub, name, "training.adapt", name, _cmd_adapt)
        q.add_argument("--task", required=True, choices=tasks)
        q.add_argument("--labels", type=float, default=1.0,
                       help="fraction of the labelled-train epochs used (0.01, 0.05, 1.0)")
        q.add_argument("--fusion", help="multimodal checkpoint to start from")
        q.add_argument("--scratch", action="store_true", help="random start: the scratch baseline")
        q.add_argument("--preset", choices=presets, help="model size for --scratch (default: tiny)")
        q.add_argument("--channels", nargs="+", help="canonical channels (scratch default: one per modality)")
        if name == "finetune":
            q.add_argument("--teacher", metavar="CKPT",
                           help="a fine-tune checkpoint of the task (e.g. a larger preset) whose predictions of "
                                "every training epoch the model also learns (distillation)")
        _add_train_flags(q)

    q = _sub(sub, "evaluate", "training.evaluate", "evaluate", _cmd_evaluate)
    q.add_argument("checkpoint", help="probe or fine-tune checkpoint")
    q.add_argument("--store", required=True, help="epoch store folder")
    q.add_argument("--split", default="test", choices=["pretrain", "train", "val", "test"])
    q.add_argument("--json", action="store_true", help="print JSON")
    _add_runtime_flags(q)

    q = _sub(sub, "score", "score_files", "score_night", _cmd_score)
    q.add_argument("recordings", nargs="+", metavar="RECORDING",
                   help="an EDF/EDF+/BDF recording; several, or a folder, score a batch (score_nights) into "
                        "OUT/<night>/ with a cohort table OUT/nights.csv")
    q.add_argument("--model", action="append", required=True,
                   help=f"probe or fine-tune checkpoint; repeat for each task ({', '.join(tasks)})")
    q.add_argument("--annotations", help="reference scoring to compare with")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases")
    q.add_argument("--threshold", type=float, help="event probability threshold (default: 0.5 for apnea and "
                   "hypopnea models; an events model's own, chosen on its validation nights)")
    q.add_argument("--require", action="append", default=[], metavar="MODALITY",
                   help="refuse to score unless the models can use this modality or channel (e.g. eeg)")
    q.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    q.add_argument("--workers", type=int, default=1,
                   help="nights scored at a time in a batch, each in its own process with its share of the cores")
    q.add_argument("--quiet", action="store_true", help="no progress bar (batches)")
    _add_lights_flags(q)
    _add_runtime_flags(q)

    q = _sub(sub, "stats", "stats", "scoring_statistics", _cmd_stats)
    q.add_argument("hypnogram", nargs="*", help="scoring files the data layer reads; several give a table")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--out", metavar="TABLE.csv", help="write the table (one row per scoring) to this file")
    q.add_argument("--recording", metavar="EDF",
                   help="the scoring's recording: adds the heart rate and its variability by the scoring's stages")
    q.add_argument("--recordings", metavar="FOLDER",
                   help="every recording in FOLDER with the scoring beside it: a table with their heart rates")
    q.add_argument("--scoring-dir", action="append", default=[], help="extra folder to search for scorings")
    q.add_argument("--channel-file", help="TOML/YAML file of extra channel aliases (with --recording(s))")
    _add_lights_flags(q)

    q = _sub(sub, "embed", "scoring.embed", "embed_epochs", _cmd_embed)
    q.add_argument("source", help="a recording or an epoch store")
    q.add_argument("--model", required=True, help="multimodal, probe or fine-tune checkpoint")
    q.add_argument("--out", required=True, help="Parquet file")
    q.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_runtime_flags(q)

    q = _sub(sub, "demo", "demo", "run_demo", _cmd_demo)
    q.add_argument("--out", default="demo", help="output folder")
    q.add_argument("--nights", type=int, default=8)
    q.add_argument("--hours", type=float, default=1.5)
    q.add_argument("--steps", type=int, default=25, help="optimiser steps per stage")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_runtime_flags(q)

    p = _sub(sub, "models", "models.registry", "describe_presets", _cmd_models)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _sub(sub, "fetch", "fetch", "fetch", _cmd_fetch)
    p.add_argument("dataset", choices=["sleep-edf-sc", "sleep-edf-st", "hmc", "shhs", "mesa", "mros", "cfs", "chat"],
                   help="the cohort (NSRR ones need NSRR_TOKEN or --token-file)")
    p.add_argument("--out", default=".", help="folder for <dataset>/ (default: here)")
    p.add_argument("--subjects", nargs="+", help="only these subject ids (as in the file names)")
    p.add_argument("--limit", type=int, help="only the first N subjects")
    p.add_argument("--workers", type=int, default=4, help="files downloaded in parallel")
    p.add_argument("--token-file", help="file holding the NSRR download token (default: $NSRR_TOKEN)")
    p.add_argument("--mirror", help="another server with the same layout")
    p.add_argument("--list", action="store_true", help="list the files (and sizes) without downloading")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _sub(sub, "run", "recipes", "run_recipe", _cmd_run)
    p.add_argument("recipe", help="recipe file (recipes/*.toml)")
    p.add_argument("--out", required=True, help="work folder (every step's outputs, results.md)")
    p.add_argument("--steps", nargs="+", choices=["data", "prepare", "splits", "pretrain", "adapt", "report"],
                   help="only these steps (those before must have run)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = _sub(sub, "simulate", "simulate.cohort", "simulate_cohort", _cmd_simulate)
    p.add_argument("--nights", type=int, default=4, help="number of nights")
    p.add_argument("--hours", type=float, default=8.0, help="time in bed per night, hours")
    p.add_argument("--window-hours", type=float,
                   help="record only this many hours of each night, from a place drawn per night (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first night (then +1, +2...)")
    p.add_argument("--ahi", type=float, help="apnea-hypopnea index of every night (default: drawn)")
    p.add_argument("--style", default="generic",
                   help="write the files as a cohort does: generic, shhs, mesa, sleep-edf or hmc (names, labels, "
                        "rates, units, records, scoring format; synthsleepnet.simulate.styles)")
    p.add_argument("--variability", default="normal",
                   help="low, normal or high: how much subjects and recording sites differ: high adds documented per-subject EEG, "
                        "spindle, REM and heart-rate variation and per-site rates, filters, mains and artefacts "
                        "(synthsleepnet.simulate.variability)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``synthsleepnet`` command; returns the exit status (2 on an error, with its message)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    log_to_stderr(logging.WARNING - 10 * min(args.verbose, 2))
    try:
        return int(args.func(args))
    except (ValueError, OSError) as err:  # every domain error is a ValueError subclass naming its cause
        logger.error("%s", err)
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted; finished nights and epochs are kept, rerun to resume")
        return 130
    except Exception as err:  # a bug: say so in one line; -vv shows where
        logger.error("unexpected %s: %s (please report it; rerun with -vv for the traceback)", type(err).__name__, err)
        logger.debug("traceback", exc_info=True)
        return 3


def exit_now(status: int) -> NoReturn:
    """End the process with ``status`` without tearing the interpreter down.

    Python's shutdown unloads every module and frees every object torch, pandas and matplotlib
    made, then runs the destructors of torch's C++ libraries: after scoring a night that took
    0.65 s (medians of 6 fresh ``score`` processes each way, 2-core AVX2 CPU), more than writing
    the night's exports. Call it once every output is written and closed (ours are atomic): the
    exit handlers run (logging's flush, multiprocessing's joins), the streams are flushed and the
    process ends at once; the operating system reclaims its memory.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (| head), a closed stream
            pass
    os._exit(status)


def run() -> NoReturn:
    """The ``synthsleepnet`` executable: :func:`main`, then :func:`exit_now`."""
    exit_now(main())


if __name__ == "__main__":
    run()

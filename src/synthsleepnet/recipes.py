"""Recipes: one TOML file runs a study end to end, resumably.

``run_recipe("recipes/shhs-paper.toml", "work/")`` (CLI: ``synthsleepnet run RECIPE --out DIR``)
runs data (fetch, simulate or a folder) → prepare → splits → pretrain (unimodal, fusion) →
adapt (probe / fine-tune / scratch at each label fraction and seed) → evaluate → ``results.md``,
our metrics beside the published anchors the recipe lists.

Every step writes into a folder named by the hash of everything it depends on (its recipe
sections and the steps before it) and marks it done last, so rerunning skips finished steps,
resumes interrupted training, and a changed setting re-runs that step and those after it in new
folders (the old ones stay). Splits are by subject: ``holdout`` (counts or fractions of subjects)
or ``kfold`` (subject-wise k-fold as the Sleep-EDF literature reports it; each fold is a view
of the one prepared store with its own ``splits.json``, validation subjects drawn from the
non-test ones).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._atomic import atomic_write_text
from ._config import (
    PHASE_DEFAULTS,
    PreprocessingConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    get_preset,
    load_config_file,
    merge_config,
)
from ._logging import logger, verbose
from ._validation import ConfigError, check_option

__all__ = ["Anchor", "Recipe", "RecipeResult", "load_recipe", "run_recipe"]

STEPS = ("data", "prepare", "splits", "pretrain", "adapt", "report")
Protocol = Literal["probe", "finetune", "scratch"]


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where the nights come from: ``simulate`` (``nights``, ``hours``, ``seed``), ``fetch``
    (``dataset``, ``subjects``, ``limit``) or ``folder`` (``path``)."""

    source: Literal["simulate", "fetch", "folder"] = "simulate"
    nights: int = 10
    hours: float = 0.5
    seed: int = 0
    dataset: str = ""
    subjects: tuple[str, ...] = ()
    limit: int = 0
    path: str = ""
    scoring_dirs: tuple[str, ...] = ()
    subject_pattern: str = ""
    channel_file: str = ""
    require: tuple[str, ...] = ()
    workers: int = 1


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """Subject splits. ``train``, ``val``, ``test``: a fraction (< 1) or a count (≥ 1) of
    subjects; the rest pretrain. ``kfold``: ``folds`` folds of test subjects, ``val`` of the rest."""

    scheme: Literal["holdout", "kfold"] = "holdout"
    train: float = 0.3
    val: float = 0.1
    test: float = 0.2
    folds: int = 5
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class PretrainSpec:
    """Self-supervised pretraining: NeuroNet per modality, then fusion (schedules override the
    paper's defaults)."""

    modalities: tuple[str, ...] = ("eeg", "eog", "emg", "ecg")
    splits: tuple[str, ...] = ("pretrain",)  # k-fold studies: ("train",), each fold's training subjects
    channels: tuple[str, ...] = ()  # fusion channels (default: one per modality)
    unimodal: dict[str, Any] = dataclasses.field(default_factory=dict)
    multimodal: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AdaptSpec:
    """What is adapted and evaluated: tasks × label fractions × protocols × seeds."""

    tasks: tuple[str, ...] = ("stage",)
    fractions: tuple[float, ...] = (0.01, 0.05, 1.0)
    protocols: tuple[Protocol, ...] = ("probe", "finetune")
    seeds: tuple[int, ...] = (0,)
    channels: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    probe: dict[str, Any] = dataclasses.field(default_factory=dict)
    finetune: dict[str, Any] = dataclasses.field(default_factory=dict)
    sleep_window_min: float = -1.0  # ≥ 0: evaluate only this much wake around sleep (Sleep-EDF convention)


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A published result to print beside ours."""

    name: str
    source: str
    task: str = "stage"
    labels: float = 1.0
    accuracy: float = float("nan")
    macro_f1: float = float("nan")
    kappa: float = float("nan")
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A study: data, preprocessing, model preset, splits, pretraining, adaptation, anchors."""

    name: str
    description: str = ""
    preset: str = "tiny"
    data: DataSpec = dataclasses.field(default_factory=DataSpec)
    preprocessing: PreprocessingConfig = dataclasses.field(default_factory=PreprocessingConfig)
    splits: SplitSpec = dataclasses.field(default_factory=SplitSpec)
    pretrain: PretrainSpec = dataclasses.field(default_factory=PretrainSpec)
    adapt: AdaptSpec = dataclasses.field(default_factory=AdaptSpec)
    anchors: tuple[Anchor, ...] = ()
    notes: tuple[str, ...] = ()
    device: str = "auto"

    def train_config(self, phase: str, overrides: dict[str, Any], seed: int = 0, source: str = "") -> TrainConfig:
        """The phase's paper defaults with the recipe's overrides, this seed and device."""
        return merge_config(PHASE_DEFAULTS[phase], {**overrides, "seed": seed, "device": self.device},
                            source=source or f"recipe {self.name} ({phase})")


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file (TOML/YAML/JSON); every field is typed and named in errors."""
    data = load_config_file(path)
    recipe = config_from_dict(Recipe, data, source=str(path))
    get_preset(recipe.preset)
    for phase, section, overrides in (("pretrain_unimodal", "pretrain.unimodal", recipe.pretrain.unimodal),
                                      ("pretrain_multimodal", "pretrain.multimodal", recipe.pretrain.multimodal),
                                      ("probe", "adapt.probe", recipe.adapt.probe),
                                      ("finetune", "adapt.finetune", recipe.adapt.finetune)):
        recipe.train_config(phase, overrides, source=f"{path} [{section}]")  # a typo fails now, not in hour three
    if recipe.data.source == "fetch" and not recipe.data.dataset:
        raise ConfigError(f"{path}: [data] source = 'fetch' needs a dataset")
    return recipe


@dataclasses.dataclass
class RecipeResult:
    """Where everything went, which steps ran or were skipped, and the result rows."""

    out_dir: Path
    ran: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    results: Path | None = None


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


class _Pipeline:
    """The recipe's steps, each in a folder keyed by what it depends on."""

    def __init__(self, recipe: Recipe, out: Path, steps: Sequence[str], progress: bool) -> None:
        self.recipe, self.out, self.steps, self.progress = recipe, out, tuple(steps), progress
        self.result = RecipeResult(out)

    def step(self, name: str, key: str, work: Callable[[Path], Any]) -> Path:
        """Run ``work(folder)`` unless ``folder/done.json`` says it finished with this key."""
        folder = self.out / f"{name}-{key}"
        marker = folder / "done.json"
        if marker.exists():
            self.result.skipped.append(name)
            logger.info("%s: done before (same settings), skipped", folder.name)
            return folder
        if name not in self.steps:
            raise ConfigError(f"step {name!r} has not run yet for these settings; include it in --steps "
                              f"(the steps before {name!r} must run first)")
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        work(folder)
        atomic_write_text(marker, json.dumps({"step": name, "key": key, "seconds": time.perf_counter() - t0}))
        self.result.ran.append(name)
        return folder

    # --- steps ---
    def data(self) -> tuple[Path, str]:
        spec = self.recipe.data
        if spec.source == "folder":
            return Path(spec.path).expanduser(), _digest(spec)
        key = _digest(spec.source, spec.nights, spec.hours, spec.seed, spec.dataset, spec.subjects, spec.limit)

        def work(folder: Path) -> None:
            if spec.source == "simulate":
                from .simulate import simulate_cohort

                simulate_cohort(folder, spec.nights, spec.hours, seed=spec.seed, progress=self.progress)
            else:
                from .fetch import fetch

                summary = fetch(spec.dataset, folder, subjects=spec.subjects or None, limit=spec.limit or None,
                                progress=self.progress)
                if not summary.ok:
                    raise ConfigError(summary.text() + "\n(rerun to resume the download)")

        folder = self.step("data", key, work)
        return (folder / spec.dataset if spec.source == "fetch" else folder), key

    def prepare(self, raw: Path, upstream: str) -> tuple[Path, str]:
        from .store import prepare_store

        spec = self.recipe.data
        key = _digest(upstream, config_to_dict(self.recipe.preprocessing), spec.scoring_dirs, spec.subject_pattern,
                      spec.channel_file, spec.require)

        def work(folder: Path) -> None:
            summary = prepare_store(raw, folder / "store", config=self.recipe.preprocessing,
                                    scoring_dirs=[raw / d for d in spec.scoring_dirs],
                                    channel_file=spec.channel_file or None, required=spec.require,
                                    cohort=self.recipe.name, subject_pattern=spec.subject_pattern or None,
                                    workers=spec.workers, progress=self.progress)
            if not summary.prepared and not summary.skipped:
                raise ConfigError(summary.text())
            for night, why in summary.failed.items():
                logger.warning("%s: not prepared (%s); the study goes on without it", night, why)

        return self.step("prepare", key, work) / "store", key

    def splits(self, store: Path, upstream: str) -> tuple[list[Path], str]:
        spec = self.recipe.splits
        key = _digest(upstream, config_to_dict(spec))

        def work(folder: Path) -> None:
            from .store import EpochStore

            subjects = sorted({str(s) for s in EpochStore(store).manifest["subject"]})
            for i, assignment in enumerate(_assignments(subjects, spec)):
                _store_view(store, folder / f"fold{i}", assignment)

        folder = self.step("splits", key, work)
        return sorted(folder.glob("fold*"), key=lambda p: int(p.name[4:])), key

    def pretrain(self, fold: Path, upstream: str) -> tuple[Path, str]:
        from .training import pretrain_multimodal, pretrain_unimodal

        spec, recipe = self.recipe.pretrain, self.recipe
        key = _digest(upstream, fold.name, recipe.preset, config_to_dict(spec))

        def work(folder: Path) -> None:
            unimodal = recipe.train_config("pretrain_unimodal", spec.unimodal)
            encoders = {m: pretrain_unimodal(fold, m, folder / m, preset=recipe.preset, config=unimodal,
                                             splits=spec.splits, resume=True, progress=self.progress).checkpoint
                        for m in spec.modalities}
            pretrain_multimodal(fold, encoders, folder / "fusion", channels=spec.channels or None,
                                config=recipe.train_config("pretrain_multimodal", spec.multimodal),
                                splits=spec.splits, resume=True, progress=self.progress)

        return self.step("pretrain", key, work) / "fusion" / "model.safetensors", key

    def adapt(self, fold: Path, fusion: Path, upstream: str) -> list[dict[str, Any]]:
        from .training import evaluate, finetune, probe

        spec, recipe = self.recipe.adapt, self.recipe
        key = _digest(upstream, config_to_dict(spec))

        def work(folder: Path) -> None:
            rows = []
            for task in spec.tasks:
                channels = list(spec.channels.get(task, ())) or None
                for fraction in spec.fractions:
                    for seed in spec.seeds:
                        for protocol in spec.protocols:
                            run = folder / f"{task}-{fraction:g}-seed{seed}-{protocol}"
                            if protocol == "probe":
                                result = probe(fold, task, fraction, run, fusion_checkpoint=fusion, channels=channels,
                                               config=recipe.train_config("probe", spec.probe, seed), resume=True,
                                               progress=self.progress)
                            else:
                                scratch = protocol == "scratch"
                                result = finetune(fold, task, fraction, run, channels=channels,
                                                  fusion_checkpoint=None if scratch else fusion,
                                                  preset=recipe.preset if scratch else None,
                                                  config=recipe.train_config("finetune", spec.finetune, seed),
                                                  resume=True, progress=self.progress)
                            m = evaluate(result.checkpoint, fold, device=recipe.device,
                                         sleep_window_min=spec.sleep_window_min if spec.sleep_window_min >= 0
                                         else None)
                            rows.append({"fold": fold.name, "task": task, "labels": fraction, "seed": seed,
                                         "protocol": protocol, "n_epochs": m["n_epochs"],
                                         **{k: m.get(k) for k in ("accuracy", "macro_f1", "kappa", "auroc", "auprc",
                                                                  "event_f1")},
                                         "f1": m.get("f1")})
            atomic_write_text(folder / "metrics.json", json.dumps(rows, indent=1))

        folder = self.step("adapt", key, work)
        return list(json.loads((folder / "metrics.json").read_text("utf-8")))

    def report(self, rows: list[dict[str, Any]]) -> Path:
        path = self.out / "results.md"
        atomic_write_text(path, results_markdown(self.recipe, rows))
        atomic_write_text(self.out / "results.json", json.dumps(rows, indent=1))
        return path


def _subjects_count(value: float, n: int) -> int:
    return int(value) if value >= 1 else int(np.floor(value * n))


def _assignments(subjects: list[str], spec: SplitSpec) -> list[dict[str, str]]:
    """Subject → split, one mapping per fold (one for holdout); seeded, by subject."""
    n = len(subjects)
    order = [subjects[i] for i in np.random.default_rng(spec.seed).permutation(n)]
    val = max(_subjects_count(spec.val, n), 1)
    if spec.scheme == "holdout":
        test, train = max(_subjects_count(spec.test, n), 1), max(_subjects_count(spec.train, n), 1)
        if test + val + train > n:
            raise ConfigError(f"{n} subjects cannot give {train} train, {val} val and {test} test subjects")
        names = ["test"] * test + ["val"] * val + ["train"] * train + ["pretrain"] * (n - test - val - train)
        return [dict(zip(order, names, strict=True))]
    if not 2 <= spec.folds <= n:
        raise ConfigError(f"k-fold needs 2 to {n} folds for {n} subjects, got {spec.folds}")
    out = []
    for fold, test_part in enumerate(np.array_split(np.arange(n), spec.folds)):
        tested = {order[i] for i in test_part}
        rest = [s for s in order if s not in tested]
        shift = fold * val % len(rest)  # each fold validates on other subjects
        validating = set((rest[shift:] + rest[:shift])[:val])
        out.append({s: "test" if s in tested else "val" if s in validating else "train" for s in order})
    return out


def _store_view(store: Path, folder: Path, assignment: dict[str, str]) -> None:
    """A store that shares ``store``'s nights (a link) with its own splits."""
    from .store.epoch_store import rebuild_manifest

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "nights").exists():
        os.symlink(store.resolve() / "nights", folder / "nights", target_is_directory=True)
    atomic_write_text(folder / "store.json", (store / "store.json").read_text("utf-8"))
    atomic_write_text(folder / "splits.json", json.dumps(assignment, indent=1, sort_keys=True))
    rebuild_manifest(folder)


def _mean_sd(values: Sequence[float | None]) -> str:
    clean = [float(v) for v in values if v is not None and v == v]
    if not clean:
        return "–"
    if len(clean) == 1:
        return f"{clean[0]:.3f}"
    return f"{statistics.fmean(clean):.3f} ± {statistics.stdev(clean):.3f}"


def results_markdown(recipe: Recipe, rows: list[dict[str, Any]]) -> str:
    """``results.md``: per task, label fraction and protocol our metrics (mean ± sd over folds
    and seeds), then the published anchors with their sources."""
    lines = [f"# {recipe.name}", "", recipe.description, "",
             f"Preset `{recipe.preset}`; splits {recipe.splits.scheme}"
             + (f" ({recipe.splits.folds} folds)" if recipe.splits.scheme == "kfold" else "")
             + f"; seeds {list(recipe.adapt.seeds)}.", ""]
    lines += [f"- {note}" for note in recipe.notes]
    for task in recipe.adapt.tasks:
        event = task != "stage"
        metrics = ("accuracy", "macro_f1", "kappa") + (("auroc", "auprc", "event_f1") if event else ())
        lines += ["", f"## {task}", "", "| labels | protocol | test epochs | " + " | ".join(metrics) + " |",
                  "|---|---|---|" + "---|" * len(metrics)]
        for fraction in recipe.adapt.fractions:
            for protocol in recipe.adapt.protocols:
                chosen = [r for r in rows if r["task"] == task and r["labels"] == fraction
                          and r["protocol"] == protocol]
                if chosen:
                    lines.append(f"| {fraction:.0%} | {protocol} | {sum(r['n_epochs'] for r in chosen)} | "
                                 + " | ".join(_mean_sd([r[m] for r in chosen]) for m in metrics) + " |")
        if not event:
            classes = [r["f1"] for r in rows if r["task"] == task and r.get("f1")]
            if classes:
                names = list(classes[0])
                lines += ["", "Per-class F1 (all runs pooled, mean): "
                          + ", ".join(f"{c} {statistics.fmean(f[c] for f in classes):.3f}" for c in names)]
    if recipe.anchors:
        lines += ["", "## Published anchors", "", "| result | task | labels | accuracy | macro-F1 | κ | source |",
                  "|---|---|---|---|---|---|---|"]
        for a in recipe.anchors:
            values = [("–" if v != v else f"{v:.3f}") for v in (a.accuracy, a.macro_f1, a.kappa)]
            lines.append(f"| {a.name} | {a.task} | {a.labels:.0%} | " + " | ".join(values) + f" | {a.source} |")
    return "\n".join(lines) + "\n"


@verbose
def run_recipe(recipe: str | Path | Recipe, out_dir: str | Path, *, steps: Sequence[str] = STEPS,
               progress: bool = True, verbose: bool | str | int | None = None) -> RecipeResult:
    """Run a recipe's steps into ``out_dir`` (see the module's docstring); returns what ran."""
    spec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    for name in steps:
        check_option("step", name, STEPS)
    pipeline = _Pipeline(spec, Path(out_dir), steps, progress)
    raw, key = pipeline.data()
    store, key = pipeline.prepare(raw, key)
    folds, key = pipeline.splits(store, key)
    rows: list[dict[str, Any]] = []
    for fold in folds:
        fusion, fold_key = pipeline.pretrain(fold, key)
        rows += pipeline.adapt(fold, fusion, fold_key)
    pipeline.result.rows = rows
    if "report" in steps:
        pipeline.result.results = pipeline.report(rows)
    return pipeline.result

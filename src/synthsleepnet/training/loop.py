"""One training loop for every phase: seeded, resumable, logged, on any device, DDP-aware.

Determinism: item order, masking and dropout are reseeded from ``(seed, epoch)`` at the start of
every epoch, and the training state (the weights that train, optimiser, schedule, history, the
best model so far) is written atomically after every epoch, so a run killed at any point and
resumed with ``resume=True`` ends with the same weights as an uninterrupted one. Frozen weights
are not rewritten every epoch: the state holds their hash, checked on resume. The state records
the run's identity (phase, task, modality, model, data, label fraction, training settings);
resuming with any of them changed is refused, naming the field, and a damaged state file gives
a clear error (``restart=True`` starts over).

Scale-out: under ``torchrun`` (``WORLD_SIZE`` > 1) the loop joins a process group (NCCL with
each process on its ``LOCAL_RANK`` GPU, gloo on CPU), wraps the model in
DistributedDataParallel (SyncBatchNorm on CUDA; on CPU BatchNorm statistics stay per process,
so a 2-process run matches a 1-process run only to a tolerance) and gives each rank a disjoint
share of each epoch's seeded order (:class:`EpochSampler`); gradients of accumulated
micro-batches are synchronised once per step (``no_sync``); rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .._atomic import atomic_path, atomic_write_text
from .._config import ModelSpec, TrainConfig, config_differences, config_from_dict, config_to_dict
from .._device import Runtime, resolve_runtime
from .._logging import logger
from .._validation import ResumeError
from ..models.checkpoint import CheckpointMeta, save_checkpoint, tensor_digest
from .data import Materialises, ReportsSkipped

__all__ = ["EpochSampler", "FitResult", "fit", "init_distributed", "is_main_process", "run_identity", "to_device"]

#: ``step(batch, generator) → {"loss": …, other terms…}``; it closes over the model it trains.
StepFn = Callable[[Any, torch.Generator], dict[str, torch.Tensor]]
ValidateFn = Callable[[nn.Module], dict[str, Any]]
_STATE = "train_state.pt"
_CHECKPOINT = "model.safetensors"
_CHECKPOINT_EVERY_S = 60.0  # the selected model is also written during training, at most this often


@dataclasses.dataclass
class FitResult:
    """Where the selected model is, how training went, and what data it left out."""

    checkpoint: Path
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_score: float | None
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the torchrun process group if there is one; returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensors in dicts, lists and tuples) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(int(total_steps * warmup_frac), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class EpochSampler(Sampler[int]):
    """Each epoch's seeded item order, shared out among DDP ranks (DistributedSampler semantics).

    The order depends only on ``(seed, epoch)`` (a permutation, or draws with replacement by
    ``weights``), so it is the same for any number of loader workers and after a resume. Under
    ``world`` processes it is padded with its own first items to a multiple of ``world`` and
    rank ``r`` takes items ``r, r + world, …``: shares are disjoint and equally long.
    """

    def __init__(self, n_items: int, seed: int, *, weights: np.ndarray | None = None, rank: int = 0,
                 world: int = 1) -> None:
        self.n_items, self.seed, self.weights, self.rank, self.world = n_items, seed, weights, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is None:
            order = rng.permutation(self.n_items)
        else:
            order = rng.choice(self.n_items, size=self.n_items, replace=True, p=self.weights)
        pad = (-len(order)) % self.world
        return np.concatenate([order, order[:pad]])[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return math.ceil(self.n_items / self.world)


class _Step(nn.Module):
    """Runs the step function as ``forward``, so DistributedDataParallel sees every forward pass
    (its gradient synchronisation is armed there; calling a model's own methods around the DDP
    wrapper would train each replica apart)."""

    def __init__(self, model: nn.Module, step_fn: StepFn) -> None:
        super().__init__()
        self.model = model
        self.step_fn = step_fn

    def forward(self, batch: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self.step_fn(batch, generator)


def _collate(batch: list[Any]) -> Any:
    return torch.utils.data.default_collate(batch)


def _log_row(out_dir: Path, row: dict[str, Any], writer: Any) -> None:
    file = out_dir / "log.csv"
    flat = {k: v for k, v in row.items() if isinstance(v, int | float | str)}
    new = not file.exists()
    if not new:
        with open(file, encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        new = header != list(flat)
    with open(file, "a" if not new else "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(flat))
        if new:
            w.writeheader()
        w.writerow(flat)
    if writer is not None:
        for key, value in flat.items():
            if isinstance(value, int | float) and key != "epoch":
                writer.add_scalar(key, value, row["epoch"])


def _tensorboard(out_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; the CSV log is always written
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


_HOW = ("device", "precision", "workers", "prefetch")  # how, not what, is trained: may change on resuming


def _train_identity(train: TrainConfig | None) -> dict[str, Any]:
    """The training settings that must not change on resuming (all but :data:`_HOW`)."""
    fields = config_to_dict(train) if train else {}
    return {k: v for k, v in fields.items() if k not in _HOW}


def run_identity(meta: CheckpointMeta) -> dict[str, Any]:
    """What must not change between a run and its resumption (device, precision and loader may)."""
    train = _train_identity(meta.train)
    data = config_to_dict(meta.data) if meta.data else {}
    return {"phase": meta.phase, "task": meta.task, "modality": meta.modality, "model": config_to_dict(meta.spec),
            "preprocessing_hash": meta.preprocessing_hash, "store": data.get("store"), "nights": data.get("nights"),
            "label_fraction": meta.label_fraction, "parents": {k: list(v) for k, v in meta.parents.items()},
            "train": train}


def _trained_keys(model: nn.Module) -> set[str]:
    """State entries training can change: trainable parameters, and the buffers of modules that
    run in training mode (a classifier's frozen fusion stays in eval mode, its statistics fixed)."""
    model.train()
    keys = {name for name, p in model.named_parameters() if p.requires_grad}
    for prefix, module in model.named_modules():
        if module.training:
            keys |= {f"{prefix}.{name}" if prefix else name for name, _ in module.named_buffers(recurse=False)}
    return keys


def _subset(model: nn.Module, keys: set[str]) -> dict[str, torch.Tensor]:
    """CPU copies of some state entries."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if k in keys}


def _as_read_today(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved run identity with its model spec and training settings read through this version's
    configs, so a field added since (at its default) is not a difference that refuses the resume."""
    out = dict(saved)
    try:
        if saved.get("model"):
            out["model"] = config_to_dict(config_from_dict(ModelSpec, saved["model"]))
        if saved.get("train"):
            out["train"] = _train_identity(config_from_dict(TrainConfig, saved["train"]))
    except (TypeError, ValueError):  # not configs this version reads: compared as saved
        return saved
    return out


def _load_state(state_file: Path, identity: dict[str, Any], frozen_sha256: str) -> dict[str, Any]:
    restart = "pass restart=True (--restart) to discard it and train from the start"
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or overwritten file fails in many ways inside torch.load
        raise ResumeError(f"{state_file} is damaged and cannot be resumed ({type(err).__name__}: {err}); "
                          f"{restart}") from None
    if not isinstance(state, dict) or "identity" not in state:
        raise ResumeError(f"{state_file} was not written by this version's training loop; {restart}")
    saved = _as_read_today(json.loads(state["identity"]))
    differences = sorted(config_differences(saved, json.loads(json.dumps(identity))),
                         key=lambda d: d.split(":")[0].count("."))  # the broadest first: 'modality' before a width
    if differences:
        raise ResumeError(f"{state_file.parent} holds another run; resuming would mix them. Differences: "
                          + "; ".join(differences[:6]) + f"; use another output folder or {restart}")
    if state.get("frozen_sha256") != frozen_sha256:
        raise ResumeError(f"{state_file.parent}: the model's frozen weights differ from those the run started "
                          f"with (another pretrained checkpoint, or one changed since); {restart}")
    return state


def _selected(meta: CheckpointMeta, epoch: int | None, selection: str, score: float | None,
              validate: ValidateFn | None) -> CheckpointMeta:
    """The checkpoint metadata of the model of ``epoch`` (the selected one, with validation)."""
    return dataclasses.replace(meta, epoch=epoch, selection_metric=selection if validate else None,
                               selection_score=score if validate else None)


def _clear_run(out_dir: Path) -> None:
    for name in (_STATE, _CHECKPOINT, "log.csv", "skipped.json"):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "tensorboard", ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class _BatchPlan:
    """How an epoch is cut: ``micro`` items per forward pass on each of ``world`` processes,
    ``accumulate`` passes per optimiser step, ``steps`` steps."""

    micro: int
    accumulate: int
    steps: int
    world: int


def _batch_plan(n_items: int, config: TrainConfig, world: int) -> _BatchPlan:
    """A small labelled set (1 % labels) shrinks the batch and the accumulation, never to zero
    steps; the learning rate stays that of the configured batch (shrinking it with the data
    stalled probes)."""
    if n_items < world:
        raise ValueError(f"{n_items} training items cannot be shared by {world} processes")
    micro = max(min(config.batch_size // world, n_items // world), 1)
    accumulate = max(min(config.accumulate, n_items // (micro * world)), 1)
    steps = max(n_items // (micro * world * accumulate), 1)
    if config.max_steps_per_epoch:
        steps = min(steps, config.max_steps_per_epoch)
    return _BatchPlan(micro, accumulate, steps, world)


@dataclasses.dataclass
class _Optimisation:
    """The optimiser, its schedule and gradient scaler, and the run's record so far: what
    ``train_state.pt`` holds besides the trained weights."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_score: float | None = None
    best_epoch: int | None = None
    best: dict[str, torch.Tensor] | None = None  # the selected model's trained entries (with validation)

    @classmethod
    def start(cls, params: list[nn.Parameter], config: TrainConfig, steps_per_epoch: int,
              runtime: Runtime) -> _Optimisation:
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        return cls(optimizer, _schedule(optimizer, steps_per_epoch * config.epochs, config.warmup_frac),
                   torch.amp.GradScaler(runtime.device.type, enabled=runtime.needs_grad_scaler))

    def restore(self, model: nn.Module, state: dict[str, Any]) -> int:
        """Load a saved state into this run and ``model``; returns the epoch to continue with."""
        model.load_state_dict(state["model"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state.get("scaler") or self.scaler.state_dict())
        self.history = list(state["history"])
        self.best_score, self.best_epoch, self.best = state["best_score"], state["best_epoch"], state.get("best")
        return int(state["epoch"]) + 1

    def state(self, trained: dict[str, torch.Tensor], epoch: int, frozen_sha256: str,
              identity: dict[str, Any]) -> dict[str, Any]:
        """What ``train_state.pt`` holds after ``epoch`` (0-based), with the trained weights."""
        return {"model": trained, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": epoch,
                "history": self.history, "best_score": self.best_score, "best_epoch": self.best_epoch,
                "best": self.best, "frozen_sha256": frozen_sha256, "identity": json.dumps(identity)}


def _open_run(out_dir: Path, config: TrainConfig, left_out: Mapping[str, str], *, resume: bool,
              restart: bool) -> None:
    """Refuse to overwrite a run unless told; write the resolved settings and what was left out."""
    if restart and is_main_process():
        _clear_run(out_dir)
    elif (out_dir / _STATE).exists() and not resume:
        raise FileExistsError(f"{out_dir} already holds a training run; pass resume=True (--resume) to "
                              "continue it, restart=True (--restart) to start it over, or choose another folder")
    if is_main_process():  # the resolved settings, and what was left out, next to the outputs
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.json", json.dumps(config_to_dict(config), indent=1))
        atomic_write_text(out_dir / "skipped.json", json.dumps(dict(left_out), indent=1))


def _distributed(model: nn.Module, runtime: Runtime) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when there is a process group (under torchrun,
    or one the caller made, even of one process)."""
    if not dist.is_initialized():
        return model
    if runtime.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)


def _train_epoch(train_model: nn.Module, loader: DataLoader[Any], run: _Optimisation,
                 params: list[nn.Parameter], plan: _BatchPlan, runtime: Runtime, grad_clip: float,
                 generator: torch.Generator, bar: Any) -> dict[str, float]:
    """One epoch's optimiser steps; returns the mean of each loss term."""
    sums: dict[str, float] = {}
    batches = iter(loader)
    no_sync = getattr(train_model, "no_sync", None)
    for step in range(1, plan.steps + 1):
        run.optimizer.zero_grad(set_to_none=True)
        for micro_step in range(plan.accumulate):
            batch = to_device(next(batches), runtime.device)
            sync = micro_step == plan.accumulate - 1 or plan.world == 1  # gradients meet once per step
            with (contextlib.nullcontext() if sync or no_sync is None else no_sync()):
                with runtime.training():
                    losses = train_model(batch, generator)
                run.scaler.scale(losses["loss"] / plan.accumulate).backward()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / plan.accumulate
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        bar.set_postfix(loss=f"{sums['loss'] / step:.4f}")
        bar.update()
    return {key: value / plan.steps for key, value in sums.items()}


def _validate_epoch(model: nn.Module, validate: ValidateFn, selection: str, run: _Optimisation, epoch: int,
                    row: dict[str, Any]) -> bool:
    """Add the validation metrics to ``row``; whether ``epoch``'s model is the best so far."""
    model.eval()
    metrics = validate(model)
    row.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, int | float)})
    score = float(metrics[selection])
    improved = run.best_score is None or score > run.best_score
    if improved:
        run.best_score, run.best_epoch = score, epoch
    return improved


def fit(
    model: nn.Module,
    dataset: Dataset[Any],
    step_fn: StepFn,
    *,
    config: TrainConfig,
    out_dir: str | Path,
    meta: CheckpointMeta,
    runtime: Runtime | None = None,
    sample_weights: np.ndarray | None = None,
    validate: ValidateFn | None = None,
    selection: str = "macro_f1",
    skipped: Mapping[str, str] | None = None,
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
    description: str = "train",
) -> FitResult:
    """Train ``model`` on ``dataset`` with ``step_fn(batch, generator)``, which returns a dict
    holding ``"loss"`` and computes it with ``model`` (under DDP it runs inside the wrapper).

    With ``validate``, the model with the best ``selection`` score on validation data is saved
    to ``model.safetensors`` (at the end, and during long runs at most once a minute); without,
    the model after the last epoch. The model is left holding the saved weights. ``train_state.pt`` holds what resuming needs;
    ``skipped.json`` the nights the data left out (from the dataset's ``skipped`` and
    ``skipped``). Batches reach ``step_fn`` on the run's device, inside its autocast.
    """
    out_dir = Path(out_dir)
    rt = runtime or resolve_runtime(config.device, config.precision)
    rank, world = init_distributed(rt.device)
    state_file, best_file = out_dir / _STATE, out_dir / _CHECKPOINT
    left_out = {**(dataset.skipped if isinstance(dataset, ReportsSkipped) else {}), **(skipped or {})}
    _open_run(out_dir, config, left_out, resume=resume, restart=restart)
    if left_out:
        logger.warning("%s: %d night(s) left out: %s", description, len(left_out),
                       "; ".join(f"{k}: {v}" for k, v in list(left_out.items())[:5]))
    meta = dataclasses.replace(meta, train=config, seed=config.seed)
    model.to(rt.device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if not isinstance(dataset, Sized):
        raise TypeError(f"fit needs a map-style dataset with a length, got {type(dataset).__name__}")
    plan = _batch_plan(len(dataset), config, world)
    run = _Optimisation.start(params, config, plan.steps, rt)
    trained = _trained_keys(model)
    frozen_sha256 = tensor_digest({k: v for k, v in model.state_dict().items() if k not in trained})
    identity = run_identity(meta)
    start_epoch = 0
    if resume and state_file.exists():
        start_epoch = run.restore(model, _load_state(state_file, identity, frozen_sha256))
        logger.info("resuming %s at epoch %d", out_dir, start_epoch + 1)
    train_model = _distributed(_Step(model, step_fn), rt)
    if start_epoch < config.epochs and isinstance(dataset, Materialises):
        dataset.materialise()  # before the loader's workers start, so they share it (a finished run skips it)
    sampler = EpochSampler(len(dataset), config.seed, weights=sample_weights, rank=rank, world=world)
    loader = DataLoader(dataset, batch_size=plan.micro, sampler=sampler, collate_fn=_collate, drop_last=True,
                        pin_memory=rt.device.type == "cuda", num_workers=config.workers,
                        persistent_workers=config.workers > 0,
                        prefetch_factor=config.prefetch if config.workers > 0 else None)
    writer = _tensorboard(out_dir) if is_main_process() else None
    written_at = time.monotonic()
    for epoch in range(start_epoch, config.epochs):
        began = time.monotonic()
        torch.manual_seed(config.seed * 1_000_003 + epoch)
        generator = rt.generator(config.seed * 7_919 + epoch)
        sampler.set_epoch(epoch)
        model.train()
        with tqdm(total=plan.steps, desc=f"{description} {epoch + 1}/{config.epochs}", unit="step",
                  disable=not progress or not is_main_process(), leave=False) as bar:
            losses = _train_epoch(train_model, loader, run, params, plan, rt, config.grad_clip, generator, bar)
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.scheduler.get_last_lr()[0], **losses}
        improved = validate is not None and _validate_epoch(model, validate, selection, run, epoch + 1, row)
        row["seconds"] = round(time.monotonic() - began, 2)  # with validation; kept across resumes
        run.history.append(row)
        if improved:
            run.best = _subset(model, trained)
        if is_main_process():
            if (validate is None or improved) and time.monotonic() - written_at >= _CHECKPOINT_EVERY_S:
                save_checkpoint(best_file, model, _selected(meta, epoch + 1, selection, run.best_score, validate))
                written_at = time.monotonic()
            with atomic_path(state_file) as tmp:
                torch.save(run.state(_subset(model, trained), epoch, frozen_sha256, identity), tmp)
            _log_row(out_dir, row, writer)
            logger.info("%s epoch %d: %s", description, epoch + 1,
                        ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
    if writer is not None:
        writer.close()
    if run.best is not None:  # the selected model, not the last one
        model.load_state_dict(run.best, strict=False)
    if is_main_process():
        save_checkpoint(best_file, model, _selected(meta, run.best_epoch if validate else len(run.history),
                                                    selection, run.best_score, validate))
    if dist.is_initialized():  # every rank returns once rank 0 has written the checkpoint
        dist.barrier()
    return FitResult(best_file, run.history, run.best_epoch, run.best_score, left_out)

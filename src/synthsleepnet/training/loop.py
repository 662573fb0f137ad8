"""One training loop for every stage: seeded, resumable, logged, DDP-aware.

Determinism: item order, masking and dropout are reseeded from ``(seed, epoch)`` at the start of
every epoch, and the training state (model, optimiser, schedule, history) is written atomically
after every epoch, so a run killed at any point and resumed with ``resume=True`` ends with the
same weights as an uninterrupted one.

Scale-out: under ``torchrun`` (``WORLD_SIZE`` > 1) the loop joins a process group (gloo on CPU,
NCCL on GPU), wraps the model in DistributedDataParallel and gives each rank every
``world_size``-th item of the epoch's order; rank 0 writes checkpoints and logs. BatchNorm
statistics stay per process, so a 2-process run matches a 1-process run only to a tolerance.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._atomic import atomic_path, atomic_write_text
from .._config import TrainConfig, config_to_dict
from .._logging import logger
from ..models.checkpoint import save_checkpoint

__all__ = ["FitResult", "fit", "init_distributed", "is_main_process"]

StepFn = Callable[[nn.Module, Any, torch.Generator], dict[str, torch.Tensor]]
ValidateFn = Callable[[nn.Module], dict[str, Any]]
_STATE = "train_state.pt"


@dataclasses.dataclass
class FitResult:
    """Where the selected model is and how training went."""

    checkpoint: Path
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_score: float | None


def init_distributed() -> tuple[int, int]:
    """Join the torchrun process group if there is one; returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(int(total_steps * warmup_frac), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _epoch_order(n: int, epoch: int, seed: int, weights: np.ndarray | None) -> np.ndarray:
    rng = np.random.default_rng([seed, epoch])
    if weights is None:
        return rng.permutation(n)
    return rng.choice(n, size=n, replace=True, p=weights)


def _collate(batch: Sequence[Any]) -> Any:
    return torch.utils.data.default_collate(list(batch))


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


def fit(
    model: nn.Module,
    dataset: Dataset[Any],
    step_fn: StepFn,
    *,
    config: TrainConfig,
    out_dir: str | Path,
    checkpoint_meta: dict[str, Any],
    sample_weights: np.ndarray | None = None,
    validate: ValidateFn | None = None,
    selection: str = "macro_f1",
    resume: bool = False,
    progress: bool = True,
    description: str = "train",
) -> FitResult:
    """Train ``model`` on ``dataset`` with ``step_fn`` (which returns a dict holding ``"loss"``).

    With ``validate``, the model with the best ``selection`` score on validation data is saved
    to ``model.safetensors`` the moment it is reached (later epochs cannot change it); without,
    the model after the last epoch is saved. ``train_state.pt`` holds what resuming needs.
    """
    out_dir = Path(out_dir)
    rank, world = init_distributed()
    if is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
    state_file, best_file = out_dir / _STATE, out_dir / "model.safetensors"
    if state_file.exists() and not resume:
        raise FileExistsError(f"{out_dir} already holds a training run; pass resume=True (--resume) to "
                              "continue it, or choose another output folder")
    if is_main_process():  # the resolved settings, next to the outputs
        atomic_write_text(out_dir / "config.json", json.dumps(config_to_dict(config), indent=1))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    n_items = len(dataset)  # type: ignore[arg-type]
    if n_items < world:
        raise ValueError(f"{n_items} training items cannot be shared by {world} processes")
    # a small labelled set (1 % labels) shrinks the batch and the accumulation, never to zero steps;
    # the learning rate stays that of the configured batch (shrinking it with the data stalled probes)
    micro = max(min(config.batch_size // world, n_items // world), 1)
    accumulate = max(min(config.accumulate, n_items // (micro * world)), 1)
    steps_per_epoch = max(n_items // (micro * world * accumulate), 1)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    scheduler = _schedule(optimizer, steps_per_epoch * config.epochs, config.warmup_frac)
    history: list[dict[str, Any]] = []
    start_epoch, best_score, best_epoch = 0, None, None
    if resume and state_file.exists():
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = int(state["epoch"]) + 1, list(state["history"])
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        logger.info("resuming %s at epoch %d", out_dir, start_epoch + 1)
    train_model: nn.Module = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model)
    autocast = config.bf16 and torch.backends.mkldnn.is_available()
    writer = _tensorboard(out_dir) if is_main_process() else None
    meta = {**checkpoint_meta, "train_config": config_to_dict(config), "seed": config.seed}
    for epoch in range(start_epoch, config.epochs):
        torch.manual_seed(config.seed * 1_000_003 + epoch)
        generator = torch.Generator().manual_seed(config.seed * 7_919 + epoch)
        order = _epoch_order(n_items, epoch, config.seed, sample_weights)[rank::world]
        loader = DataLoader(torch.utils.data.Subset(dataset, order.tolist()), batch_size=micro,
                            shuffle=False, collate_fn=_collate, drop_last=True)
        model.train()
        sums: dict[str, float] = {}
        steps = 0
        bar = tqdm(total=steps_per_epoch, desc=f"{description} {epoch + 1}/{config.epochs}", unit="step",
                   disable=not progress or not is_main_process(), leave=False)
        batches = iter(loader)
        for _ in range(steps_per_epoch):
            optimizer.zero_grad(set_to_none=True)
            for _ in range(accumulate):
                batch = next(batches)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    losses = step_fn(train_model, batch, generator)
                (losses["loss"] / accumulate).backward()
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach()) / accumulate
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            steps += 1
            bar.set_postfix(loss=f"{sums['loss'] / steps:.4f}")
            bar.update()
        bar.close()
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0],
                               **{k: v / steps for k, v in sums.items()}}
        improved = False
        if validate is not None:
            model.eval()
            metrics = validate(model)
            row.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, int | float)})
            score = float(metrics[selection])
            improved = best_score is None or score > best_score
            if improved:
                best_score, best_epoch = score, epoch + 1
        history.append(row)
        if is_main_process():
            if validate is None or improved:
                save_checkpoint(best_file, model, **meta, epoch=epoch + 1,
                                **({f"val_{selection}": best_score} if validate is not None else {}))
            with atomic_path(state_file) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history,
                            "best_score": best_score, "best_epoch": best_epoch}, tmp)
            _log_row(out_dir, row, writer)
            logger.info("%s epoch %d: %s", description, epoch + 1,
                        ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
    if writer is not None:
        writer.close()
    if dist.is_initialized():  # every rank returns once rank 0 has written the checkpoint
        dist.barrier()
    return FitResult(best_file, history, best_epoch, best_score)

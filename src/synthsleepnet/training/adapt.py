"""Adapting with few labels: linear probing and LoRA fine-tuning with the temporal module.

Both train on a seeded fraction of the labelled-train subjects' epochs, select the epoch with
the best validation macro-F1 (validation subjects only), and save one self-contained
:class:`~synthsleepnet.models.classifier.SleepClassifier` checkpoint. Without a pretrained
fusion checkpoint they train the same architecture from random weights: the scratch baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .._config import STAGE_DEFAULTS, TrainConfig
from .._logging import logger, verbose
from ..models.checkpoint import check_compatible, load_checkpoint, read_checkpoint_metadata
from ..models.classifier import SleepClassifier
from ..models.registry import build_model, sleep_classifier_kwargs
from ..store.epoch_store import EpochStore
from .data import TASKS, MultiChannelEpochs, Windows, class_weights, inverse_frequency_weights
from .loop import FitResult, fit
from .metrics import classification_metrics
from .pretrain import default_channels, store_identity
from .splits import assign_splits, sample_labelled_epochs, split_nights

__all__ = ["build_classifier", "calibrate_batchnorm", "finetune", "night_inputs", "probe"]


def _load_fusion_weights(classifier: SleepClassifier, state: Mapping[str, torch.Tensor]) -> None:
    """Copy pretrained fusion weights in; only new fine-tuning adapters may stay untouched."""
    target = classifier.fusion.state_dict()
    mapped = {}
    for key in target:
        source = key if key in state else key.replace(".base.", ".", 1) if ".base." in key else key
        if source in state:
            mapped[key] = state[source]
    missing = [k for k in target if k not in mapped and not k.endswith(("lora_a", "lora_b"))]
    if missing:
        raise KeyError(f"pretrained fusion lacks {missing[:5]}")
    classifier.fusion.load_state_dict(mapped, strict=False)


def build_classifier(task: str, context: str, *, fusion_checkpoint: str | Path | None, preset: str | None,
                     channels: Sequence[str] | None, seed: int, preprocessing_hash: str
                     ) -> tuple[SleepClassifier, dict[str, Any]]:
    """A classifier for ``task`` from a pretrained fusion checkpoint, or from scratch (seeded)."""
    _, n_classes, _ = TASKS[task]
    torch.manual_seed(seed)
    if fusion_checkpoint is not None:
        meta = read_checkpoint_metadata(fusion_checkpoint)
        if meta.get("stage") != "pretrain_multimodal":
            raise ValueError(f"{fusion_checkpoint} is a {meta.get('stage')!r} checkpoint; probing and "
                             "fine-tuning start from a multimodal (pretrain multimodal) checkpoint")
        preset, channels = meta["preset"], list(channels or meta["channels"])
        check_compatible(meta, preprocessing_hash=preprocessing_hash, channels=channels,
                         source=str(fusion_checkpoint))
        fusion, _ = load_checkpoint(fusion_checkpoint)
        model = build_model("sleep_classifier", **sleep_classifier_kwargs(preset, channels, n_classes, context=context))
        _load_fusion_weights(model, fusion.state_dict())  # type: ignore[arg-type]
        origin = {"fusion_checkpoint": str(fusion_checkpoint), "pretrained": True}
    else:
        if preset is None or not channels:
            raise ValueError("a scratch model needs a preset and channels")
        model = build_model("sleep_classifier", **sleep_classifier_kwargs(preset, list(channels), n_classes,
                                                                            context=context))
        origin = {"fusion_checkpoint": None, "pretrained": False}
    return model, {"preset": preset, "channels": list(channels), **origin}  # type: ignore[return-value]


def calibrate_batchnorm(model: SleepClassifier, data: torch.utils.data.Dataset, *, n_items: int = 8,
                        seed: int = 0) -> None:
    """Estimate the frozen fusion's BatchNorm statistics from training inputs (no labels).

    A pretrained fusion brings statistics from pretraining; random weights bring only the
    defaults (mean 0, variance 1), under which a frozen random encoder maps every epoch to
    nearly the same embedding. The scratch baseline would then measure that, not the value of
    pretraining, so it first gets statistics from ``n_items`` seeded training items.
    """
    norms = [m for m in model.fusion.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    picks = np.random.default_rng(seed).choice(len(data), size=min(n_items, len(data)), replace=False)  # type: ignore[arg-type]
    batch = torch.utils.data.default_collate([data[int(i)] for i in picks])[0]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the chunks of frames
        norm.train()
    with torch.no_grad():
        model.embed(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
        norm.eval()


def night_inputs(store: EpochStore, night: str, channels: Sequence[str]) -> dict[str, np.ndarray]:
    """A stored night as ``{channel: (E, T)}`` for the channels it has."""
    nf = store.night(night)
    x = nf.read(np.arange(nf.n_epochs))
    return {c: x[:, nf.channels.index(c)] for c in channels if c in nf.channels}


def _validation(store: EpochStore, nights: Sequence[str], task: str) -> Any:
    column, n_classes, names = TASKS[task]

    def validate(model: torch.nn.Module) -> dict[str, Any]:
        truth, probs = [], []
        for night in nights:
            inputs = night_inputs(store, night, model.channels)  # type: ignore[arg-type]
            if len(inputs) != len(model.channels):  # type: ignore[arg-type]
                continue
            probs.append(model.predict_proba(inputs))  # type: ignore[operator]
            truth.append(store.night(night).labels[:, column])
        p, t = np.concatenate(probs), np.concatenate(truth)
        metrics = classification_metrics(t, p.argmax(1), n_classes, names, scores=p)
        return {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}

    return validate


def _prepare(store: str | Path, task: str, config: TrainConfig) -> tuple[EpochStore, list[str], list[str]]:
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    assign_splits(store, seed=config.seed)
    st = EpochStore(store)
    return st, split_nights(st, "train"), split_nights(st, "val")


@verbose
def probe(
    store: str | Path,
    task: str,
    label_fraction: float,
    out_dir: str | Path,
    *,
    fusion_checkpoint: str | Path | None = None,
    preset: str | None = None,
    channels: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """Linear probing: frozen SynthSleepNet embeddings of single epochs → MLP head.

    Embeddings are computed once (the encoder is frozen), so probing costs one pass over the
    labelled epochs. The loss is weighted by inverse class frequency.
    """
    config = config or STAGE_DEFAULTS["probe"]
    st, train_nights, val_nights = _prepare(store, task, config)
    column, n_classes, _ = TASKS[task]
    channels = channels or (None if fusion_checkpoint else default_channels(st, train_nights))
    model, origin = build_classifier(task, "epoch", fusion_checkpoint=fusion_checkpoint, preset=preset,
                                     channels=channels, seed=config.seed,
                                     preprocessing_hash=st.info["preprocessing_hash"])
    labelled = sample_labelled_epochs(st, train_nights, label_fraction, task_column=column, seed=config.seed)
    data = MultiChannelEpochs(st, train_nights, model.channels, epochs=labelled)
    if not origin["pretrained"]:
        calibrate_batchnorm(model, data, n_items=160, seed=config.seed)
    logger.info("probing %s with %d labelled epochs (%.0f %% of train)", task, len(data), 100 * label_fraction)
    x, y = _embeddings(model, data, column)
    val = MultiChannelEpochs(st, val_nights, model.channels)
    val_x, val_y = _embeddings(model, val, column)
    weights = class_weights(y.numpy(), n_classes)
    _, _, names = TASKS[task]

    def step(m: torch.nn.Module, batch: Any, g: torch.Generator) -> dict[str, torch.Tensor]:
        net = getattr(m, "module", m)
        logits = net.head(batch[0])
        return {"loss": F.cross_entropy(logits.float(), batch[1], weight=weights, ignore_index=-1)}

    def validate(m: torch.nn.Module) -> dict[str, Any]:
        with torch.inference_mode():
            p = torch.softmax(m.head(val_x).float(), -1).numpy()  # type: ignore[operator]
        metrics = classification_metrics(val_y.numpy(), p.argmax(1), n_classes, names, scores=p)
        return {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}

    meta = {"stage": "probe", "task": task, "label_fraction": label_fraction, "label_unit": "epochs",
            "n_labelled_epochs": len(data), **origin, **store_identity(st, train_nights),
            "val_nights": val_nights}
    return fit(model, TensorDataset(x, y), step, config=config, out_dir=out_dir, checkpoint_meta=meta,
               validate=validate, resume=resume, progress=progress, description=f"probe {task}")


def _embeddings(model: SleepClassifier, data: MultiChannelEpochs, column: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-encoder embeddings and one task's labels of every item (computed once)."""
    embeddings, labels = [], []
    use_bf16 = torch.backends.mkldnn.is_available()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        for i in range(0, len(data), 64):
            batch = torch.utils.data.default_collate([data[j] for j in range(i, min(i + 64, len(data)))])
            embeddings.append(model.embed(batch[0]).float())
            labels.append(batch[1][:, column])
    return torch.cat(embeddings), torch.cat(labels)


@verbose
def finetune(
    store: str | Path,
    task: str,
    label_fraction: float,
    out_dir: str | Path,
    *,
    fusion_checkpoint: str | Path | None = None,
    preset: str | None = None,
    channels: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """LoRA fine-tuning with the temporal context module over 20-epoch windows (stride 10).

    New adapters (rank 4, alpha 8) on each encoder's frame-feature MLP and the last fusion
    block's MLP train together with the Mamba2 temporal module and head; epochs outside the
    label-fraction sample are ignored by the loss. Stage classes are balanced by the loss
    weights; for apnea and hypopnea a sampler also draws windows holding an event as often as
    windows without, and the loss weights are computed under that sampler.
    """
    config = config or STAGE_DEFAULTS["finetune"]
    st, train_nights, val_nights = _prepare(store, task, config)
    column, n_classes, _ = TASKS[task]
    channels = channels or (None if fusion_checkpoint else default_channels(st, train_nights))
    model, origin = build_classifier(task, "sequence", fusion_checkpoint=fusion_checkpoint, preset=preset,
                                     channels=channels, seed=config.seed,
                                     preprocessing_hash=st.info["preprocessing_hash"])
    labelled = sample_labelled_epochs(st, train_nights, label_fraction, task_column=column, seed=config.seed)
    seq_len = model.head.seq_len  # type: ignore[union-attr]
    data = Windows(st, train_nights, model.channels, length=seq_len, stride=seq_len // 2, epochs=labelled)
    if not origin["pretrained"]:
        calibrate_batchnorm(model, data, n_items=8, seed=config.seed)
    n_labelled = sum(len(idx) for idx in labelled.values())
    window_labels = data.labels(column)
    sampling = None
    if task != "stage":  # rare events: half of the windows drawn hold a labelled event epoch
        sampling = inverse_frequency_weights((window_labels == 1).any(axis=1).astype(int))
    weights = class_weights(window_labels, n_classes, sampling)
    logger.info("fine-tuning %s on %d windows (%d labelled epochs)", task, len(data), n_labelled)

    def step(m: torch.nn.Module, batch: Any, g: torch.Generator) -> dict[str, torch.Tensor]:
        logits = m(batch[0])
        y = batch[1][..., column]
        return {"loss": F.cross_entropy(logits.reshape(-1, n_classes).float(), y.reshape(-1),
                                        weight=weights, ignore_index=-1)}

    meta = {"stage": "finetune", "task": task, "label_fraction": label_fraction, "label_unit": "epochs",
            "n_labelled_epochs": n_labelled, **origin, **store_identity(st, train_nights),
            "val_nights": val_nights}
    return fit(model, data, step, config=config, out_dir=out_dir, checkpoint_meta=meta,
               validate=_validation(st, val_nights, task), sample_weights=sampling, resume=resume,
               progress=progress, description=f"finetune {task}")

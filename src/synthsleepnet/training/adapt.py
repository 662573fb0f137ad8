"""Adapting with few labels: linear probing and LoRA fine-tuning with the temporal module.

Both train on a seeded fraction of the labelled-train subjects' epochs, select the epoch with
the best validation score (validation subjects only), and save one self-contained
:class:`~synthsleepnet.models.classifier.SleepClassifier` checkpoint. Without a pretrained
fusion checkpoint they train the same architecture from random weights: the scratch baseline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from .._config import PHASE_DEFAULTS, AdaptConfig, Context, EventDecoding, ModelConfig, TrainConfig
from .._device import Runtime, resolve_runtime
from .._logging import logger, verbose
from .._validation import CheckpointError, check_finite_output
from ..events import NightEvents, calibrate_decoding, events_metrics, night_events
from ..metrics import classification_metrics
from ..models.checkpoint import (
    CheckpointMeta,
    check_compatible,
    load_classifier,
    load_encoder,
    read_checkpoint_meta,
    save_checkpoint,
)
from ..models.classifier import SleepClassifier
from ..models.registry import ModelSpec
from ..store.epoch_store import EpochStore
from ..tasks import Task, get_task
from .cache import CachedWindows, ConvCache
from .data import (
    Items,
    MultiChannelEpochs,
    TeacherTargets,
    Windows,
    class_weights,
    inverse_frequency_weights,
    night_second_labels,
    nights_with_channels,
)
from .loop import FitResult, fit, is_main_process
from .losses import distillation_loss
from .pretrain import default_channels, resolve_model, store_identity
from .splits import assign_splits, sample_labelled_epochs, split_nights

__all__ = ["build_classifier", "calibrate_batchnorm", "finetune", "night_inputs", "predict_stored_night", "probe",
           "stored_night_events"]


def _load_fusion_weights(classifier: SleepClassifier, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy pretrained fusion weights in; only new fine-tuning adapters may stay untouched."""
    target = classifier.fusion.state_dict()
    mapped = {}
    for key in target:
        plain = key.replace(".base.", ".", 1) if ".base." in key else key
        source_key = key if key in state else plain
        if source_key in state:
            mapped[key] = state[source_key]
    missing = [k for k in target if k not in mapped and not k.endswith(("lora_a", "lora_b"))]
    if missing:
        raise CheckpointError(f"{source}: the pretrained fusion lacks {missing[:5]}")
    classifier.fusion.load_state_dict(mapped, strict=False)


def build_classifier(task: Task, context: Context, store: EpochStore, *, fusion_checkpoint: str | Path | None,
                     preset: str | ModelConfig | None, channels: Sequence[str] | None, adapt: AdaptConfig,
                     seed: int) -> tuple[SleepClassifier, ModelSpec, dict[str, tuple[str, str]]]:
    """A classifier for ``task`` from a pretrained fusion checkpoint, or from scratch (seeded).

    Returns the model, the spec that rebuilds it and its parents (``fusion → (path, sha256)``).
    """
    torch.manual_seed(seed)
    parents: dict[str, tuple[str, str]] = {}
    if fusion_checkpoint is not None:
        meta = read_checkpoint_meta(fusion_checkpoint)
        if meta.phase != "pretrain_multimodal":
            raise CheckpointError(f"{fusion_checkpoint} is a {meta.phase} checkpoint; probing and fine-tuning "
                                  "start from a multimodal (pretrain multimodal) checkpoint")
        config, chosen = meta.spec.config, list(channels or meta.channels)
        check_compatible(meta, preprocessing_hash=store.preprocessing_hash, channels=chosen,
                         source=str(fusion_checkpoint))
        fusion, _ = load_encoder(fusion_checkpoint)
        parents["fusion"] = (str(fusion_checkpoint), meta.tensor_sha256)
    else:
        if preset is None or not channels:
            raise ValueError("a scratch model needs a preset and channels")
        config, chosen, fusion = resolve_model(preset, store), list(channels), None
    if task.per_second and context != "sequence":
        raise ValueError(f"task {task.name!r} predicts every {task.resolution_s:g} s inside the temporal context: "
                         f"fine-tune it (finetune --task {task.name}); a probe sees single epochs")
    spec = ModelSpec("sleep_classifier", config, tuple(chosen), task.n_classes, context,
                     adapt if context == "sequence" else None, task.resolution_s)
    model = SleepClassifier(chosen, config, task.n_classes, context, spec.adapt, spec.resolution_s)
    if fusion is not None:
        _load_fusion_weights(model, fusion.state_dict(), str(fusion_checkpoint))
    return model, spec, parents


def calibrate_batchnorm(model: SleepClassifier, data: Items, *, n_items: int = 8, seed: int = 0,
                        runtime: Runtime | None = None) -> None:
    """Estimate the frozen fusion's BatchNorm statistics from training inputs (no labels).

    A pretrained fusion brings statistics from pretraining; random weights bring only the
    defaults (mean 0, variance 1), under which a frozen random encoder maps every epoch to
    nearly the same embedding. The scratch baseline would then measure that, not the value of
    pretraining, so it first gets statistics from ``n_items`` seeded training items.
    Probing and fine-tuning calibrate on every train epoch (no labels needed), so one seed's
    scratch model has the same frozen convolutions, and cached features, at every label fraction.
    """
    device = runtime.device if runtime else next(model.parameters()).device
    norms = [m for m in model.fusion.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    size = len(data)
    picks = np.random.default_rng(seed).choice(size, size=min(n_items, size), replace=False)
    batch = torch.utils.data.default_collate([data[int(i)] for i in picks])[0]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the chunks of frames
        norm.train()
    with torch.no_grad():
        model.embed({c: x.to(device) for c, x in batch.items()})
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
        norm.eval()


def night_inputs(store: EpochStore, night: str, channels: Sequence[str]) -> dict[str, np.ndarray]:
    """A stored night as ``{channel: (E, T)}`` for the channels it has."""
    nf = store.night(night)
    x = nf.read(np.arange(nf.n_epochs))
    return {c: x[:, nf.channels.index(c)] for c in channels if c in nf.channels}


def predict_stored_night(model: SleepClassifier, store: EpochStore, night: str, runtime: Runtime, source: str,
                         cache: ConvCache | None = None) -> np.ndarray:
    """Probabilities (E, classes) of a stored night, from ``cache``'s convolution features when
    given; non-finite outputs are refused, naming ``source``."""
    if cache is not None:
        proba = model.predict_proba(cache.night(night), runtime=runtime, conv=True)
    else:
        proba = model.predict_proba(night_inputs(store, night, model.channels), runtime=runtime)
    return check_finite_output(proba, source)


def _validation(store: EpochStore, nights: Sequence[str], task: Task, channels: Sequence[str],
                runtime: Runtime, cache: ConvCache | None = None
                ) -> tuple[Callable[[torch.nn.Module], dict[str, Any]], dict[str, str]]:
    """A validation function over whole nights (from ``cache`` when given), and the validation
    nights it leaves out (and why)."""
    column = store.label_column(task.name)
    usable, skipped = nights_with_channels(store, nights, channels)
    if not usable:
        raise ValueError(f"no validation night has the channels {list(channels)}: {skipped}")

    def validate(model: torch.nn.Module) -> dict[str, Any]:
        if not isinstance(model, SleepClassifier):
            raise TypeError("validation needs a SleepClassifier")
        probs = _predict_nights(model, store, usable, runtime, cache)
        if task.per_second:
            metrics = events_metrics([stored_night_events(store, n, task, p) for n, p in zip(usable, probs, strict=True)])
        else:
            p, t = np.concatenate(probs), np.concatenate([store.night(n).labels[:, column] for n in usable])
            metrics = classification_metrics(t, p.argmax(1), task.n_classes, task.classes, scores=p)
        return {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}

    return validate, {f"validation {k}": v for k, v in skipped.items()}


def _predict_nights(model: SleepClassifier, store: EpochStore, nights: Sequence[str], runtime: Runtime,
                    cache: ConvCache | None) -> list[np.ndarray]:
    """The model's probabilities for whole validation nights (from ``cache`` when given)."""
    return [predict_stored_night(model, store, night, runtime, f"the model being adapted (validation night {night})",
                                 cache) for night in nights]


def _keep_decoding(model: SleepClassifier, checkpoint: Path, store: EpochStore, nights: Sequence[str], task: Task,
                   runtime: Runtime, cache: ConvCache | None) -> None:
    """Choose a per-second model's event decoding on its validation nights (the selected weights,
    which ``model`` holds after :func:`fit`) and write it into its checkpoint."""
    usable, _ = nights_with_channels(store, nights, model.channels)
    probs = _predict_nights(model, store, usable, runtime, cache)
    decoding = calibrate_decoding([stored_night_events(store, n, task, p) for n, p in zip(usable, probs, strict=True)],
                                  task.resolution_s or 1.0)
    save_checkpoint(checkpoint, model, dataclasses.replace(read_checkpoint_meta(checkpoint), decoding=decoding))
    logger.info("event decoding chosen on %d validation nights: threshold %g, merge gap %g s", len(usable),
                decoding.threshold, decoding.merge_gap_s)


def stored_night_events(store: EpochStore, night: str, task: Task, proba: np.ndarray,
                        decoding: EventDecoding | None = None) -> NightEvents:
    """A per-second model's (E, seconds, classes) output for a stored night, beside its scoring."""
    nf = store.night(night)
    return night_events(proba, night_second_labels(store, night, task), nf.events,
                        nf.labels[:, store.label_column("stage")], store.config.epoch_s, task.resolution_s or 1.0,
                        decoding)


def _prepare(store: str | Path, task_name: str, config: TrainConfig) -> tuple[EpochStore, Task, list[str], list[str]]:
    task = get_task(task_name)
    assign_splits(store, seed=config.seed)
    st = EpochStore(store)
    st.label_column(task.name)
    return st, task, split_nights(st, "train"), split_nights(st, "val")


@verbose
def probe(
    store: str | Path,
    task: str,
    label_fraction: float,
    out_dir: str | Path,
    *,
    fusion_checkpoint: str | Path | None = None,
    preset: str | ModelConfig | None = None,
    channels: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    adapt: AdaptConfig | None = None,
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """Linear probing: frozen SynthSleepNet embeddings of single epochs → MLP head.

    Embeddings are computed once (the encoder is frozen), so probing costs one pass over the
    labelled epochs. The loss is weighted by inverse class frequency.
    """
    config = config or PHASE_DEFAULTS["probe"]
    adapt = adapt or AdaptConfig()
    rt = resolve_runtime(config.device, config.precision)
    st, spec_task, train_nights, val_nights = _prepare(store, task, config)
    column = st.label_column(spec_task.name)
    channels = channels or (None if fusion_checkpoint else default_channels(st, train_nights))
    model, spec, parents = build_classifier(spec_task, "epoch", st, fusion_checkpoint=fusion_checkpoint,
                                            preset=preset, channels=channels, adapt=adapt, seed=config.seed)
    model.to(rt.device)
    labelled = sample_labelled_epochs(st, train_nights, label_fraction, task=spec_task.name, seed=config.seed)
    data = MultiChannelEpochs(st, train_nights, model.channels, epochs=labelled)
    if not parents:  # from unlabelled epochs, as fine-tuning does: one seed, one set of frozen features
        calibrate_batchnorm(model, MultiChannelEpochs(st, train_nights, model.channels),
                            n_items=adapt.probe_calibration_items, seed=config.seed, runtime=rt)
    logger.info("probing %s with %d labelled epochs (%.0f %% of train)", spec_task.name, len(data),
                100 * label_fraction)
    usable_val, val_skipped = nights_with_channels(st, val_nights, model.channels)
    val = MultiChannelEpochs(st, usable_val, model.channels)
    cache = _conv_cache(model, st, [*data.nights, *usable_val], adapt, rt)
    x, y = _embeddings(model, data, column, rt, cache)
    val_x, val_y = _embeddings(model, val, column, rt, cache)
    weights = class_weights(y.numpy(), spec_task.n_classes).to(rt.device)

    def step(batch: Any, g: torch.Generator) -> dict[str, torch.Tensor]:
        logits = model.head(batch[0])
        return {"loss": F.cross_entropy(logits.float(), batch[1], weight=weights, ignore_index=-1)}

    def validate(_: torch.nn.Module) -> dict[str, Any]:
        with torch.inference_mode():
            p = torch.softmax(model.head(val_x.to(rt.device)).float(), -1).cpu().numpy()
        check_finite_output(p, "the probe in training")
        metrics = classification_metrics(val_y.numpy(), p.argmax(1), spec_task.n_classes, spec_task.classes,
                                          scores=p)
        return {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}

    meta = CheckpointMeta(phase="probe", spec=spec, task=spec_task.name, preprocessing=st.config,
                          data=store_identity(st, train_nights, val_nights), parents=parents,
                          label_fraction=label_fraction, n_labelled_epochs=len(data))
    return fit(model, TensorDataset(x, y), step, config=config, out_dir=out_dir, meta=meta, runtime=rt,
               validate=validate, selection=spec_task.selection,
               skipped={**data.skipped, **{f"validation {k}": v for k, v in val_skipped.items()}},
               resume=resume, restart=restart, progress=progress, description=f"probe {spec_task.name}")


def _embeddings(model: SleepClassifier, data: MultiChannelEpochs, column: int, runtime: Runtime,
                cache: ConvCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-encoder embeddings (on the CPU) and one task's labels of every item, computed once
    (from ``cache`` when given)."""
    embeddings, labels = [], []
    with torch.inference_mode(), runtime.autocast():
        if cache is None:
            for i in range(0, len(data), 64):
                batch = torch.utils.data.default_collate([data[j] for j in range(i, min(i + 64, len(data)))])
                inputs = {c: x.to(runtime.device) for c, x in batch[0].items()}
                embeddings.append(model.embed(inputs).float().cpu())
                labels.append(batch[1][:, column])
            return torch.cat(embeddings), torch.cat(labels)
        for night, index in data.epochs_by_night().items():
            features = cache.epochs(night, index)
            for i in range(0, len(index), 256):
                inputs = {c: x[i:i + 256].to(runtime.device) for c, x in features.items()}
                embeddings.append(model.embed(inputs, conv=True).float().cpu())
            labels.append(torch.from_numpy(data.store.night(night).labels[index, column].astype(np.int64)))
    return torch.cat(embeddings), torch.cat(labels)


@verbose
def finetune(
    store: str | Path,
    task: str,
    label_fraction: float,
    out_dir: str | Path,
    *,
    fusion_checkpoint: str | Path | None = None,
    preset: str | ModelConfig | None = None,
    channels: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    adapt: AdaptConfig | None = None,
    teacher: str | Path | None = None,
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """LoRA fine-tuning with the temporal context module over 20-epoch windows (stride 10).

    New adapters (paper: rank 4, alpha 8) on each encoder's frame-feature MLP and the last
    fusion block's MLP train together with the Mamba2 temporal module and head; epochs outside
    the label-fraction sample are ignored by the loss. Stage classes are balanced by the loss
    weights; for event tasks a sampler also draws windows holding an event as often as windows
    without, and the loss weights are computed under that sampler.

    With ``teacher`` (a fine-tune checkpoint of the same task, e.g. a larger preset adapted
    with the same labels) the model also learns the teacher's predictions of every training
    epoch, labelled or not (knowledge distillation: ``adapt.distill_temperature`` and
    ``distill_weight``); this is how a fast scoring model inherits what a slower one learned.
    """
    config = config or PHASE_DEFAULTS["finetune"]
    adapt = adapt or AdaptConfig()
    rt = resolve_runtime(config.device, config.precision)
    st, spec_task, train_nights, val_nights = _prepare(store, task, config)
    column = st.label_column(spec_task.name)
    channels = channels or (None if fusion_checkpoint else default_channels(st, train_nights))
    model, spec, parents = build_classifier(spec_task, "sequence", st, fusion_checkpoint=fusion_checkpoint,
                                            preset=preset, channels=channels, adapt=adapt, seed=config.seed)
    model.to(rt.device)
    labelled = sample_labelled_epochs(st, train_nights, label_fraction, task=spec_task.name, seed=config.seed)
    data = Windows(st, train_nights, model.channels, length=model.seq_len, stride=adapt.window_stride,
                   epochs=labelled, per_second=spec_task if spec_task.per_second else None,
                   keep_unlabelled=teacher is not None)
    teacher_proba = None
    if teacher is not None:
        teacher_proba, parents["teacher"] = _teacher_predictions(teacher, st, spec_task,
                                                                 sorted({n for n, _ in data.items}), rt)
    if fusion_checkpoint is None:  # from unlabelled windows, so a seed's frozen convolutions are the same at every
        # label fraction and their cached features (kept beside the store) serve all of them
        unlabelled = Windows(st, train_nights, model.channels, length=model.seq_len, stride=adapt.window_stride)
        calibrate_batchnorm(model, unlabelled, n_items=adapt.finetune_calibration_items, seed=config.seed,
                            runtime=rt)
    n_labelled = sum(len(idx) for idx in labelled.values())
    window_labels = data.labels(column)
    sampling = None
    if spec_task.events and adapt.balance_event_windows:  # rare events: half the windows hold one
        sampling = inverse_frequency_weights((window_labels > 0).any(axis=1).astype(int))
    # per-second events are decoded from P(no event): class weights would inflate the event
    # classes and flag every uncertain second, so those models learn under the window balance alone
    weights = (None if spec_task.per_second else class_weights(window_labels, spec_task.n_classes, sampling).to(rt.device))
    n_classes = spec_task.n_classes
    logger.info("fine-tuning %s on %d windows (%d labelled epochs)", spec_task.name, len(data), n_labelled)
    cache = _conv_cache(model, st, [*{n for n, _ in data.items}, *nights_with_channels(st, val_nights,
                                                                                       model.channels)[0]],
                        adapt, rt)
    train_data: Dataset[Any] = data if cache is None else CachedWindows(data, cache)
    if teacher_proba is not None:
        train_data = TeacherTargets(train_data, data, teacher_proba)

    def step(batch: Any, g: torch.Generator) -> dict[str, torch.Tensor]:
        logits = model(batch[0], conv=cache is not None)
        y = (batch[1] if spec_task.per_second else batch[1][..., column]).reshape(-1)
        flat = logits.reshape(-1, n_classes).float()
        if teacher_proba is None:
            return {"loss": F.cross_entropy(flat, y, weight=weights, ignore_index=-1)}
        # the weighted mean over labelled epochs, zero (not NaN) for a batch without one, and no
        # host synchronisation to find out which
        counted = (y >= 0).float() * (weights[y.clamp(min=0)] if weights is not None else 1.0)
        label_loss = (F.cross_entropy(flat, y, weight=weights, ignore_index=-1, reduction="sum")
                      / counted.sum().clamp(min=1e-8))
        soft = distillation_loss(logits, batch[2], adapt.distill_temperature)
        return {"loss": label_loss + adapt.distill_weight * soft, "label_loss": label_loss, "distillation": soft}

    validate, val_skipped = _validation(st, val_nights, spec_task, model.channels, rt, cache)
    meta = CheckpointMeta(phase="finetune", spec=spec, task=spec_task.name, preprocessing=st.config,
                          data=store_identity(st, train_nights, val_nights), parents=parents,
                          label_fraction=label_fraction, n_labelled_epochs=n_labelled)
    result = fit(model, train_data, step, config=config, out_dir=out_dir, meta=meta, runtime=rt, validate=validate,
                 selection=spec_task.selection, sample_weights=sampling, skipped=val_skipped, resume=resume,
                 restart=restart, progress=progress, description=f"finetune {spec_task.name}")
    if spec_task.per_second and is_main_process():
        _keep_decoding(model, result.checkpoint, st, val_nights, spec_task, rt, cache)
    return result


def _teacher_predictions(teacher: str | Path, store: EpochStore, task: Task, nights: Sequence[str],
                         runtime: Runtime) -> tuple[dict[str, np.ndarray], tuple[str, str]]:
    """A fine-tuned teacher's probabilities (E, K) of every epoch of ``nights``, and its
    ``(path, sha256)`` for the student's parents."""
    if task.per_second:
        raise ValueError(f"distillation teaches per-epoch predictions; task {task.name!r} predicts every "
                         f"{task.resolution_s:g} s")
    meta = read_checkpoint_meta(teacher)
    if meta.phase != "finetune" or meta.task != task.name:
        raise CheckpointError(f"{teacher} is a {meta.phase} checkpoint for {meta.task!r}; a teacher is a fine-tune "
                              f"checkpoint of the task being fine-tuned ({task.name!r})")
    check_compatible(meta, preprocessing_hash=store.preprocessing_hash, source=f"teacher {teacher}")
    unseen = [n for n in nights if not set(meta.channels) & set(store.night(n).channels)]
    if unseen:
        raise ValueError(f"teacher {teacher} reads {meta.channels}; training night(s) {unseen[:5]} have none of "
                         "them: choose a teacher trained on these nights' channels")
    model, _ = load_classifier(teacher, device=runtime.device)
    logger.info("distilling from %s (%s preset) on %d training nights", teacher, meta.spec.config.preset, len(nights))
    proba = {night: predict_stored_night(model, store, night, runtime, f"teacher {teacher} (night {night})")
             for night in nights}
    return proba, (str(teacher), meta.tensor_sha256)


def _conv_cache(model: SleepClassifier, store: EpochStore, nights: Sequence[str], adapt: AdaptConfig,
                runtime: Runtime) -> ConvCache | None:
    """The frozen convolutions of ``nights``, computed once or read from beside the store (keyed
    by their weights, so another run with the same frozen convolutions reuses them), if the
    adapt settings allow and it fits in memory."""
    if not adapt.cache_conv:
        return None
    need = ConvCache.estimate_bytes(model, store, nights, runtime)
    if need > adapt.cache_max_gb * 2**30:
        logger.warning("the convolution cache would take %.1f GB, more than cache_max_gb = %g; fine-tuning "
                       "recomputes the frozen convolutions at every step instead", need / 2**30, adapt.cache_max_gb)
        return None
    return ConvCache(model, store, sorted(set(nights)), runtime, persist=True)

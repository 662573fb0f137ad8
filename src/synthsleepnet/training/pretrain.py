"""Self-supervised pretraining: NeuroNet per modality, then SynthSleepNet fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .._config import PHASE_DEFAULTS, ModelConfig, TrainConfig, get_preset
from .._logging import logger, verbose
from .._validation import CheckpointError, check_option
from ..io.channels import MODALITIES, load_channel_table
from ..models.checkpoint import (
    CheckpointMeta,
    DataIdentity,
    check_compatible,
    load_neuronet,
    read_checkpoint_meta,
)
from ..models.neuronet import NeuroNet
from ..models.registry import ModelSpec
from ..models.synthsleepnet import SynthSleepNet
from ..store.epoch_store import EpochStore
from .data import ChannelEpochs, MultiChannelEpochs
from .loop import FitResult, fit
from .losses import neuronet_loss, synthsleepnet_loss
from .splits import assign_splits, split_hash, split_nights

__all__ = ["build_fusion", "channels_of", "default_channels", "pretrain_multimodal", "pretrain_unimodal", "resolve_model",
           "store_identity"]

#: The paper's modalities: the channel set of a scratch model when the caller names none.
PRETRAIN_MODALITIES = ("eeg", "eog", "emg", "ecg")


def store_identity(store: EpochStore, nights: Sequence[str], val_nights: Sequence[str] = ()) -> DataIdentity:
    """What a checkpoint records about its data: store, nights, subjects and the split file's hash."""
    m = store.manifest
    subjects = sorted({str(s) for s in m.loc[m["night_id"].isin(nights), "subject"]})
    return DataIdentity(str(store.path), tuple(nights), tuple(subjects), tuple(val_nights), split_hash(store))


def resolve_model(preset: str | ModelConfig, store: EpochStore) -> ModelConfig:
    """A model config (by preset name or given), checked against the store's preprocessing."""
    config = get_preset(preset) if isinstance(preset, str) else preset
    config.check_preprocessing(store.config, source=f"model preset {config.preset!r}")
    return config


def channels_of(modality: str, channels: Sequence[str]) -> list[str]:
    """The channels of one modality among ``channels``: channel-table order first, then by name."""
    table = load_channel_table()
    order = {name: i for i, name in enumerate(table.modality)}
    mine = [c for c in dict.fromkeys(channels) if table.modality_of(c) == modality]
    return sorted(mine, key=lambda c: (order.get(c, len(order)), c))


def default_channels(store: EpochStore, nights: Sequence[str], modalities: Sequence[str] = PRETRAIN_MODALITIES
                     ) -> list[str]:
    """One channel per modality: the first canonical channel (table order) present in every night."""
    shared = set.intersection(*(set(store.night(n).channels) for n in nights)) if nights else set()
    chosen = []
    for modality in modalities:
        options = channels_of(modality, sorted(shared))
        if options:
            chosen.append(options[0])
    if not chosen:
        raise ValueError(f"the nights share no channel of modalities {list(modalities)}")
    return chosen


@verbose
def pretrain_unimodal(
    store: str | Path,
    modality: str,
    out_dir: str | Path,
    *,
    preset: str | ModelConfig = "tiny",
    config: TrainConfig | None = None,
    splits: Sequence[str] = ("pretrain",),
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """Pretrain a NeuroNet on every channel of one modality, pooled, over the pretraining subjects.

    Masked frame-feature reconstruction of two views plus NT-Xent on their CLS projections
    (NeuroNet, arXiv:2404.17585). Splits are assigned on first use and saved in the store;
    ``splits`` names those whose nights pretrain (no labels are read; cross-validation studies
    pretrain on each fold's training subjects).
    """
    check_option("modality", modality, MODALITIES)
    config = config or PHASE_DEFAULTS["pretrain_unimodal"]
    assign_splits(store, seed=config.seed)
    st = EpochStore(store)
    model_config = resolve_model(preset, st)
    nights = split_nights(st, tuple(splits))
    channels = channels_of(modality, [c for n in nights for c in st.night(n).channels])
    if not channels:
        raise ValueError(f"no pretraining night of {st.path} has a {modality} channel")
    dataset = ChannelEpochs(st, nights, channels)
    torch.manual_seed(config.seed)  # seeded initial weights: runs with one seed are identical
    model = NeuroNet(model_config.encoder, model_config.neuronet)
    logger.info("pretraining NeuroNet (%s) on %d %s epoch-channels from %d nights",
                model_config.preset, len(dataset), modality, len(nights))

    def step(x: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        return neuronet_loss(model.pretext(x, g), model_config.neuronet)

    used = tuple(c for c in channels if any(c in st.night(n).channels for n in nights))
    meta = CheckpointMeta(phase="pretrain_unimodal", spec=ModelSpec("neuronet", model_config, used),
                          modality=modality, preprocessing=st.config, data=store_identity(st, nights))
    return fit(model, dataset, step, config=config, out_dir=out_dir, meta=meta, resume=resume, restart=restart,
               progress=progress, description=f"pretrain {modality}")


def build_fusion(config: ModelConfig, channels: Sequence[str], encoders: Mapping[str, str | Path]
                 ) -> tuple[SynthSleepNet, dict[str, tuple[str, str]]]:
    """A SynthSleepNet whose encoders start from unimodal checkpoints (``modality → path``).

    Returns the model and its parents (``modality → (path, sha256)``).
    """
    model = SynthSleepNet(channels, config.encoder, config.fusion)
    table = load_channel_table()
    parents: dict[str, tuple[str, str]] = {}
    for channel in channels:
        modality = table.modality_of(channel) or ""
        if modality not in encoders:
            raise ValueError(f"no pretrained encoder for channel {channel} ({modality}); give "
                             f"--encoders {modality}=PATH (have: {sorted(encoders)})")
        neuronet, meta = load_neuronet(encoders[modality])
        if meta.spec.config.encoder != config.encoder:
            raise CheckpointError(f"{encoders[modality]} is a {meta.preset!r} encoder, not the {config.preset!r} "
                                  "encoder the other checkpoints have")
        model.load_encoder(channel, neuronet.encoder.state_dict())
        parents[modality] = (str(encoders[modality]), meta.tensor_sha256)
    return model, parents


@verbose
def pretrain_multimodal(
    store: str | Path,
    encoders: Mapping[str, str | Path],
    out_dir: str | Path,
    *,
    channels: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    splits: Sequence[str] = ("pretrain",),
    resume: bool = False,
    restart: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """Pretrain SynthSleepNet fusion from unimodal NeuroNet checkpoints (``modality → path``).

    One encoder per channel (default: one channel per modality with a checkpoint), LoRA-adapted;
    masked token prediction per channel plus cross-modal NT-Xent, on the nights of ``splits``.
    """
    config = config or PHASE_DEFAULTS["pretrain_multimodal"]
    for modality in encoders:
        check_option("encoder modality", modality, MODALITIES)
    metas = {m: read_checkpoint_meta(p) for m, p in encoders.items()}
    for modality, meta in metas.items():
        if meta.phase != "pretrain_unimodal":
            raise CheckpointError(f"{encoders[modality]} is a {meta.phase} checkpoint, not a unimodal NeuroNet")
    configs = {m: meta.spec.config for m, meta in metas.items()}
    first = next(iter(configs.values()))
    if any(c != first for c in configs.values()):
        raise CheckpointError(f"encoders come from different model settings: "
                              f"{ {m: c.preset for m, c in configs.items()} }")
    st = EpochStore(store)
    for modality, meta in metas.items():
        check_compatible(meta, preprocessing_hash=st.preprocessing_hash, source=str(encoders[modality]))
    model_config = resolve_model(first, st)
    assign_splits(st.path, seed=config.seed)
    st = EpochStore(store)
    nights = split_nights(st, tuple(splits))
    channels = list(channels or default_channels(st, nights, [m for m in MODALITIES if m in encoders]))
    torch.manual_seed(config.seed)
    model, parents = build_fusion(model_config, channels, encoders)
    dataset = MultiChannelEpochs(st, nights, channels)

    def step(batch: Any, g: torch.Generator) -> dict[str, torch.Tensor]:
        return synthsleepnet_loss(model.pretext(batch[0], g), model_config.fusion)

    meta = CheckpointMeta(phase="pretrain_multimodal", spec=ModelSpec("synthsleepnet", model_config, tuple(channels)),
                          preprocessing=st.config, data=store_identity(st, nights), parents=parents)
    return fit(model, dataset, step, config=config, out_dir=out_dir, meta=meta, resume=resume, restart=restart,
               progress=progress, description="pretrain fusion")


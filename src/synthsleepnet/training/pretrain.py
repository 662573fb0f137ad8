"""Self-supervised pretraining: NeuroNet per modality, then SynthSleepNet fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .._config import STAGE_DEFAULTS, TrainConfig
from .._logging import logger, verbose
from ..io.channels import MODALITIES, load_channel_table
from ..models.checkpoint import load_checkpoint, read_checkpoint_metadata
from ..models.registry import model_from_preset
from ..store.epoch_store import EpochStore
from .data import ChannelEpochs, MultiChannelEpochs
from .loop import FitResult, fit
from .losses import neuronet_loss, synthsleepnet_loss
from .splits import assign_splits, split_nights

__all__ = ["default_channels", "pretrain_multimodal", "pretrain_unimodal", "store_identity"]

#: The paper's modalities: the channel set of a scratch model when the caller names none.
PRETRAIN_MODALITIES = ("eeg", "eog", "emg", "ecg")


def store_identity(store: EpochStore, nights: Sequence[str]) -> dict[str, Any]:
    """What a checkpoint records about its data: preprocessing, store, nights and subjects."""
    m = store.manifest
    return {"preprocessing": store.info["preprocessing"], "preprocessing_hash": store.info["preprocessing_hash"],
            "store": str(store.path), "nights": list(nights),
            "subjects": sorted({str(s) for s in m.loc[m["night_id"].isin(nights), "subject"]})}


def default_channels(store: EpochStore, nights: Sequence[str], modalities: Sequence[str] = PRETRAIN_MODALITIES
                     ) -> list[str]:
    """One channel per modality: the first canonical channel (table order) present in every night."""
    table = load_channel_table()
    shared = set.intersection(*(set(store.night(n).channels) for n in nights)) if nights else set()
    chosen = []
    for modality in modalities:
        options = [c for c, m in table.modality.items() if m == modality and c in shared]
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
    preset: str = "tiny",
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """Pretrain a NeuroNet on every channel of one modality, pooled, over the pretraining subjects.

    Masked frame-feature reconstruction of two views plus NT-Xent on their CLS projections
    (NeuroNet, arXiv:2404.17585). Splits are assigned on first use and saved in the store.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {list(MODALITIES)}, got {modality!r}")
    config = config or STAGE_DEFAULTS["pretrain_unimodal"]
    st = EpochStore(store)
    assign_splits(st.path, seed=config.seed)
    st = EpochStore(store)
    nights = split_nights(st, "pretrain")
    table = load_channel_table()
    channels = [c for c, m in table.modality.items() if m == modality]
    dataset = ChannelEpochs(st, nights, channels)
    torch.manual_seed(config.seed)  # seeded initial weights: runs with one seed are identical
    model = model_from_preset("neuronet", preset)
    logger.info("pretraining NeuroNet (%s) on %d %s epoch-channels from %d nights",
                preset, len(dataset), modality, len(nights))

    def step(m: torch.nn.Module, x: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        net = getattr(m, "module", m)
        return neuronet_loss(net.pretext(x, g))

    meta = {"stage": "pretrain_unimodal", "modality": modality, "preset": preset,
            "channels": [c for c in channels if any(c in st.night(n).channels for n in nights)],
            **store_identity(st, nights)}
    return fit(model, dataset, step, config=config, out_dir=out_dir, checkpoint_meta=meta, resume=resume,
               progress=progress, description=f"pretrain {modality}")


def build_fusion(preset: str, channels: Sequence[str], encoders: Mapping[str, str | Path]) -> torch.nn.Module:
    """A SynthSleepNet whose encoders start from unimodal checkpoints (``modality → path``)."""
    model = model_from_preset("synthsleepnet", preset, channels=channels)
    table = load_channel_table()
    for channel in channels:
        modality = table.modality[channel]
        if modality not in encoders:
            raise ValueError(f"no pretrained encoder for channel {channel} ({modality}); give "
                             f"--encoders {modality}=PATH (have: {sorted(encoders)})")
        neuronet, meta = load_checkpoint(encoders[modality])
        if meta.get("preset") != preset:
            raise ValueError(f"{encoders[modality]} is a {meta.get('preset')!r} model, not {preset!r}")
        model.load_encoder(channel, neuronet.encoder.state_dict())  # type: ignore[operator]
    return model


@verbose
def pretrain_multimodal(
    store: str | Path,
    encoders: Mapping[str, str | Path],
    out_dir: str | Path,
    *,
    channels: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FitResult:
    """Pretrain SynthSleepNet fusion from unimodal NeuroNet checkpoints (``modality → path``).

    One encoder per channel (default: one channel per modality with a checkpoint), LoRA-adapted;
    masked token prediction per channel plus cross-modal NT-Xent.
    """
    config = config or STAGE_DEFAULTS["pretrain_multimodal"]
    metas = {m: read_checkpoint_metadata(p) for m, p in encoders.items()}
    presets = {meta.get("preset") for meta in metas.values()}
    if len(presets) != 1:
        raise ValueError(f"encoders come from different presets {sorted(map(str, presets))}")
    preset = str(presets.pop())
    st = EpochStore(store)
    hashes = {meta.get("preprocessing_hash") for meta in metas.values()}
    if hashes != {st.info["preprocessing_hash"]}:
        raise ValueError(f"encoders were pretrained on data prepared differently ({hashes}) from {st.path} "
                         f"({st.info['preprocessing_hash']})")
    assign_splits(st.path, seed=config.seed)
    st = EpochStore(store)
    nights = split_nights(st, "pretrain")
    channels = list(channels or default_channels(st, nights, [m for m in MODALITIES if m in encoders]))
    torch.manual_seed(config.seed)
    model = build_fusion(preset, channels, encoders)
    dataset = MultiChannelEpochs(st, nights, channels)

    def step(m: torch.nn.Module, batch: Any, g: torch.Generator) -> dict[str, torch.Tensor]:
        net = getattr(m, "module", m)
        return synthsleepnet_loss(net.pretext(batch[0], g))

    meta = {"stage": "pretrain_multimodal", "preset": preset, "channels": channels,
            "encoders": {m: str(p) for m, p in encoders.items()}, **store_identity(st, nights)}
    return fit(model, dataset, step, config=config, out_dir=out_dir, checkpoint_meta=meta, resume=resume,
               progress=progress, description="pretrain fusion")

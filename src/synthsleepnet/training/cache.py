"""Frozen convolution features, computed once: adaptation pays only for what it trains.

In fine-tuning and probing the frame convolutions are frozen (the new LoRA adapters sit on the
frame MLP and the last fusion block), and they take most of the compute (85 % for ``tiny``).
:class:`ConvCache` runs them once per epoch-channel of the nights a run reads, in eval mode (the
frozen BatchNorm uses its stored statistics, so a feature never depends on its batch), and keeps
the features in memory; training windows, probing embeddings and validation start from them.
The result is the same model, trained the same way, within the cache dtype's rounding (bf16 when
the run is bf16).

A pretrained model's features are the same for every task, label fraction and seed (a scratch
model's for every label fraction of a seed), so they can also be kept beside the store
(``STORE/features/conv-<key>/<night>.safetensors``, the key a hash of that channel's convolution
weights, BatchNorm statistics included, and the dtype; a night prepared again is recomputed).
The folder is a cache: deleting it loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from .._atomic import atomic_path
from .._device import Runtime
from .._logging import logger
from ..models.checkpoint import tensor_digest
from ..models.classifier import SleepClassifier
from ..models.neuronet import NeuroNetEncoder
from ..store.epoch_store import EpochStore
from .data import Windows

__all__ = ["CachedWindows", "ConvCache", "conv_key"]


def conv_key(encoder: NeuroNetEncoder, dtype: torch.dtype) -> str:
    """What a channel's convolution features depend on: its convolution weights and the dtype."""
    state = {k: v for k, v in encoder.backbone.state_dict().items() if not k.startswith("mlp.")}
    return f"conv-{tensor_digest(state)[:16]}-{str(dtype).removeprefix('torch.')}"


def _signature(store: EpochStore, night: str) -> str:
    """Changes when a night is prepared again (its signals file is replaced)."""
    stat = os.stat(store.night(night).path / "signals.npy")
    return f"{stat.st_size}-{stat.st_mtime_ns}"


class ConvCache:
    """Convolution features (E, F, n_conv) per night and channel of a frozen classifier.

    Parameters
    ----------
    model : SleepClassifier
        Its encoders' convolutions (frozen, in eval mode) are run.
    store : EpochStore
        Where the nights are.
    nights : sequence of str
        The nights to cache (every epoch of each).
    runtime : Runtime
        Device and precision of the computation; features are kept on the CPU in bf16 for a bf16
        run, float32 otherwise.
    persist : bool
        Also read and write the features beside the store (for pretrained models, whose
        features every later run reuses).
    batch : int
        Epochs per forward pass.
    """

    def __init__(self, model: SleepClassifier, store: EpochStore, nights: Sequence[str], runtime: Runtime, *,
                 persist: bool = False, batch: int = 256) -> None:
        self.dtype = torch.bfloat16 if runtime.dtype == torch.bfloat16 else torch.float32
        self.features: dict[str, dict[str, torch.Tensor]] = {}
        self.nights = list(nights)
        self._model, self._store, self._runtime, self._batch = model, store, runtime, batch
        self._keys = {c: conv_key(model.fusion.encoder(c), self.dtype) for c in model.channels}
        self._root = store.path / "features" if persist else None
        self.computed = 0  # night-channels computed here, not read from beside the store

    def materialise(self) -> None:
        """Compute (or read) every night now. Nights are otherwise computed when first asked
        for, so a finished run that is resumed costs nothing; training calls this before its
        data-loader workers start, so they share one copy instead of each computing its own."""
        for night in self.nights:
            self._night(night)
        size = sum(t.numel() * t.element_size() for f in self.features.values() for t in f.values())
        logger.info("convolution features of %d nights: %.0f MB (%d night-channels computed%s)", len(self.nights),
                    size / 2**20, self.computed, f", the rest read from {self._root}" if self._root else "")

    def _night(self, night: str) -> dict[str, torch.Tensor]:
        if night not in self.features:
            if night not in self.nights:
                raise KeyError(f"night {night!r} is not one of the cached nights")
            self.features[night] = self._night_features(night)
        return self.features[night]

    def _night_features(self, night: str) -> dict[str, torch.Tensor]:
        channels = [c for c in self._model.channels if c in self._store.night(night).channels]
        if self._root is None:
            self.computed += len(channels)
            return self._compute(night, channels)
        signature = _signature(self._store, night)
        paths = {c: self._root / self._keys[c] / f"{night}.safetensors" for c in channels}
        found = {c: t for c in channels if (t := self._load(paths[c], signature)) is not None}
        missing = [c for c in channels if c not in found]
        fresh = self._compute(night, missing) if missing else {}
        for c, t in fresh.items():
            self._save(paths[c], t, signature)
        self.computed += len(missing)
        return {c: found[c] if c in found else fresh[c] for c in channels}

    def _compute(self, night: str, channels: list[str]) -> dict[str, torch.Tensor]:
        nf = self._store.night(night)
        parts: dict[str, list[torch.Tensor]] = {c: [] for c in channels}
        with torch.inference_mode(), self._runtime.autocast():
            for first in range(0, nf.n_epochs, self._batch):
                x = nf.read(np.arange(first, min(first + self._batch, nf.n_epochs)))
                for c in channels:
                    epochs = torch.from_numpy(x[:, nf.channels.index(c)]).to(self._runtime.device)
                    parts[c].append(self._model.fusion.encoder(c).conv_features(epochs).to("cpu", self.dtype))
        return {c: torch.cat(v) for c, v in parts.items()}

    def _load(self, path: Path, signature: str) -> torch.Tensor | None:
        if not path.exists():
            return None
        try:
            with safe_open(str(path), "pt") as f:
                if (f.metadata() or {}).get("signals") != signature:
                    return None
            features = load_file(str(path))["features"]
        except (SafetensorError, OSError, KeyError) as err:  # a damaged cache file is recomputed
            logger.warning("ignoring the cached features %s (%s)", path, err)
            return None
        return features if features.dtype == self.dtype else None

    @staticmethod
    def _save(path: Path, features: torch.Tensor, signature: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                save_file({"features": features.contiguous()}, str(tmp), metadata={"signals": signature})
        except OSError as err:  # a read-only or full store: the features serve this run only
            logger.warning("could not keep convolution features beside the store (%s): %s", path, err)

    @staticmethod
    def estimate_bytes(model: SleepClassifier, store: EpochStore, nights: Sequence[str], runtime: Runtime) -> int:
        """Memory the cache would take, before computing anything."""
        encoder = model.fusion.encoder(model.channels[0])
        with torch.inference_mode():
            probe = encoder.conv_features(torch.zeros(1, encoder.epoch_samples, device=runtime.device))
        item = 2 if runtime.dtype == torch.bfloat16 else 4
        epochs = sum(store.night(n).n_epochs * len([c for c in model.channels if c in store.night(n).channels])
                     for n in nights)
        return int(probe.numel() * item * epochs)

    def release(self, night: str) -> None:
        """Drop a night's features from memory (a pass over many nights keeps one at a time)."""
        self.features.pop(night, None)

    def window(self, night: str, start: int, length: int) -> dict[str, torch.Tensor]:
        """``{channel: (length, F, n_conv)}`` float32 features of a window."""
        return {c: t[start:start + length].float() for c, t in self._night(night).items()}

    def epochs(self, night: str, index: np.ndarray) -> dict[str, torch.Tensor]:
        """``{channel: (len(index), F, n_conv)}`` float32 features of some epochs of a night."""
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64))
        return {c: t[idx].float() for c, t in self._night(night).items()}

    def night(self, night: str) -> dict[str, torch.Tensor]:
        """``{channel: (E, F, n_conv)}`` float32 features of a whole night."""
        return {c: t.float() for c, t in self._night(night).items()}


class CachedWindows(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """:class:`Windows` served from a :class:`ConvCache`: ``{channel: (S, F, n_conv)}`` and labels."""

    def __init__(self, windows: Windows, cache: ConvCache) -> None:
        self.windows, self.cache = windows, cache
        self.skipped = windows.skipped

    def materialise(self) -> None:
        self.cache.materialise()

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        night, start = self.windows.items[i]
        return (self.cache.window(night, start, self.windows.length),
                torch.from_numpy(self.windows.targets(night, start)))

"""Frozen convolution features, computed once: fine-tuning pays only for what it trains.

In fine-tuning the frame convolutions are frozen (the new LoRA adapters sit on the frame MLP,
the attention and the last fusion block), and they take most of the compute (85 % for ``tiny``).
:class:`ConvCache` runs them once per epoch-channel of the nights a run reads, in eval mode (the
frozen BatchNorm uses its stored statistics, so a feature never depends on its batch), and keeps
the features in memory; training windows and validation then start from them. The result is the
same model, trained the same way, within the cache dtype's rounding (bf16 when the run is bf16).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .._device import Runtime
from .._logging import logger
from ..models.classifier import SleepClassifier
from ..store.epoch_store import EpochStore
from .data import Windows

__all__ = ["CachedWindows", "ConvCache"]


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
    batch : int
        Epochs per forward pass.
    """

    def __init__(self, model: SleepClassifier, store: EpochStore, nights: Sequence[str], runtime: Runtime,
                 batch: int = 256) -> None:
        self.dtype = torch.bfloat16 if runtime.dtype == torch.bfloat16 else torch.float32
        self.features: dict[str, dict[str, torch.Tensor]] = {}
        with torch.inference_mode(), runtime.autocast():
            for night in nights:
                nf = store.night(night)
                present = [c for c in model.channels if c in nf.channels]
                per_channel: dict[str, list[torch.Tensor]] = {c: [] for c in present}
                for first in range(0, nf.n_epochs, batch):
                    x = nf.read(np.arange(first, min(first + batch, nf.n_epochs)))
                    for c in present:
                        epochs = torch.from_numpy(x[:, nf.channels.index(c)]).to(runtime.device)
                        per_channel[c].append(model.fusion.encoder(c).conv_features(epochs).to("cpu", self.dtype))
                self.features[night] = {c: torch.cat(v) for c, v in per_channel.items()}
        size = sum(t.numel() * t.element_size() for f in self.features.values() for t in f.values())
        logger.info("cached the frozen convolutions of %d nights: %.0f MB", len(nights), size / 2**20)

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

    def window(self, night: str, start: int, length: int) -> dict[str, torch.Tensor]:
        """``{channel: (length, F, n_conv)}`` float32 features of a window."""
        return {c: t[start:start + length].float() for c, t in self.features[night].items()}

    def night(self, night: str) -> dict[str, torch.Tensor]:
        """``{channel: (E, F, n_conv)}`` float32 features of a whole night."""
        return {c: t.float() for c, t in self.features[night].items()}


class CachedWindows(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """:class:`Windows` served from a :class:`ConvCache`: ``{channel: (S, F, n_conv)}`` and labels."""

    def __init__(self, windows: Windows, cache: ConvCache) -> None:
        self.windows, self.cache = windows, cache
        self.skipped = windows.skipped

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        night, start = self.windows.items[i]
        return (self.cache.window(night, start, self.windows.length),
                torch.from_numpy(self.windows.window_labels(night, start)))

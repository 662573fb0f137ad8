"""PyTorch datasets over an epoch store: single epochs per channel, multichannel epochs, windows.

Items are read on demand with ``pread``; nothing is loaded up front. Every dataset says which
nights it left out and why (``skipped``): training logs it and saves it beside the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..store.epoch_store import EpochStore

__all__ = ["ChannelEpochs", "Items", "MultiChannelEpochs", "ReportsSkipped", "Windows", "class_weights",
           "inverse_frequency_weights", "nights_with_channels"]


class Items(Protocol):
    """A map-style dataset: a length and items by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@runtime_checkable
class ReportsSkipped(Protocol):
    """A dataset that names the nights it left out: ``{night: reason}``."""

    skipped: dict[str, str]


def _missing(have: Sequence[str], channels: Sequence[str]) -> list[str]:
    return [c for c in channels if c not in have]


def nights_with_channels(store: EpochStore, nights: Sequence[str], channels: Sequence[str]
                         ) -> tuple[list[str], dict[str, str]]:
    """The nights holding every one of ``channels``, and the others with the reason."""
    usable, skipped = [], {}
    for night in nights:
        have = store.night(night).channels
        missing = _missing(have, channels)
        if missing:
            skipped[night] = f"lacks channel(s) {missing} (it has {have})"
        else:
            usable.append(night)
    return usable, skipped


class ChannelEpochs(Dataset[torch.Tensor]):
    """One channel of one epoch per item, pooling every channel of a modality (unimodal pretraining)."""

    def __init__(self, store: EpochStore, nights: Sequence[str], channels: Sequence[str]) -> None:
        self.store = store
        self.skipped: dict[str, str] = {}
        items = []
        for night in nights:
            nf = store.night(night)
            present = [nf.channels.index(c) for c in channels if c in nf.channels]
            if not present:
                self.skipped[night] = f"has none of the channels {list(channels)} (it has {nf.channels})"
            items += [(night, e, c) for c in present for e in range(nf.n_epochs)]
        if not items:
            raise ValueError(f"no epochs of channels {list(channels)} in nights {list(nights)[:5]}")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        night, epoch, channel = self.items[i]
        return torch.from_numpy(self.store.night(night).read([epoch])[0, channel])


class MultiChannelEpochs(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """Epochs as ``{channel: (T,)}`` with their (n_tasks,) labels; only nights with every channel.

    With ``epochs`` (a label-fraction sample, ``night → epoch indices``) only those epochs are
    items; nights outside the sample are not "skipped", they simply hold no sampled epoch.
    """

    def __init__(self, store: EpochStore, nights: Sequence[str], channels: Sequence[str],
                 epochs: Mapping[str, np.ndarray] | None = None) -> None:
        self.store, self.channels = store, list(channels)
        self.items: list[tuple[str, int]] = []
        self._index: dict[str, list[int]] = {}
        self.skipped: dict[str, str] = {}
        for night in nights:
            have = store.night(night).channels
            missing = _missing(have, channels)
            if missing:
                self.skipped[night] = f"lacks channel(s) {missing} (it has {have})"
                continue
            if epochs is None:
                chosen = np.arange(store.night(night).n_epochs)
            elif night in epochs:
                chosen = epochs[night]
            else:
                continue
            self._index[night] = [have.index(c) for c in channels]
            self.items += [(night, int(e)) for e in chosen]
        if not self.items:
            raise ValueError(f"no nights with all of {self.channels} among {list(nights)[:5]}: {self.skipped}")

    def __len__(self) -> int:
        return len(self.items)

    def labels(self, column: int) -> np.ndarray:
        """(N,) labels of one column for all items, without reading signals."""
        return np.array([self.store.night(n).labels[e, column] for n, e in self.items])

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        night, epoch = self.items[i]
        x = self.store.night(night).read([epoch])[0]
        idx = self._index[night]
        return ({c: torch.from_numpy(x[j]) for c, j in zip(self.channels, idx, strict=True)},
                torch.from_numpy(self.store.night(night).labels[epoch].astype(np.int64)))


class Windows(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """Windows of ``length`` consecutive epochs: ``{channel: (S, T)}`` and (S, n_tasks) labels.

    Training windows overlap (``stride`` < ``length``); evaluation uses ``stride == length`` and
    a last window aligned to the end, so every epoch is covered. With ``epochs`` (a label-
    fraction sample) only windows holding at least one chosen epoch are kept, and unchosen
    epochs get label -1 so the loss ignores them.
    """

    def __init__(self, store: EpochStore, nights: Sequence[str], channels: Sequence[str], *,
                 length: int = 20, stride: int = 10, epochs: Mapping[str, np.ndarray] | None = None) -> None:
        self.store, self.channels, self.length = store, list(channels), length
        self.items: list[tuple[str, int]] = []
        self._index: dict[str, list[int]] = {}
        self._mask: dict[str, np.ndarray] = {}
        self.skipped: dict[str, str] = {}
        for night in nights:
            nf = store.night(night)
            missing = _missing(nf.channels, channels)
            if missing or nf.n_epochs < length:
                self.skipped[night] = (f"lacks channel(s) {missing} (it has {nf.channels})" if missing else
                                       f"has {nf.n_epochs} epochs, fewer than one {length}-epoch window")
                continue
            self._index[night] = [nf.channels.index(c) for c in channels]
            keep = np.ones(nf.n_epochs, dtype=bool)
            if epochs is not None:
                keep[:] = False
                keep[epochs.get(night, np.zeros(0, dtype=int))] = True
            self._mask[night] = keep
            starts = list(range(0, nf.n_epochs - length + 1, stride))
            if starts[-1] != nf.n_epochs - length:
                starts.append(nf.n_epochs - length)
            self.items += [(night, s) for s in starts if keep[s:s + length].any()]
        if not self.items:
            raise ValueError(f"no {length}-epoch windows with all of {self.channels} in {list(nights)[:5]}: "
                             f"{self.skipped}")

    def __len__(self) -> int:
        return len(self.items)

    def _window_labels(self, night: str, start: int) -> np.ndarray:
        """(length, n_tasks) labels of one window, -1 for epochs outside the label-fraction sample."""
        labels = self.store.night(night).labels[start:start + self.length].astype(np.int64)
        labels[~self._mask[night][start:start + self.length]] = -1
        return labels

    def labels(self, column: int) -> np.ndarray:
        """(windows, length) labels of one column as training sees them, without reading signals."""
        return np.stack([self._window_labels(n, s)[:, column] for n, s in self.items])

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        night, start = self.items[i]
        x = self.store.night(night).read_window(start, self.length)
        idx = self._index[night]
        return ({c: torch.from_numpy(np.ascontiguousarray(x[:, j])) for c, j in zip(self.channels, idx, strict=True)},
                torch.from_numpy(self._window_labels(night, start)))


def class_weights(labels: np.ndarray, n_classes: int, sample_weights: np.ndarray | None = None) -> torch.Tensor:
    """Inverse-frequency class weights (mean 1 over present classes); -1 labels are ignored.

    The reference code passed frequencies, which up-weights the majority class; these are
    ``N / (K · count_k)``. ``labels`` is (N,) epochs or (N, S) windows; with ``sample_weights``
    (N,) the counts are those a weighted sampler will show, so sampler and loss do not correct
    the same imbalance twice.
    """
    labels = np.asarray(labels).reshape(len(labels), -1)
    rows = np.ones(len(labels)) if sample_weights is None else np.asarray(sample_weights, dtype=float)
    counts = np.array([(rows[:, None] * (labels == k)).sum() for k in range(n_classes)])
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def inverse_frequency_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights ∝ 1 / frequency of the sample's class, for a weighted sampler.

    Each class then contributes equally in expectation; unlabelled samples (-1) get weight 0.
    """
    labels = np.asarray(labels).astype(int)
    out = np.zeros(labels.size)
    valid = labels >= 0
    counts = np.bincount(labels[valid])
    out[valid] = 1.0 / counts[labels[valid]]
    return out / out.sum() if out.sum() > 0 else out

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
from ..tasks import Task, second_labels

__all__ = ["ChannelEpochs", "Items", "MultiChannelEpochs", "ReportsSkipped", "TeacherTargets", "Windows",
           "class_weights", "inverse_frequency_weights", "night_second_labels", "nights_with_channels"]


class Items(Protocol):
    """A map-style dataset: a length and items by index."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@runtime_checkable
class ReportsSkipped(Protocol):
    """A dataset that names the nights it left out: ``{night: reason}``."""

    skipped: dict[str, str]


@runtime_checkable
class Materialises(Protocol):
    """A dataset that computes what it serves when first asked; ``materialise`` computes it all."""

    def materialise(self) -> None: ...


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
    """One channel of one epoch per item, pooling every channel of a modality (unimodal pretraining).

    Items are kept as three integer arrays (night, epoch, channel), not Python tuples, so a
    cohort of millions of epoch-channels costs megabytes. ``__getitems__`` reads a whole batch
    with one small ``pread`` per item of that channel only (the DataLoader calls it).
    """

    def __init__(self, store: EpochStore, nights: Sequence[str], channels: Sequence[str]) -> None:
        self.store = store
        self.skipped: dict[str, str] = {}
        self.nights: list[str] = []
        parts: list[tuple[int, int, int]] = []  # (night index, channel index, epochs)
        for night in nights:
            nf = store.night(night)
            present = [nf.channels.index(c) for c in channels if c in nf.channels]
            if not present:
                self.skipped[night] = f"has none of the channels {list(channels)} (it has {nf.channels})"
                continue
            self.nights.append(night)
            parts += [(len(self.nights) - 1, c, nf.n_epochs) for c in present]
        if not parts:
            raise ValueError(f"no epochs of channels {list(channels)} in nights {list(nights)[:5]}")
        counts = np.array([n for _, _, n in parts])
        self._night = np.repeat(np.array([p[0] for p in parts], dtype=np.int32), counts)
        self._channel = np.repeat(np.array([p[1] for p in parts], dtype=np.int16), counts)
        self._epoch = np.concatenate([np.arange(n, dtype=np.int32) for n in counts])

    def __len__(self) -> int:
        return int(self._epoch.size)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        out = np.empty((index.size, self.store.config.epoch_samples), dtype=np.float32)
        keys = self._night[index].astype(np.int64) * 65536 + self._channel[index]
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            night, channel = self.nights[int(key // 65536)], int(key % 65536)
            out[rows] = self.store.night(night).read_channel(self._epoch[index[rows]], channel)
        return list(torch.from_numpy(out))


class MultiChannelEpochs(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """Epochs as ``{channel: (T,)}`` with their (n_tasks,) labels; only nights with every channel.

    With ``epochs`` (a label-fraction sample, ``night → epoch indices``) only those epochs are
    items; nights outside the sample are not "skipped", they simply hold no sampled epoch.
    ``__getitems__`` reads a batch night by night, one read per run of consecutive epochs.
    """

    def __init__(self, store: EpochStore, nights: Sequence[str], channels: Sequence[str],
                 epochs: Mapping[str, np.ndarray] | None = None) -> None:
        self.store, self.channels = store, list(channels)
        self.nights: list[str] = []
        self._index: dict[str, list[int]] = {}
        self.skipped: dict[str, str] = {}
        night_of, epoch_of = [], []
        for night in nights:
            have = store.night(night).channels
            missing = _missing(have, channels)
            if missing:
                self.skipped[night] = f"lacks channel(s) {missing} (it has {have})"
                continue
            if epochs is None:
                chosen = np.arange(store.night(night).n_epochs)
            elif night in epochs:
                chosen = np.asarray(epochs[night])
            else:
                continue
            self._index[night] = [have.index(c) for c in channels]
            self.nights.append(night)
            night_of.append(np.full(chosen.size, len(self.nights) - 1, dtype=np.int32))
            epoch_of.append(chosen.astype(np.int32))
        if not night_of or not sum(a.size for a in night_of):
            raise ValueError(f"no nights with all of {self.channels} among {list(nights)[:5]}: {self.skipped}")
        self._night = np.concatenate(night_of)
        self._epoch = np.concatenate(epoch_of)

    @property
    def items(self) -> list[tuple[str, int]]:
        """``(night, epoch)`` of every item (built on demand: large for a cohort)."""
        return [(self.nights[n], int(e)) for n, e in zip(self._night, self._epoch, strict=True)]

    def __len__(self) -> int:
        return int(self._epoch.size)

    def epochs_by_night(self) -> dict[str, np.ndarray]:
        """``night → epoch indices`` of the items, in item order (items are grouped by night)."""
        return {night: self._epoch[self._night == n] for n, night in enumerate(self.nights)}

    def labels(self, column: int) -> np.ndarray:
        """(N,) labels of one column for all items, without reading signals."""
        out = np.empty(len(self), dtype=np.int64)
        for n, night in enumerate(self.nights):
            rows = np.flatnonzero(self._night == n)
            out[rows] = self.store.night(night).labels[self._epoch[rows], column]
        return out

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        index = np.asarray(indices, dtype=np.int64)
        out: dict[int, tuple[dict[str, torch.Tensor], torch.Tensor]] = {}
        for n in np.unique(self._night[index]):
            rows = np.flatnonzero(self._night[index] == n)
            night = self.nights[int(n)]
            nf = self.store.night(night)
            epochs = self._epoch[index[rows]]
            x = nf.read(epochs)[:, self._index[night]]
            y = torch.from_numpy(nf.labels[epochs].astype(np.int64))
            for k, row in enumerate(rows):
                out[int(row)] = ({c: torch.from_numpy(x[k, j]) for j, c in enumerate(self.channels)}, y[k])
        return [out[row] for row in range(index.size)]


class Windows(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """Windows of ``length`` consecutive epochs: ``{channel: (S, T)}`` and (S, n_tasks) labels.

    Training windows overlap (``stride`` < ``length``); evaluation uses ``stride == length`` and
    a last window aligned to the end, so every epoch is covered. With ``epochs`` (a label-
    fraction sample) only windows holding at least one chosen epoch are kept (all windows with
    ``keep_unlabelled``, for a teacher to label), and unchosen epochs get label -1 so the loss
    ignores them. With a ``per_second`` task the targets are its labels of every second,
    (S, seconds), from each night's scored events.
    """

    def __init__(self, store: EpochStore, nights: Sequence[str], channels: Sequence[str], *,
                 length: int = 20, stride: int = 10, epochs: Mapping[str, np.ndarray] | None = None,
                 per_second: Task | None = None, keep_unlabelled: bool = False) -> None:
        self.store, self.channels, self.length, self.per_second = store, list(channels), length, per_second
        self.items: list[tuple[str, int]] = []
        self._index: dict[str, list[int]] = {}
        self._mask: dict[str, np.ndarray] = {}
        self._seconds: dict[str, np.ndarray] = {}
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
            if per_second is not None:
                self._seconds[night] = night_second_labels(store, night, per_second)
            starts = list(range(0, nf.n_epochs - length + 1, stride))
            if starts[-1] != nf.n_epochs - length:
                starts.append(nf.n_epochs - length)
            self.items += [(night, s) for s in starts if keep_unlabelled or keep[s:s + length].any()]
        if not self.items:
            raise ValueError(f"no {length}-epoch windows with all of {self.channels} in {list(nights)[:5]}: "
                             f"{self.skipped}")

    def __len__(self) -> int:
        return len(self.items)

    def window_labels(self, night: str, start: int) -> np.ndarray:
        """(length, n_tasks) labels of one window, -1 for epochs outside the label-fraction sample."""
        labels = self.store.night(night).labels[start:start + self.length].astype(np.int64)
        labels[~self._mask[night][start:start + self.length]] = -1
        return labels

    def labels(self, column: int) -> np.ndarray:
        """(windows, length) labels of one column as training sees them, without reading signals."""
        return np.stack([self.window_labels(n, s)[:, column] for n, s in self.items])

    def targets(self, night: str, start: int) -> np.ndarray:
        """What the loss sees for one window: :meth:`window_labels`, or with a per-second task its
        (length, seconds) labels, -1 outside the label-fraction sample."""
        if self.per_second is None:
            return self.window_labels(night, start)
        seconds = self._seconds[night][start:start + self.length].copy()
        seconds[~self._mask[night][start:start + self.length]] = -1
        return seconds

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        night, start = self.items[i]
        x = self.store.night(night).read_window(start, self.length)
        idx = self._index[night]
        return ({c: torch.from_numpy(np.ascontiguousarray(x[:, j])) for c, j in zip(self.channels, idx, strict=True)},
                torch.from_numpy(self.targets(night, start)))


class TeacherTargets(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]):
    """The items of ``base`` (one per window of ``windows``: samples or cached convolutions, and
    labels) with a teacher's probabilities of the window's epochs, (S, K), appended."""

    def __init__(self, base: Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]], windows: Windows,
                 proba: Mapping[str, np.ndarray]) -> None:
        self.base, self.windows, self.proba = base, windows, proba
        self.skipped = windows.skipped

    def materialise(self) -> None:
        if isinstance(self.base, Materialises):
            self.base.materialise()

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        night, start = self.windows.items[i]
        inputs, labels = self.base[i]
        return inputs, labels, torch.from_numpy(self.proba[night][start:start + self.windows.length])


def night_second_labels(store: EpochStore, night: str, task: Task) -> np.ndarray:
    """(E, seconds) int64 labels of a per-second task for a stored night; -1 in epochs the task's
    column marks unknown (no respiratory scoring)."""
    nf = store.night(night)
    seconds = second_labels(nf.events, nf.n_epochs, store.config.epoch_s, task.resolution_s or 1.0).astype(np.int64)
    seconds[nf.labels[:, store.label_column(task.name)] < 0] = -1
    return seconds


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

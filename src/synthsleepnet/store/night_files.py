"""On-disk layout of one prepared night, written atomically and read with ``pread``.

A night is a folder ``nights/<night_id>/`` holding

- ``signals.npy``: (E, C, T) epochs in the store dtype, C-contiguous, so epoch ``k`` is one
  contiguous byte range and a random batch costs one ``pread`` per epoch (no page-cache
  warm-up, no loading of the night);
- ``labels.npy``: (E, n_tasks) int8, one column per task of the store's ``labels`` (stage, apnea, hypopnea);
- ``events.csv``: scored events (onset, duration, type) in seconds from the recording start;
- ``meta.json``: channels, modalities, source files, preprocessing settings and hash, report.

The folder is written under a temporary name and renamed into place, so a crash never leaves a
half night: either the folder exists complete, or it does not exist.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["NightFiles", "remove_partial_nights", "write_night_files"]

_TMP_PREFIX = ".tmp-"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_night_files(night_dir: Path, signals: np.ndarray, labels: np.ndarray, events: pd.DataFrame,
                      meta: dict[str, Any], dtype: str) -> None:
    """Write one night atomically to ``night_dir`` (replacing an existing one)."""
    tmp = night_dir.parent / f"{_TMP_PREFIX}{night_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "signals.npy", np.ascontiguousarray(signals, dtype=dtype))
        np.save(tmp / "labels.npy", np.ascontiguousarray(labels, dtype=np.int8))
        events.to_csv(tmp / "events.csv", index=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
        for name in ("signals.npy", "labels.npy", "events.csv", "meta.json"):
            _fsync_file(tmp / name)
    except OSError as err:  # a full disk: leave nothing half-written, and say which night and where
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(err.errno, f"cannot write night {night_dir.name} to {night_dir.parent} ({err.strerror})") \
            from err
    if night_dir.exists():
        shutil.rmtree(night_dir)
    os.rename(tmp, night_dir)


def remove_partial_nights(nights_dir: Path) -> list[str]:
    """Delete temporary folders a crashed writer left behind; return their names."""
    removed = []
    if nights_dir.exists():
        for tmp in nights_dir.glob(f"{_TMP_PREFIX}*"):
            shutil.rmtree(tmp, ignore_errors=False)
            removed.append(tmp.name)
    return removed


class NightFiles:
    """Random access to one stored night without loading it.

    Epochs are read with ``os.pread`` from ``signals.npy``; consecutive indices are merged into
    one read. The file descriptor is opened lazily and closed with :meth:`close`.
    """

    def __init__(self, night_dir: Path) -> None:
        self._fd: int | None = None
        self._pid = os.getpid()
        self.path = Path(night_dir)
        self.meta: dict[str, Any] = json.loads((self.path / "meta.json").read_text("utf-8"))
        with open(self.path / "signals.npy", "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self._offset = f.tell()
        if fortran:
            raise ValueError(f"{self.path}/signals.npy is Fortran-ordered; rewrite the night")
        n_epochs, n_channels, n_samples = shape
        self.shape: tuple[int, int, int] = (int(n_epochs), int(n_channels), int(n_samples))
        self.dtype = np.dtype(dtype)
        self._epoch_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._labels: np.ndarray | None = None

    @property
    def n_epochs(self) -> int:
        return self.shape[0]

    @property
    def channels(self) -> list[str]:
        return list(self.meta["channels"])

    @property
    def labels(self) -> np.ndarray:
        """(E, n_tasks) int8 labels (columns: the store's ``label_names``); small, so loaded once."""
        if self._labels is None:
            self._labels = np.load(self.path / "labels.npy")
        return self._labels

    @property
    def events(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "events.csv")

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a loader worker opens its own descriptor
            self._fd = os.open(self.path / "signals.npy", os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for loader worker processes: the descriptor is reopened where it is used."""
        return {**self.__dict__, "_fd": None}

    def read_channel(self, epochs: np.ndarray | list[int], channel: int) -> np.ndarray:
        """One channel of ``epochs`` as float32 (N, T): one small ``pread`` per epoch, so a
        pretraining batch reads that channel only, not every channel of each epoch."""
        n_samples = self.shape[2]
        size = n_samples * self.dtype.itemsize
        out = np.empty((len(epochs), n_samples), dtype=np.float32)
        fd = self._file()
        for row, epoch in enumerate(epochs):
            if not 0 <= epoch < self.n_epochs:
                raise IndexError(f"{self.path}: epoch {epoch} is outside [0, {self.n_epochs})")
            offset = self._offset + int(epoch) * self._epoch_bytes + channel * size
            out[row] = np.frombuffer(os.pread(fd, size, offset), dtype=self.dtype)
        return out

    def runs(self, indices: np.ndarray | list[int]) -> list[tuple[int, int, np.ndarray]]:
        """Split ``indices`` into contiguous runs: ``(first epoch, count, output positions)``."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.n_epochs):
            raise IndexError(f"{self.path}: epoch indices must be in [0, {self.n_epochs}), "
                             f"got {indices.min()}..{indices.max()}")
        order = np.argsort(indices, kind="stable")
        sorted_idx = indices[order]
        breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
        bounds = zip(np.r_[0, breaks], np.r_[breaks, sorted_idx.size], strict=True)
        return [(int(sorted_idx[a]), int(b - a), order[a:b]) for a, b in bounds if b > a]

    def read_run(self, first: int, count: int) -> np.ndarray:
        """``count`` consecutive epochs from ``first`` in one ``pread``, as float32."""
        raw = os.pread(self._file(), count * self._epoch_bytes, self._offset + first * self._epoch_bytes)
        return np.frombuffer(raw, dtype=self.dtype).reshape(count, *self.shape[1:]).astype(np.float32)

    def read(self, indices: np.ndarray | list[int], executor: Executor | None = None) -> np.ndarray:
        """Epochs ``indices`` as float32, shape (len(indices), C, T), in the order given.

        With an ``executor`` (a thread pool), the contiguous runs are read concurrently: cold
        reads from disk overlap, which roughly doubles throughput on an SSD.
        """
        runs = self.runs(indices)
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.float32)
        blocks = (executor.map(lambda r: self.read_run(r[0], r[1]), runs) if executor
                  else (self.read_run(first, count) for first, count, _ in runs))
        for (_, _, positions), block in zip(runs, blocks, strict=True):
            out[positions] = block
        return out

    def read_window(self, start: int, length: int) -> np.ndarray:
        """``length`` consecutive epochs from ``start`` (one read), shape (length, C, T)."""
        return self.read(np.arange(start, start + length))

    def drop_cache(self) -> None:
        """Ask the kernel to forget this night's cached pages (for cold-cache benchmarks)."""
        for name in ("signals.npy", "labels.npy"):
            fd = os.open(self.path / name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        self.close()

"""The epoch store: a folder of prepared nights plus a manifest table of nights.

Layout::

    STORE/
      store.json        format version, preprocessing settings and their hash
      manifest.csv      one row per night: subject, cohort, channels, epochs, label counts, split
      splits.json       subject -> split (pretrain / train / val / test), when assigned
      nights/<id>/      one folder per night (see ``night_files``)

The manifest is derived from the nights' ``meta.json`` files and rewritten atomically, so it can
always be rebuilt from the nights themselves.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._atomic import atomic_write_text
from .._config import PreprocessingConfig, config_from_dict, config_hash, config_to_dict
from .._validation import StoreError
from ..tasks import STAGES, TASKS, UNSCORED, get_task, task_names
from .night_files import NightFiles

__all__ = ["STORE_FORMAT_VERSION", "EpochStore", "create_store", "rebuild_manifest"]

STORE_FORMAT_VERSION = 1
_MANIFEST = "manifest.csv"
_SPLITS = "splits.json"
#: Label columns of stores written before the task registry recorded them.
_LEGACY_LABELS = ("stage", "apnea", "hypopnea")


def create_store(path: str | Path, config: PreprocessingConfig) -> Path:
    """Create an empty store, or check that an existing one used the same preprocessing.

    Raises
    ------
    StoreError
        If ``path`` is a store prepared with other settings (mixing them would give the model
        inputs it was not trained on) or other label columns (tasks registered since).
    """
    path = Path(path)
    info_file = path / "store.json"
    if info_file.exists():
        info = json.loads(info_file.read_text("utf-8"))
        if info["preprocessing_hash"] != config_hash(config):
            raise StoreError(
                f"{path} was prepared with other preprocessing settings (hash "
                f"{info['preprocessing_hash']}, now {config_hash(config)}); use a new store folder")
        labels = tuple(info.get("labels", _LEGACY_LABELS))
        if labels != task_names():
            raise StoreError(f"{path} holds label columns {list(labels)}, but the task registry now has "
                             f"{list(task_names())}; prepare into a new store folder")
        return path
    (path / "nights").mkdir(parents=True, exist_ok=True)
    info = {"format_version": STORE_FORMAT_VERSION, "preprocessing": config_to_dict(config),
            "preprocessing_hash": config_hash(config), "labels": list(task_names())}
    atomic_write_text(info_file, json.dumps(info, indent=1))
    return path


def _manifest_row(night_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    labels = np.load(night_dir / "labels.npy")
    names = list(meta.get("labels", _LEGACY_LABELS))
    stages = labels[:, names.index("stage")]
    row: dict[str, Any] = {
        "night_id": night_dir.name,
        "subject": meta.get("subject", night_dir.name),
        "cohort": meta.get("cohort", ""),
        "source": meta.get("source", ""),
        "scoring": meta.get("scoring") or "",
        "n_epochs": int(labels.shape[0]),
        "channels": ";".join(meta["channels"]),
        "modalities": ";".join(dict.fromkeys(meta["modalities"])),
    }
    for code, name in enumerate(STAGES):
        row[f"n_{name}"] = int(np.sum(stages == code))
    row["n_unscored"] = int(np.sum(stages == UNSCORED))
    events = [n for n in names if n in TASKS and TASKS[n].is_event]
    for name in events:
        row[f"n_{name}"] = int(np.sum(labels[:, names.index(name)] == 1))
    row["respiratory_scored"] = bool(any(np.any(labels[:, names.index(n)] != UNSCORED) for n in events))
    return row


def rebuild_manifest(path: str | Path) -> pd.DataFrame:
    """Rewrite ``manifest.csv`` from the nights on disk (atomically) and return it."""
    path = Path(path)
    rows = []
    for night_dir in sorted((path / "nights").iterdir()) if (path / "nights").exists() else []:
        meta_file = night_dir / "meta.json"
        if night_dir.name.startswith(".") or not meta_file.exists():
            continue
        rows.append(_manifest_row(night_dir, json.loads(meta_file.read_text("utf-8"))))
    manifest = pd.DataFrame(rows)
    splits = _read_splits(path)
    if len(manifest):
        manifest["split"] = [splits.get(str(subject), "") for subject in manifest["subject"]]
    atomic_write_text(path / _MANIFEST, manifest.to_csv(index=False))
    return manifest


def _read_splits(path: Path) -> dict[str, str]:
    file = path / _SPLITS
    return json.loads(file.read_text("utf-8")) if file.exists() else {}


class EpochStore:
    """Read access to a prepared store: manifest, labels and random or contiguous epochs.

    Nothing is loaded up front beyond the manifest; epochs are read on demand with one ``pread``
    per contiguous run, so a cohort never has to fit in RAM.

    Parameters
    ----------
    path : str | Path
        The store folder made by :func:`synthsleepnet.prepare_store`.
    io_threads : int
        Threads that read runs of epochs concurrently.
    """

    def __init__(self, path: str | Path, *, io_threads: int = 8) -> None:
        self.path = Path(path)
        self.io_threads = io_threads
        self._executor: ThreadPoolExecutor | None = None
        info_file = self.path / "store.json"
        if not info_file.exists():
            raise FileNotFoundError(f"{self.path} is not an epoch store (no store.json); "
                                    "create one with `synthsleepnet prepare`")
        self.info: dict[str, Any] = json.loads(info_file.read_text("utf-8"))
        if self.info.get("format_version") != STORE_FORMAT_VERSION:
            raise StoreError(f"{self.path}: store format {self.info.get('format_version')} is not "
                             f"supported (expected {STORE_FORMAT_VERSION})")
        manifest_file = self.path / _MANIFEST
        self.manifest: pd.DataFrame = (pd.read_csv(manifest_file, dtype={"subject": str, "split": str},
                                                   keep_default_na=False)
                                       if manifest_file.exists() else rebuild_manifest(self.path))
        self._nights: dict[str, NightFiles] = {}
        self._ids: list[str] = [str(n) for n in self.manifest["night_id"]] if len(self.manifest) else []
        self._counts = (self.manifest["n_epochs"].to_numpy(dtype=np.int64) if len(self.manifest)
                        else np.zeros(0, dtype=np.int64))

    @property
    def config(self) -> PreprocessingConfig:
        """The preprocessing settings every night in the store was prepared with."""
        return config_from_dict(PreprocessingConfig, self.info["preprocessing"])

    @property
    def night_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def preprocessing_hash(self) -> str:
        """The hash of the preprocessing every night was prepared with."""
        return str(self.info["preprocessing_hash"])

    @property
    def label_names(self) -> tuple[str, ...]:
        """The task of each label column, in order."""
        return tuple(self.info.get("labels", _LEGACY_LABELS))

    def label_column(self, task: str) -> int:
        """The label column of ``task``; refused when the store was prepared without it."""
        get_task(task)
        if task not in self.label_names:
            raise StoreError(f"{self.path} has no labels for task {task!r} (its columns: "
                             f"{list(self.label_names)}); prepare the store again to add them")
        return self.label_names.index(task)

    def __len__(self) -> int:
        return len(self.manifest)

    def __iter__(self) -> Iterator[str]:
        return iter(self.night_ids)

    def night(self, night_id: str) -> NightFiles:
        """Open (once) and return one night's files."""
        if night_id not in self._nights:
            night_dir = self.path / "nights" / night_id
            if not night_dir.exists():
                raise StoreError(f"{self.path}: no night {night_id!r}; nights: {self.night_ids[:10]}...")
            self._nights[night_id] = NightFiles(night_dir)
        return self._nights[night_id]

    def channel_index(self, night_id: str, channels: list[str]) -> list[int]:
        """Positions of ``channels`` in a night; raises StoreError naming what is missing."""
        have = self.night(night_id).channels
        missing = [c for c in channels if c not in have]
        if missing:
            raise StoreError(f"night {night_id!r} lacks channel(s) {missing}; it has {have}")
        return [have.index(c) for c in channels]

    def random_epochs(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
        """``n`` epochs drawn uniformly over all epochs of the store, with their labels.

        Reads go through a small thread pool so cold reads from disk overlap. All nights must
        have the same channels; training picks channels per night with ``channel_index``.
        """
        counts = self._counts
        flat = np.sort(rng.choice(int(counts.sum()), size=n, replace=False))
        bounds = np.cumsum(counts)
        which = np.searchsorted(bounds, flat, side="right")
        local = flat - (bounds - counts)[which]
        keys = [(self._ids[w], int(i)) for w, i in zip(which, local, strict=True)]
        # one task per contiguous run, across all nights at once, so cold reads overlap
        tasks = []
        for pos in np.unique(which):
            night = self.night(self._ids[pos])
            rows = np.flatnonzero(which == pos)
            tasks += [(night, first, count, rows[positions])
                      for first, count, positions in night.runs(local[rows])]
        blocks = self._pool().map(lambda t: t[0].read_run(t[1], t[2]), tasks)
        x = np.empty((n, *self.night(keys[0][0]).shape[1:]), dtype=np.float32)
        for (_, _, _, rows), block in zip(tasks, blocks, strict=True):
            x[rows] = block
        y = np.stack([self.night(night_id).labels[i] for night_id, i in keys])
        return x, y, keys

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for loader worker processes (without the thread pool, rebuilt on use)."""
        return {**self.__dict__, "_executor": None}

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.io_threads, thread_name_prefix="store-io")
        return self._executor

    def drop_cache(self) -> None:
        """Evict every night's pages from the OS cache (for cold-cache measurements)."""
        for night_id in self.night_ids:
            self.night(night_id).drop_cache()

    def close(self) -> None:
        for night in self._nights.values():
            night.close()
        self._nights.clear()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def summary(self) -> dict[str, Any]:
        """Nights, epochs, channels per modality, label counts per class and splits."""
        m = self.manifest
        if not len(m):
            return {"path": str(self.path), "nights": 0, "epochs": 0}
        def nights_with(column: str) -> dict[str, int]:
            return dict(Counter(x for value in m[column] for x in str(value).split(";")))

        stage_counts = {name: int(m[f"n_{name}"].sum()) for name in STAGES}
        stage_counts["unscored"] = int(m["n_unscored"].sum())
        events = {f"{name}_epochs": int(m[f"n_{name}"].sum()) for name in self.label_names
                  if f"n_{name}" in m and name != "stage"}
        return {
            "path": str(self.path),
            "nights": int(len(m)),
            "subjects": int(m["subject"].nunique()),
            "epochs": int(m["n_epochs"].sum()),
            "hours": round(float(m["n_epochs"].sum()) * self.config.epoch_s / 3600, 2),
            "nights_per_channel": nights_with("channels"),
            "nights_per_modality": nights_with("modalities"),
            "stages": stage_counts,
            **events,
            "splits": {str(k) or "unassigned": int(v) for k, v in m["split"].value_counts().items()},
            "preprocessing_hash": self.info["preprocessing_hash"],
        }

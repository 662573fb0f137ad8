"""Subject-level splits and label-fraction sampling: deterministic, disjoint, saved.

Splits are drawn from the sorted subject IDs with a seeded permutation, never by epoch, and
written to the store (``splits.json`` and the manifest's ``split`` column) so every later step
uses the same subjects. Model selection uses the ``val`` subjects only; ``test`` subjects are
touched once, by ``evaluate``.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from .._config import Split
from .._validation import check_fraction, check_option
from ..store.epoch_store import EpochStore, rebuild_manifest

__all__ = ["DEFAULT_FRACTIONS", "SPLITS", "assign_splits", "sample_labelled_epochs", "split_hash", "split_nights"]

SPLITS: tuple[str, ...] = typing.get_args(Split)
DEFAULT_FRACTIONS: dict[str, float] = {"pretrain": 0.6, "train": 0.2, "val": 0.1, "test": 0.1}


def assign_splits(store: str | Path, *, fractions: Mapping[str, float] | None = None, seed: int = 0,
                  overwrite: bool = False) -> dict[str, str]:
    """Assign every subject of a store to one split and save it; returns subject → split.

    Existing splits are kept unless ``overwrite``: the same store always trains and evaluates
    on the same subjects. With at least four subjects, train, val and test get one or more each.
    """
    path = Path(store)
    file = path / "splits.json"
    if file.exists() and not overwrite:
        return dict(json.loads(file.read_text("utf-8")))
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown or abs(sum(fractions.values()) - 1) > 1e-6 or min(fractions.values()) < 0:
        raise ValueError(f"split fractions must be non-negative, sum to 1 and use {list(SPLITS)}; got {fractions}")
    subjects = sorted({str(s) for s in EpochStore(path).manifest["subject"]})
    if not subjects:
        raise ValueError(f"{path}: the store has no nights to split")
    counts = {name: int(np.floor(fractions.get(name, 0) * len(subjects))) for name in SPLITS}
    for name in ("test", "val", "train"):
        if fractions.get(name, 0) > 0 and counts[name] == 0 and len(subjects) >= 4:
            counts[name] = 1
    counts["pretrain"] = len(subjects) - sum(counts[n] for n in ("train", "val", "test"))
    if counts["pretrain"] < 0:
        raise ValueError(f"{len(subjects)} subjects are too few for the requested splits {fractions}")
    order = np.random.default_rng(seed).permutation(len(subjects))
    assignment: dict[str, str] = {}
    start = 0
    for name in SPLITS:
        for i in order[start:start + counts[name]]:
            assignment[subjects[i]] = name
        start += counts[name]
    atomic_write_text(file, json.dumps(assignment, indent=1, sort_keys=True))
    rebuild_manifest(path)
    return assignment


def split_nights(store: EpochStore, split: str | tuple[str, ...]) -> list[str]:
    """Night IDs (sorted) whose subject belongs to ``split`` (one name or several)."""
    wanted = (split,) if isinstance(split, str) else split
    for name in wanted:
        check_option("split", name, SPLITS)
    m = store.manifest
    if "split" not in m or not (m["split"] != "").any():
        raise ValueError(f"{store.path}: no splits assigned yet; run assign_splits (the training "
                         "commands do it) first")
    return sorted(str(n) for n in m.loc[m["split"].isin(wanted), "night_id"])


def sample_labelled_epochs(store: EpochStore, nights: list[str], fraction: float, *, task: str,
                           seed: int) -> dict[str, np.ndarray]:
    """A seeded sample, without replacement, of ``fraction`` of the labelled epochs of ``nights``.

    The fraction counts epochs (pooled over the nights), among epochs whose label for ``task``
    is known (≠ -1). At least one epoch is kept.
    """
    check_fraction("label fraction", fraction)
    column = store.label_column(task)
    pool = [(n, i) for n in nights for i in np.flatnonzero(store.night(n).labels[:, column] >= 0)]
    if not pool:
        raise ValueError(f"no labelled epochs for this task in nights {nights[:5]}...")
    k = max(int(round(fraction * len(pool))), 1)
    chosen = np.sort(np.random.default_rng(seed).choice(len(pool), size=k, replace=False))
    out: dict[str, list[int]] = {}
    for idx in chosen:
        night, epoch = pool[idx]
        out.setdefault(night, []).append(int(epoch))
    return {n: np.asarray(v) for n, v in out.items()}


def split_hash(store: EpochStore) -> str:
    """Short SHA-256 of the store's ``splits.json``: which subjects were in which split."""
    file = store.path / "splits.json"
    return hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file.exists() else ""

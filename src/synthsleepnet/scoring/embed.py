"""Per-epoch fused embeddings of a recording or a whole store, for users' own models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._atomic import atomic_path
from .._device import Runtime, resolve_runtime
from .._logging import verbose
from .._validation import check_finite_output, check_fname
from ..models.checkpoint import check_compatible, load_encoder
from ..models.synthsleepnet import SynthSleepNet
from ..preprocessing.pipeline import prepare_recording
from ..store.epoch_store import EpochStore

__all__ = ["embed_epochs", "write_embeddings"]


def _embed(model: SynthSleepNet, inputs: Mapping[str, np.ndarray], runtime: Runtime, source: str,
           batch: int = 64) -> np.ndarray:
    use = {c: torch.as_tensor(x) for c, x in inputs.items() if c in model.channels}
    if not use:
        raise ValueError(f"none of the model's channels {model.channels} is present")
    n = next(iter(use.values())).shape[0]
    out = []
    with torch.inference_mode(), runtime.autocast():
        for i in range(0, n, batch):
            chunk = {c: x[i:i + batch].to(runtime.device) for c, x in use.items()}
            out.append(model.embed(chunk).float().cpu())
    return check_finite_output(torch.cat(out).numpy(), source, what="embeddings")


@verbose
def embed_epochs(source: str | Path, checkpoint: str | Path, *, device: str = "auto", precision: str = "auto",
                 verbose: bool | str | int | None = None) -> pd.DataFrame:
    """Fused embeddings (mean of the fusion tokens, no masking) of every epoch.

    ``source`` is a recording (prepared with the checkpoint's settings) or an epoch store (which
    must have been prepared with them). Returns one row per epoch: ``night``, ``epoch``,
    ``onset_s``, then ``emb_0 … emb_{d-1}``. A model whose embeddings are not finite is refused.
    """
    runtime = resolve_runtime(device, precision)
    model, meta = load_encoder(checkpoint, device=runtime.device)
    model.eval()
    source = Path(source)
    frames = []
    if (source / "store.json").exists():
        store = EpochStore(source)
        check_compatible(meta, preprocessing_hash=store.preprocessing_hash, source=str(checkpoint))
        epoch_s = store.config.epoch_s
        for night in store.night_ids:
            nf = store.night(night)
            x = nf.read(np.arange(nf.n_epochs))
            inputs = {c: x[:, i] for i, c in enumerate(nf.channels)}
            frames.append((night, _embed(model, inputs, runtime, str(checkpoint))))
    else:
        if meta.preprocessing is None:
            raise ValueError(f"{checkpoint} does not record the preprocessing of its training data")
        prepared = prepare_recording(source, config=meta.preprocessing)
        epoch_s = meta.preprocessing.epoch_s
        inputs = {c: prepared.signals[:, i] for i, c in enumerate(prepared.channels)}
        frames.append((source.stem, _embed(model, inputs, runtime, str(checkpoint))))
    tables = []
    for night_id, emb in frames:
        table = pd.DataFrame(emb, columns=[f"emb_{i}" for i in range(emb.shape[1])])
        table.insert(0, "onset_s", np.arange(len(emb)) * epoch_s)
        table.insert(0, "epoch", np.arange(len(emb)))
        table.insert(0, "night", night_id)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def write_embeddings(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write embeddings to Parquet (atomically; refuses to replace a file unless ``overwrite``)."""
    path = check_fname(path, overwrite=overwrite, what="embeddings file")
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path

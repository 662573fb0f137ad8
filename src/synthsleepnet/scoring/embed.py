"""Per-epoch fused embeddings of a recording or a whole store, for users' own models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._atomic import atomic_path
from .._config import PreprocessingConfig, config_from_dict
from .._logging import verbose
from ..models.checkpoint import check_compatible, load_checkpoint
from ..models.classifier import SleepClassifier
from ..preprocessing.pipeline import prepare_recording
from ..store.epoch_store import EpochStore

__all__ = ["embed_epochs", "write_embeddings"]


def _fusion(checkpoint: str | Path) -> tuple[torch.nn.Module, dict[str, object]]:
    model, meta = load_checkpoint(checkpoint)
    if isinstance(model, SleepClassifier):
        model = model.fusion
    if not hasattr(model, "embed") or not hasattr(model, "channels"):
        raise ValueError(f"{checkpoint} holds no SynthSleepNet fusion model (a {meta.get('stage')!r} checkpoint)")
    return model.eval(), meta


def _embed(model: torch.nn.Module, inputs: dict[str, np.ndarray], batch: int = 64) -> np.ndarray:
    use = {c: torch.as_tensor(x) for c, x in inputs.items() if c in model.channels}  # type: ignore[operator]
    if not use:
        raise ValueError(f"none of the model's channels {model.channels} is present")
    n = next(iter(use.values())).shape[0]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=torch.backends.mkldnn.is_available()):
        out = [model.embed({c: x[i:i + batch] for c, x in use.items()}).float() for i in range(0, n, batch)]  # type: ignore[operator]
    return torch.cat(out).numpy()


@verbose
def embed_epochs(source: str | Path, checkpoint: str | Path, *, verbose: bool | str | int | None = None) -> pd.DataFrame:
    """Fused embeddings (mean of the fusion tokens, no masking) of every epoch.

    ``source`` is a recording (prepared with the checkpoint's settings) or an epoch store (which
    must have been prepared with them). Returns one row per epoch: ``night``, ``epoch``,
    ``onset_s``, then ``emb_0 … emb_{d-1}``.
    """
    model, meta = _fusion(checkpoint)
    source = Path(source)
    frames = []
    if (source / "store.json").exists():
        store = EpochStore(source)
        check_compatible(meta, preprocessing_hash=store.info["preprocessing_hash"], source=str(checkpoint))
        epoch_s = store.config.epoch_s
        for night in store.night_ids:
            nf = store.night(night)
            x = nf.read(np.arange(nf.n_epochs))
            frames.append((night, _embed(model, {c: x[:, i] for i, c in enumerate(nf.channels)})))
    else:
        config = config_from_dict(PreprocessingConfig, meta["preprocessing"])  # type: ignore[arg-type]
        night = prepare_recording(source, config=config)
        epoch_s = config.epoch_s
        frames.append((source.stem, _embed(model, {c: night.signals[:, i] for i, c in enumerate(night.channels)})))
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
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path

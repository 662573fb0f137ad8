"""One versioned checkpoint format: weights in safetensors, everything else as JSON metadata.

Loading never unpickles anything. A checkpoint carries the model config, its channels and the
preprocessing settings it was trained on, the seed, the split and data identity, and the
package version; :func:`check_compatible` refuses data prepared differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from .._atomic import atomic_path
from .registry import build_model, get_config

__all__ = ["CHECKPOINT_FORMAT_VERSION", "check_compatible", "load_checkpoint", "read_checkpoint_metadata",
           "save_checkpoint"]

CHECKPOINT_FORMAT_VERSION = 1
#: Old key → new key renames, applied when loading older checkpoints.
KEY_RENAMES: dict[str, str] = {}


def save_checkpoint(path: str | Path, model: nn.Module, **metadata: Any) -> Path:
    """Write ``model`` and JSON-serialisable ``metadata`` to ``path`` atomically."""
    from .. import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format_version": str(CHECKPOINT_FORMAT_VERSION), "package_version": __version__,
              "model": json.dumps(get_config(model)), "metadata": json.dumps(metadata, default=str)}
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header)
    return path


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """The model config and metadata of a checkpoint, without loading its weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for foreign files
        raise ValueError(f"{path} is not a SynthSleepNet checkpoint (safetensors): {err}") from err
    if header.get("format_version") != str(CHECKPOINT_FORMAT_VERSION):
        raise ValueError(f"{path}: checkpoint format {header.get('format_version')!r} is not supported "
                         f"(expected {CHECKPOINT_FORMAT_VERSION})")
    return {"model": json.loads(header["model"]), "package_version": header.get("package_version"),
            **json.loads(header.get("metadata", "{}"))}


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from its config and load its weights with ``strict=True``."""
    meta = read_checkpoint_metadata(path)
    model = build_model(meta["model"]["name"], **meta["model"]["kwargs"])
    state = {KEY_RENAMES.get(k, k): v for k, v in load_file(str(path), device=map_location).items()}
    model.load_state_dict(state, strict=True)
    return model, meta


def check_compatible(meta: dict[str, Any], *, preprocessing_hash: str | None = None,
                     channels: list[str] | None = None, source: str = "checkpoint") -> None:
    """Refuse data whose preprocessing or channels differ from what the model was trained on."""
    want = meta.get("preprocessing_hash")
    if preprocessing_hash is not None and want is not None and want != preprocessing_hash:
        raise ValueError(f"{source} was trained on data prepared with preprocessing {want}, but this "
                         f"data used {preprocessing_hash}; prepare it with the checkpoint's settings "
                         f"({meta.get('preprocessing')})")
    trained = meta.get("channels")
    if channels is not None and trained is not None:
        missing = [c for c in channels if c not in trained]
        if missing:
            raise ValueError(f"{source} has no encoder for channel(s) {missing}; it knows {trained}")

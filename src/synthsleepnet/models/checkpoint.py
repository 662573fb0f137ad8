"""One versioned checkpoint format: weights in safetensors, a typed :class:`CheckpointMeta` header.

Loading never unpickles anything, and trusts nothing in the file:

1. the safetensors header is read with bounded sizes (:mod:`~synthsleepnet.models.meta`, no torch) (a header larger than 16 MiB, offsets past
   the end of the file, or JSON nested beyond Python's limits are refused, naming the file);
2. the metadata is parsed into :class:`CheckpointMeta`, whose every field is type- and
   range-checked (:func:`~synthsleepnet._config.config_from_dict`), so no number from the file
   reaches a constructor unchecked;
3. the model is first built on the ``meta`` device (no memory) and its tensor names, shapes and
   dtypes compared with the file's; only then is it built for real;
4. the weights' SHA-256, recorded when saving, is checked: flipped bytes are refused;
5. ``load_state_dict(strict=True)``; renames go through :data:`KEY_RENAMES`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .._atomic import atomic_path
from .._config import ModelSpec, config_to_dict
from .._validation import CheckpointError, check_path_exists
from .classifier import SleepClassifier
from .meta import (
    CHECKPOINT_FORMAT_VERSION,
    META_KEY,
    CheckpointMeta,
    DataIdentity,
    read_checkpoint_header,
    read_checkpoint_meta,
)
from .neuronet import NeuroNet
from .registry import build_model
from .synthsleepnet import SynthSleepNet

__all__ = ["CHECKPOINT_FORMAT_VERSION", "KEY_RENAMES", "CheckpointMeta", "DataIdentity", "check_compatible",
           "load_checkpoint", "load_classifier", "load_encoder", "load_neuronet", "read_checkpoint_meta",
           "save_checkpoint", "tensor_digest"]

#: Old state-dict key → new key, applied when loading older checkpoints.
KEY_RENAMES: dict[str, str] = {}
M = TypeVar("M", bound=nn.Module)


def tensor_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta) -> Path:
    """Write ``model`` (weights moved to the CPU) and ``meta`` to ``path`` atomically."""
    from .._version import __version__

    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = dataclasses.replace(meta, tensor_sha256=tensor_digest(state), package_version=__version__,
                               format_version=CHECKPOINT_FORMAT_VERSION)
    header = {"format_version": str(CHECKPOINT_FORMAT_VERSION), META_KEY: json.dumps(meta.to_dict())}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header)
    return path


def _check_layout(path: Path, spec: ModelSpec, tensors: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Build the model on the ``meta`` device (no memory) and compare tensors with the file's."""
    try:
        with torch.device("meta"):
            skeleton = build_model(spec)
    except (ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its model settings cannot build a model ({err})") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {KEY_RENAMES.get(k, k): shape for k, (shape, _) in tensors.items()}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {keys[:3]}{' …' if len(keys) > 3 else ''}" for label, keys in
                           (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise CheckpointError(f"{path}: its weights do not match the model its metadata describes ({detail})")


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu",
                    architectures: tuple[str, ...] | None = None) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the model from its metadata, verify the weights and load them with ``strict=True``.

    Parameters
    ----------
    path : str | Path
        The ``.safetensors`` checkpoint.
    device : str | torch.device
        Where the model goes (weights are read on the CPU first, so any checkpoint loads on any
        device).
    architectures : tuple of str | None
        Architectures the caller accepts; another one is refused, naming what the file holds.
    """
    path = check_path_exists(path, "checkpoint")
    meta = read_checkpoint_meta(path)
    if architectures is not None and meta.spec.architecture not in architectures:
        raise CheckpointError(f"{path} is a {meta.phase} checkpoint holding a {meta.spec.architecture} model; "
                              f"this needs a {' or '.join(architectures)} model")
    tensors, _ = read_checkpoint_header(path)
    _check_layout(path, meta.spec, tensors)
    try:
        state = {KEY_RENAMES.get(k, k): v for k, v in load_file(str(path), device="cpu").items()}
    except Exception as err:  # safetensors raises its own error types for damaged data
        raise CheckpointError(f"{path}: the weights cannot be read ({type(err).__name__}: {err})") from None
    if tensor_digest(state) != meta.tensor_sha256:
        raise CheckpointError(f"{path}: the weights do not match the SHA-256 recorded when the checkpoint was "
                              "saved; the file is damaged (flipped or altered bytes) and will not be used")
    model = build_model(meta.spec)
    model.load_state_dict(state, strict=True)
    return model.to(device), meta


def _typed(path: str | Path, kind: type[M], architecture: str, device: str | torch.device
           ) -> tuple[M, CheckpointMeta]:
    model, meta = load_checkpoint(path, device=device, architectures=(architecture,))
    if not isinstance(model, kind):  # the registry maps the architecture to this class
        raise CheckpointError(f"{path}: expected a {kind.__name__}, got {type(model).__name__}")
    return model, meta


def load_neuronet(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[NeuroNet, CheckpointMeta]:
    """A unimodal NeuroNet (``pretrain unimodal`` checkpoint) and its metadata."""
    return _typed(path, NeuroNet, "neuronet", device)


def load_classifier(path: str | Path, *, device: str | torch.device = "cpu"
                    ) -> tuple[SleepClassifier, CheckpointMeta]:
    """A probe or fine-tune :class:`SleepClassifier` and its metadata."""
    return _typed(path, SleepClassifier, "sleep_classifier", device)


def load_encoder(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[SynthSleepNet, CheckpointMeta]:
    """The SynthSleepNet fusion encoder of a multimodal, probe or fine-tune checkpoint."""
    model, meta = load_checkpoint(path, device=device, architectures=("synthsleepnet", "sleep_classifier"))
    fusion = model.fusion if isinstance(model, SleepClassifier) else model
    if not isinstance(fusion, SynthSleepNet):
        raise CheckpointError(f"{path}: holds no SynthSleepNet fusion model")
    return fusion, meta


def check_compatible(meta: CheckpointMeta, *, preprocessing_hash: str | None = None,
                     channels: list[str] | None = None, source: str = "checkpoint") -> None:
    """Refuse data whose preprocessing or channels differ from what the model was trained on."""
    want = meta.preprocessing_hash
    if preprocessing_hash is not None and want is not None and want != preprocessing_hash:
        raise CheckpointError(f"{source} was trained on data prepared with preprocessing {want}, but this "
                              f"data used {preprocessing_hash}; prepare it with the checkpoint's settings "
                              f"({config_to_dict(meta.preprocessing) if meta.preprocessing else {}})")
    if channels is not None:
        missing = [c for c in channels if c not in meta.channels]
        if missing:
            raise CheckpointError(f"{source} has no encoder for channel(s) {missing}; it knows {meta.channels}")

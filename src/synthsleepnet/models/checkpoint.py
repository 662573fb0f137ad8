"""One versioned checkpoint format: weights in safetensors, a typed :class:`CheckpointMeta` header.

Loading never unpickles anything, and trusts nothing in the file:

1. the safetensors header is read with bounded sizes (a header larger than 16 MiB, offsets past
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
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .._atomic import atomic_path
from .._config import (
    EventDecoding,
    Phase,
    PreprocessingConfig,
    TrainConfig,
    config_from_dict,
    config_hash,
    config_to_dict,
)
from .._validation import CheckpointError, ConfigError, check_path_exists
from ..tasks import TASKS
from .classifier import SleepClassifier
from .neuronet import NeuroNet
from .registry import ModelSpec, build_model
from .synthsleepnet import SynthSleepNet

__all__ = ["CHECKPOINT_FORMAT_VERSION", "KEY_RENAMES", "CheckpointMeta", "DataIdentity", "check_compatible",
           "load_checkpoint", "load_classifier", "load_encoder", "load_neuronet", "read_checkpoint_meta",
           "save_checkpoint", "tensor_digest"]

CHECKPOINT_FORMAT_VERSION = 2
#: Old state-dict key → new key, applied when loading older checkpoints.
KEY_RENAMES: dict[str, str] = {}
_META_KEY = "synthsleepnet"
_MAX_HEADER_BYTES = 16 * 1024 * 1024
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}
_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "pretrain_unimodal": ("neuronet",),
    "pretrain_multimodal": ("synthsleepnet",),
    "probe": ("sleep_classifier", "epoch_head"),
    "finetune": ("sleep_classifier", "epoch_head"),
}
M = TypeVar("M", bound=nn.Module)


@dataclasses.dataclass(frozen=True)
class DataIdentity:
    """Which data trained a model: the store, its nights and subjects, and the split file's hash."""

    store: str
    nights: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    val_nights: tuple[str, ...] = ()
    split_hash: str = ""


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """Everything a checkpoint says about its model, besides the weights.

    Attributes
    ----------
    phase : str
        ``pretrain_unimodal``, ``pretrain_multimodal``, ``probe`` or ``finetune``.
    spec : ModelSpec
        Architecture, sizes, channels, outputs and adapters: what rebuilds the model.
    task : str | None
        The task of a probe or fine-tune checkpoint (a name in the task registry).
    modality : str | None
        The modality a unimodal NeuroNet was pretrained on.
    preprocessing : PreprocessingConfig | None
        How its training data were prepared; scoring prepares recordings the same way.
    train : TrainConfig | None
        The resolved training settings.
    seed : int | None
        The run's seed.
    data : DataIdentity | None
        Store, nights, subjects and split hash of the training data.
    parents : dict
        Checkpoints this one started from, ``role → (path, sha256)`` (``fusion``, ``eeg`` …).
    label_fraction, n_labelled_epochs : float | None, int | None
        The labelled share used by probing or fine-tuning (epochs).
    epoch, selection_metric, selection_score
        The training epoch saved and, with validation, the metric and score that selected it.
    decoding : EventDecoding | None
        For a per-second ``events`` model: the event decoding chosen on its validation nights.
    package_version, format_version, tensor_sha256
        Written by :func:`save_checkpoint`; the digest is verified on every load.
    """

    phase: Phase
    spec: ModelSpec
    task: str | None = None
    modality: str | None = None
    preprocessing: PreprocessingConfig | None = None
    train: TrainConfig | None = None
    seed: int | None = None
    data: DataIdentity | None = None
    parents: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    label_fraction: float | None = None
    n_labelled_epochs: int | None = None
    epoch: int | None = None
    selection_metric: str | None = None
    selection_score: float | None = None
    decoding: EventDecoding | None = None
    package_version: str = ""
    format_version: int = CHECKPOINT_FORMAT_VERSION
    tensor_sha256: str = ""

    def __post_init__(self) -> None:
        allowed = _ARCHITECTURES[self.phase]
        if self.spec.architecture not in allowed:
            raise ValueError(f"a {self.phase} checkpoint holds a {' or '.join(allowed)} model, "
                             f"not {self.spec.architecture!r}")
        if self.phase in ("probe", "finetune"):
            if self.task not in TASKS:
                raise ValueError(f"task must be one of {list(TASKS)} for a {self.phase} checkpoint, got {self.task!r}")
            if self.spec.architecture == "sleep_classifier" and self.spec.n_outputs != TASKS[self.task].n_classes:
                raise ValueError(f"task {self.task!r} has {TASKS[self.task].n_classes} classes but the model "
                                 f"{self.spec.n_outputs} outputs")
            if self.spec.architecture == "sleep_classifier" and self.spec.resolution_s != TASKS[self.task].resolution_s:
                raise ValueError(f"task {self.task!r} predicts every {TASKS[self.task].resolution_s} s but the "
                                 f"model every {self.spec.resolution_s} s")
        if self.decoding is not None and not (self.task in TASKS and TASKS[self.task].per_second):
            raise ValueError(f"only a per-second events model has an event decoding, not a {self.task!r} model")
        if self.preprocessing is not None:
            self.spec.config.check_preprocessing(self.preprocessing)

    @property
    def preprocessing_hash(self) -> str | None:
        return None if self.preprocessing is None else config_hash(self.preprocessing)

    @property
    def preset(self) -> str:
        return self.spec.config.preset

    @property
    def channels(self) -> list[str]:
        return list(self.spec.channels)

    @property
    def pretrained(self) -> bool:
        """Whether a classifier started from a pretrained fusion checkpoint (not the scratch baseline)."""
        return "fusion" in self.parents

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "checkpoint") -> CheckpointMeta:
        """Parse and check a metadata dict; errors name ``source`` and the field."""
        return config_from_dict(cls, data, source=source)


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
    header = {"format_version": str(CHECKPOINT_FORMAT_VERSION), _META_KEY: json.dumps(meta.to_dict())}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header)
    return path


def _loads(text: bytes | str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        kind = "nested too deeply" if isinstance(err, RecursionError) else f"not valid JSON ({err})"
        raise CheckpointError(f"{path}: its {what} is {kind}; the file is damaged or not a checkpoint") from None


def _read_header(path: Path) -> tuple[dict[str, tuple[tuple[int, ...], str]], dict[str, str]]:
    """Tensor shapes and dtypes, and the string metadata, from a safetensors header (bounded)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 2 <= n <= min(_MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path} is not a SynthSleepNet checkpoint (safetensors): header length "
                                  f"{n} does not fit a file of {size} bytes")
        header = _loads(f.read(n), path, "header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header is a {type(header).__name__}, not a table")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: the header's __metadata__ must map names to strings")
    tensors: dict[str, tuple[tuple[int, ...], str]] = {}
    data_bytes = size - 8 - n
    for name, info in header.items():
        try:
            shape = tuple(int(d) for d in info["shape"])
            dtype = str(info["dtype"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry ({err})") from None
        numel = 1
        for d in shape:
            numel *= d
        item = _DTYPES[dtype].itemsize if dtype in _DTYPES else -1
        if item < 0 or min(shape, default=0) < 0 or not 0 <= begin <= end <= data_bytes or end - begin != numel * item:
            raise CheckpointError(f"{path}: tensor {name!r} ({dtype} {list(shape)}) does not fit the file's data "
                                  f"(offsets {begin}..{end} of {data_bytes} bytes); the file is damaged")
        tensors[name] = (shape, dtype)
    return tensors, metadata


def read_checkpoint_meta(path: str | Path) -> CheckpointMeta:
    """The typed metadata of a checkpoint, without loading its weights.

    Raises
    ------
    CheckpointError
        Naming the file and, for an invalid field, the field: not a checkpoint, another format
        version, damaged or implausible metadata.
    """
    path = check_path_exists(path, "checkpoint")
    _, metadata = _read_header(path)
    version = metadata.get("format_version")
    if version != str(CHECKPOINT_FORMAT_VERSION):
        raise CheckpointError(f"{path}: checkpoint format {version!r} is not supported (this version reads "
                              f"{CHECKPOINT_FORMAT_VERSION}); was it written by another SynthSleepNet version?")
    if _META_KEY not in metadata:
        raise CheckpointError(f"{path}: the header holds no SynthSleepNet metadata")
    data = _loads(metadata[_META_KEY], path, "metadata")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: its metadata is a {type(data).__name__}, not a table")
    try:
        return CheckpointMeta.from_dict(data, source=str(path))
    except ConfigError as err:
        raise CheckpointError(f"invalid checkpoint metadata: {err}") from None


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
    tensors, _ = _read_header(path)
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

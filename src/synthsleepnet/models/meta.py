"""The checkpoint schema, :class:`CheckpointMeta`, and the safetensors header it travels in.

Reading them needs no torch: a worker can learn how to prepare a recording for a model (its
preprocessing and channels) while another process imports torch to load the weights.
See :mod:`~synthsleepnet.models.checkpoint` for the checks made when loading.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._config import (
    EventDecoding,
    ModelSpec,
    Phase,
    PreprocessingConfig,
    TrainConfig,
    config_from_dict,
    config_hash,
    config_to_dict,
)
from .._validation import CheckpointError, ConfigError, check_path_exists
from ..tasks import TASKS

__all__ = ["CHECKPOINT_FORMAT_VERSION", "CheckpointMeta", "DataIdentity", "read_checkpoint_header",
           "read_checkpoint_meta"]

CHECKPOINT_FORMAT_VERSION = 2
META_KEY = "synthsleepnet"
_MAX_HEADER_BYTES = 16 * 1024 * 1024
#: Bytes per element of each safetensors dtype.
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "pretrain_unimodal": ("neuronet",),
    "pretrain_multimodal": ("synthsleepnet",),
    "probe": ("sleep_classifier", "epoch_head"),
    "finetune": ("sleep_classifier", "epoch_head"),
}


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


def _loads(text: bytes | str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        kind = "nested too deeply" if isinstance(err, RecursionError) else f"not valid JSON ({err})"
        raise CheckpointError(f"{path}: its {what} is {kind}; the file is damaged or not a checkpoint") from None


def read_checkpoint_header(path: Path) -> tuple[dict[str, tuple[tuple[int, ...], str]], dict[str, str]]:
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
        item = _ITEMSIZE.get(dtype, -1)
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
    _, metadata = read_checkpoint_header(path)
    version = metadata.get("format_version")
    if version != str(CHECKPOINT_FORMAT_VERSION):
        raise CheckpointError(f"{path}: checkpoint format {version!r} is not supported (this version reads "
                              f"{CHECKPOINT_FORMAT_VERSION}); was it written by another SynthSleepNet version?")
    if META_KEY not in metadata:
        raise CheckpointError(f"{path}: the header holds no SynthSleepNet metadata")
    data = _loads(metadata[META_KEY], path, "metadata")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: its metadata is a {type(data).__name__}, not a table")
    try:
        return CheckpointMeta.from_dict(data, source=str(path))
    except ConfigError as err:
        raise CheckpointError(f"invalid checkpoint metadata: {err}") from None

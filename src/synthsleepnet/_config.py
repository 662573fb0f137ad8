"""Typed configuration: the single source of defaults, one dataclass per concern.

- :class:`PreprocessingConfig`: how a signal becomes model inputs (hashed into every night);
- :class:`ModelConfig` (with its parts) and the named :data:`PRESETS`: the architecture;
- :class:`AdaptConfig`: what probing and fine-tuning add on top of a pretrained model;
- :class:`TrainConfig` and :data:`PHASE_DEFAULTS`: optimisation, device and precision;
- :class:`SimulationConfig`: the simulator's native rates and artefact rates.

Every config round-trips through plain dicts (and so JSON/TOML files and checkpoint headers)
with :func:`config_to_dict` and :func:`config_from_dict`, which checks every field's type and
refuses unknown keys with a message naming the field. Values are checked in ``__post_init__``
with bounds, so a number read from a file can never make a model allocate without limit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from ._validation import ConfigError, check_fraction, check_int, check_option, check_positive

__all__ = [
    "PHASE_DEFAULTS",
    "PRESETS",
    "AdaptConfig",
    "Architecture",
    "BackboneConfig",
    "Context",
    "EncoderConfig",
    "EventDecoding",
    "FusionConfig",
    "Mixer",
    "ModelConfig",
    "NeuroNetConfig",
    "Phase",
    "Precision",
    "PreprocessingConfig",
    "RunConfig",
    "Scaling",
    "SimulationConfig",
    "Split",
    "TemporalConfig",
    "TrainConfig",
    "config_from_dict",
    "config_differences",
    "config_hash",
    "config_to_dict",
    "get_preset",
    "load_config_file",
    "load_run_config",
    "merge_config",
]

T = TypeVar("T")

#: Training phases; a checkpoint records the phase that produced it.
Phase = Literal["pretrain_unimodal", "pretrain_multimodal", "probe", "finetune"]
#: Subject splits of a store.
Split = Literal["pretrain", "train", "val", "test"]
#: Classifier context: single epochs (probing) or 20-epoch sequences (fine-tuning).
Context = Literal["epoch", "sequence"]
#: Sequence mixer of the temporal context module.
Mixer = Literal["mamba2", "gru", "transformer"]
#: Per-modality amplitude scaling.
Scaling = Literal["robust", "fixed"]
#: Numeric precision of a model run (``auto``: bf16 where the hardware has it).
Precision = Literal["auto", "bf16", "fp16", "fp32"]
#: Architectures a checkpoint can hold.
Architecture = Literal["neuronet", "synthsleepnet", "sleep_classifier", "epoch_head"]

_MAX_WIDTH = 16384
_MAX_DEPTH = 64
_MAX_HEADS = 256


# --- dict round trip -------------------------------------------------------------------------
def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain, JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert ``value`` to type ``tp`` (dataclasses, unions, Literals, tuples, dicts, scalars)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _from_mapping(typing.cast(type, tp), value, where)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table (mapping), got {value!r}")
        return {_convert(args[0], k, where): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported config type {tp!r}")  # a programming error, not input


def _from_mapping(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a table (mapping), got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(typing.cast(Any, cls)) if f.init}
    unknown = sorted(str(k) for k in set(data) - fields)
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown field(s) {unknown}; valid fields: {sorted(fields)}")
    prefix = f"{where}." if where else ""
    values = {k: _convert(hints[k], v, f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from err


def config_from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "") -> T:
    """Build config ``cls`` from a dict, checking every field's type and value.

    Raises
    ------
    ConfigError
        Naming ``source`` and the field (``model.encoder.embed_dim``) for an unknown key, a
        value of the wrong type or one out of range.
    """
    try:
        return _from_mapping(cls, data, "")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}" if source else str(err)) from None


def merge_config(config: T, overrides: Mapping[str, Any], *, source: str = "") -> T:
    """``config`` with the (nested) fields of ``overrides`` replaced, checked like a new config."""

    def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in extra.items():
            out[key] = merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) \
                else value
        return out

    return config_from_dict(type(config), merge(config_to_dict(config), overrides), source=source)


def config_differences(old: Any, new: Any, where: str = "") -> list[str]:
    """``field.sub: old → new`` for every leaf where two nested dicts (configs as
    :func:`config_to_dict` gives them) differ; long values shortened.

    >>> config_differences({"encoder": {"depth": 2, "sfreq": 100}}, {"encoder": {"depth": 3, "sfreq": 100}})
    ['encoder.depth: 2 → 3']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += config_differences(old.get(key), new.get(key), f"{where}.{key}" if where else key)
        return out
    return [] if old == new else [f"{where}: {_short(old)} → {_short(new)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_hash(config: Any) -> str:
    """Stable short hash of a config's content, recorded with every prepared night."""
    text = json.dumps(config_to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- preprocessing ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """How a continuous PSG signal becomes 30-s model inputs (DESIGN.md §3).

    Parameters
    ----------
    sfreq : float
        Target sampling rate in Hz after polyphase resampling (paper: 100 Hz).
    epoch_s : float
        Epoch length in seconds, aligned to the recording start (AASM: 30 s).
    bands_hz : dict
        Zero-phase Butterworth band per modality, ``(low, high)`` in Hz; ``None`` for either edge
        drops it, ``None`` for the band skips filtering. Paper bands: EEG/EOG 0.5–40 Hz,
        ECG 3–30 Hz, EMG 25–49 Hz (the AASM EMG band, 10–100 Hz, cannot survive 100 Hz).
    filter_order : int
        Butterworth order per pass (applied forward and backward, so the magnitude is squared).
    scaling : dict
        Per modality, ``"robust"`` (per-night median / IQR, then clipping) or ``"fixed"``
        (``(x - offset) / scale`` from ``fixed_scaling``, for SpO2 where the absolute % matters).
    clip : float
        Robust-scaled samples are clipped to ``[-clip, clip]`` IQRs (artefacts, electrode pops).
    fixed_scaling : dict
        ``modality: (offset, scale)`` for ``"fixed"`` scaling.
    store_dtype : str
        On-disk dtype of prepared epochs. ``float16`` keeps 11 bits of mantissa: for robust-scaled
        signals clipped at ±20 the absolute rounding error is at most 0.0078 (IQR units).
    event_min_overlap_s : float
        An epoch is labelled positive for an event when the event overlaps it by more than this
        many seconds (0: any overlap). Events also keep onset and duration.
    """

    sfreq: float = 100.0
    epoch_s: float = 30.0
    bands_hz: dict[str, tuple[float | None, float | None] | None] = dataclasses.field(
        default_factory=lambda: {
            "eeg": (0.5, 40.0),
            "eog": (0.5, 40.0),
            "emg": (25.0, 49.0),
            "ecg": (3.0, 30.0),
            "resp": (0.05, 5.0),
            "spo2": None,
        }
    )
    filter_order: int = 4
    scaling: dict[str, Scaling] = dataclasses.field(
        default_factory=lambda: {"eeg": "robust", "eog": "robust", "emg": "robust",
                                 "ecg": "robust", "resp": "robust", "spo2": "fixed"}
    )
    clip: float = 20.0
    fixed_scaling: dict[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: {"spo2": (90.0, 10.0)}
    )
    store_dtype: Literal["float16", "float32"] = "float16"
    event_min_overlap_s: float = 0.0

    def __post_init__(self) -> None:
        check_positive("sfreq", self.sfreq)
        check_positive("epoch_s", self.epoch_s)
        if self.sfreq > 10_000 or self.epoch_s > 600 or self.epoch_samples < 1:
            raise ValueError(f"sfreq ({self.sfreq}) and epoch_s ({self.epoch_s}) must give 1 to 6e6 samples "
                             "per epoch (sfreq ≤ 10 kHz, epochs ≤ 600 s)")
        check_int("filter_order", self.filter_order, 1, 10)
        check_positive("clip", self.clip)
        check_positive("event_min_overlap_s", self.event_min_overlap_s, allow_zero=True)
        for modality, band in self.bands_hz.items():
            if band is None:
                continue
            low, high = band
            for edge in (low, high):
                if edge is not None:
                    check_positive(f"bands_hz[{modality!r}] edge", edge)
            if low is not None and high is not None and low >= high:
                raise ValueError(f"bands_hz[{modality!r}]: low edge {low} must be below the high edge {high}")
        for modality, kind in self.scaling.items():
            if kind == "fixed" and modality not in self.fixed_scaling:
                raise ValueError(f"scaling[{modality!r}] is 'fixed' but fixed_scaling has no (offset, scale) "
                                 f"for it; have {sorted(self.fixed_scaling)}")
        for modality, (_, scale) in self.fixed_scaling.items():
            check_positive(f"fixed_scaling[{modality!r}] scale", scale)

    @property
    def epoch_samples(self) -> int:
        """Samples per epoch at the target rate (3000 for the paper)."""
        return int(round(self.sfreq * self.epoch_s))


# --- models ----------------------------------------------------------------------------------
def _check_widths(name: str, values: tuple[int, ...], low: int = 1, high: int = _MAX_WIDTH,
                  max_len: int = 8) -> None:
    if not 1 <= len(values) <= max_len:
        raise ValueError(f"{name} must hold 1 to {max_len} values, got {len(values)}")
    for i, v in enumerate(values):
        check_int(f"{name}[{i}]", v, low, high)


def _check_heads(dim_name: str, dim: int, heads_name: str, heads: int) -> None:
    check_int(dim_name, dim, 1, _MAX_WIDTH)
    check_int(heads_name, heads, 1, _MAX_HEADS)
    if dim % heads:
        raise ValueError(f"{dim_name} ({dim}) must be divisible by {heads_name} ({heads})")


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """The frame CNN: conv stem and three residual squeeze-excitation branches (NeuroNet).

    Paper: stem 64 channels; blocks 64→128→128→256 with strides 1, 1, 2, 2; branch kernels
    3, 5, 7 average-pooled over 16, 11, 6 — 6656 conv features, 3328 frame features; ELU.
    ``chunk_frames`` frames are processed per forward chunk (speed only; results in eval mode
    do not depend on it). ``relu`` (the ``fast`` preset) measured 1.3x faster than ELU in bf16.
    """

    stem_channels: int = 64
    channels: tuple[int, ...] = (64, 128, 128, 256)
    strides: tuple[int, ...] = (1, 1, 2, 2)
    kernels: tuple[int, ...] = (3, 5, 7)
    pools: tuple[int, ...] = (16, 11, 6)
    chunk_frames: int = 256
    activation: Literal["elu", "relu"] = "elu"

    def __post_init__(self) -> None:
        check_int("stem_channels", self.stem_channels, 1, 4096)
        _check_widths("channels", self.channels, high=4096)
        _check_widths("strides", self.strides, high=8)
        _check_widths("kernels", self.kernels, high=63)
        _check_widths("pools", self.pools, high=1024)
        check_int("chunk_frames", self.chunk_frames, 1, 1 << 20)
        if len(self.channels) != len(self.strides) or len(self.kernels) != len(self.pools):
            raise ValueError("channels/strides and kernels/pools must have matching lengths")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """A NeuroNet encoder: frames of an epoch → frame tokens (NeuroNet, arXiv:2404.17585).

    Time is in seconds: epochs of ``epoch_s`` at ``sfreq`` Hz cut into ``frame_s`` windows every
    ``frame_step_s`` (paper: 30 s at 100 Hz, 4-s frames, 1-s step → 27 frames); transformer
    ``embed_dim`` wide, ``depth`` blocks of ``n_heads`` heads (paper: 768, 4, 8). ``frames``:
    ``overlapping`` runs the backbone on each frame (the paper); ``continuous`` runs it once over
    the epoch and pools each frame's span (the ``fast`` preset, 3.6x fewer convolution inputs).
    """

    sfreq: float = 100.0
    epoch_s: float = 30.0
    frame_s: float = 4.0
    frame_step_s: float = 1.0
    backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
    embed_dim: int = 768
    depth: int = 4
    n_heads: int = 8
    frames: Literal["overlapping", "continuous"] = "overlapping"

    def __post_init__(self) -> None:
        check_positive("sfreq", self.sfreq)
        check_positive("epoch_s", self.epoch_s)
        check_positive("frame_s", self.frame_s)
        check_positive("frame_step_s", self.frame_step_s)
        if self.sfreq > 10_000 or self.epoch_s > 600:
            raise ValueError(f"sfreq must be ≤ 10 kHz and epoch_s ≤ 600 s, got {self.sfreq}, {self.epoch_s}")
        if self.frame_s > self.epoch_s or self.frame_step_s > self.frame_s:
            raise ValueError(f"frames must fit the epoch: frame_s {self.frame_s} ≤ epoch_s {self.epoch_s} and "
                             f"frame_step_s {self.frame_step_s} ≤ frame_s")
        if self.n_frames > 4096:
            raise ValueError(f"{self.n_frames} frames per epoch is more than 4096; lengthen frame_step_s")
        _check_heads("embed_dim", self.embed_dim, "n_heads", self.n_heads)
        check_int("depth", self.depth, 1, _MAX_DEPTH)

    @property
    def epoch_samples(self) -> int:
        return int(round(self.epoch_s * self.sfreq))

    @property
    def frame_samples(self) -> int:
        return int(round(self.frame_s * self.sfreq))

    @property
    def step_samples(self) -> int:
        return max(int(round(self.frame_step_s * self.sfreq)), 1)

    @property
    def n_frames(self) -> int:
        return (self.epoch_samples - self.frame_samples) // self.step_samples + 1


def _check_pretext(config: NeuroNetConfig | FusionConfig) -> None:
    """The decoder, projector, masking and loss settings both pretexts share."""
    _check_heads("decoder_dim", config.decoder_dim, "decoder_heads", config.decoder_heads)
    check_int("decoder_depth", config.decoder_depth, 1, _MAX_DEPTH)
    _check_widths("projection", config.projection, max_len=4)
    if not 0 <= config.mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in [0, 1), got {config.mask_ratio}")
    check_positive("temperature", config.temperature)
    check_positive("alpha", config.alpha, allow_zero=True)


@dataclasses.dataclass(frozen=True)
class NeuroNetConfig:
    """NeuroNet's pretext: MAE decoder, projector and losses (paper values as defaults).

    Two masked views (``mask_ratio`` 0.8); decoder 256 wide, 3 blocks, 8 heads; projector
    768→1024→512; loss = reconstruction of both views + ``alpha`` · NT-Xent at ``temperature``
    0.05.
    """

    decoder_dim: int = 256
    decoder_depth: int = 3
    decoder_heads: int = 8
    projection: tuple[int, ...] = (1024, 512)
    mask_ratio: float = 0.8
    temperature: float = 0.05
    alpha: float = 1.0

    def __post_init__(self) -> None:
        _check_pretext(self)


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    """SynthSleepNet fusion of per-channel encoders (paper values as defaults).

    Shared transformer 512 wide, 4 blocks, 8 heads; per-channel decoders 256 wide, 3 blocks;
    projector 512→512→256; per-channel masking 0.4; encoder LoRA rank 4, alpha 16 on the
    attention output projections; cross-modal NT-Xent at ``temperature`` 0.1, weight ``alpha``.
    """

    fusion_dim: int = 512
    fusion_depth: int = 4
    fusion_heads: int = 8
    decoder_dim: int = 256
    decoder_depth: int = 3
    decoder_heads: int = 8
    projection: tuple[int, ...] = (512, 256)
    mask_ratio: float = 0.4
    lora_rank: int = 4
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ("attn.proj",)
    temperature: float = 0.1
    alpha: float = 1.0

    def __post_init__(self) -> None:
        _check_heads("fusion_dim", self.fusion_dim, "fusion_heads", self.fusion_heads)
        check_int("fusion_depth", self.fusion_depth, 1, _MAX_DEPTH)
        _check_pretext(self)
        check_int("lora_rank", self.lora_rank, 0, 1024)
        check_positive("lora_alpha", self.lora_alpha)


@dataclasses.dataclass(frozen=True)
class TemporalConfig:
    """Temporal context module over sequences of epoch embeddings, and the epoch head.

    Paper: causal Mamba2 (d_state 16, d_conv 4, expand 2) over 20-epoch windows, then a head
    d→256→256→classes with dropout 0.5. ``bidirectional`` adds a reversed pass; ``gru`` and
    ``transformer`` mixers are for comparison.
    """

    mixer: Mixer = "mamba2"
    bidirectional: bool = False
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    headdim: int = 64
    n_heads: int = 8
    seq_len: int = 20
    hidden: int = 256
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_int("d_state", self.d_state, 1, 1024)
        check_int("d_conv", self.d_conv, 1, 64)
        check_int("expand", self.expand, 1, 16)
        check_int("headdim", self.headdim, 1, 4096)
        check_int("n_heads", self.n_heads, 1, _MAX_HEADS)
        check_int("seq_len", self.seq_len, 1, 10_000)
        check_int("hidden", self.hidden, 1, _MAX_WIDTH)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Every architecture setting of one model size (a preset, or a preset with overrides).

    Built against the data's :class:`PreprocessingConfig` with :meth:`check_preprocessing`, so
    a model for 100-Hz, 30-s epochs never meets data prepared at another rate.
    """

    preset: str = "paper"
    description: str = ""
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    neuronet: NeuroNetConfig = dataclasses.field(default_factory=NeuroNetConfig)
    fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)
    temporal: TemporalConfig = dataclasses.field(default_factory=TemporalConfig)

    def __post_init__(self) -> None:
        width = self.fusion.fusion_dim
        if self.temporal.mixer == "mamba2" and (self.temporal.expand * width) % self.temporal.headdim:
            raise ValueError(f"temporal.expand × fusion.fusion_dim ({self.temporal.expand * width}) must be "
                             f"divisible by temporal.headdim ({self.temporal.headdim})")
        if self.temporal.mixer == "transformer" and width % self.temporal.n_heads:
            raise ValueError(f"fusion.fusion_dim ({width}) must be divisible by temporal.n_heads "
                             f"({self.temporal.n_heads})")
        if self.temporal.mixer == "gru" and self.temporal.bidirectional and width % 2:
            raise ValueError(f"a bidirectional GRU needs an even fusion.fusion_dim, got {width}")

    def check_preprocessing(self, preprocessing: PreprocessingConfig, source: str = "model") -> None:
        """Refuse data whose rate or epoch length differs from what the encoder was built for."""
        enc = self.encoder
        if (enc.sfreq, enc.epoch_s) != (preprocessing.sfreq, preprocessing.epoch_s):
            raise ConfigError(f"{source} expects {enc.epoch_s:g}-s epochs at {enc.sfreq:g} Hz, but the data "
                              f"was prepared as {preprocessing.epoch_s:g}-s epochs at {preprocessing.sfreq:g} Hz; "
                              "set [model.encoder] sfreq/epoch_s to match, or prepare the data again")


def _preset(name: str, description: str, *, stem: int, channels: tuple[int, ...], embed: int, depth: int,
            heads: int, decoder: tuple[int, int, int], projection: tuple[int, int], fusion: tuple[int, int, int],
            fusion_decoder: tuple[int, int, int], fusion_projection: tuple[int, int], hidden: int) -> ModelConfig:
    return ModelConfig(
        preset=name, description=description,
        encoder=EncoderConfig(backbone=BackboneConfig(stem_channels=stem, channels=channels), embed_dim=embed,
                              depth=depth, n_heads=heads),
        neuronet=NeuroNetConfig(decoder_dim=decoder[0], decoder_depth=decoder[1], decoder_heads=decoder[2],
                                projection=projection),
        fusion=FusionConfig(fusion_dim=fusion[0], fusion_depth=fusion[1], fusion_heads=fusion[2],
                            decoder_dim=fusion_decoder[0], decoder_depth=fusion_decoder[1],
                            decoder_heads=fusion_decoder[2], projection=fusion_projection),
        temporal=TemporalConfig(hidden=hidden))


#: Named model sizes. ``paper`` is the published configuration; ``small`` and ``tiny`` keep every
#: mechanism at a size a CPU can train (tests and the demo use ``tiny``).
PRESETS: dict[str, ModelConfig] = {
    "paper": _preset("paper", "published configuration (NeuroNet arXiv:2404.17585; SynthSleepNet)",
                     stem=64, channels=(64, 128, 128, 256), embed=768, depth=4, heads=8, decoder=(256, 3, 8),
                     projection=(1024, 512), fusion=(512, 4, 8), fusion_decoder=(256, 3, 8),
                     fusion_projection=(512, 256), hidden=256),
    "small": _preset("small", "a quarter of the width: trains on a CPU in hours",
                     stem=32, channels=(32, 64, 64, 128), embed=256, depth=4, heads=8, decoder=(128, 2, 4),
                     projection=(512, 256), fusion=(256, 2, 8), fusion_decoder=(128, 2, 4),
                     fusion_projection=(256, 128), hidden=128),
    "tiny": _preset("tiny", "every mechanism at toy size: tests and the demo",
                    stem=16, channels=(16, 32, 32, 64), embed=64, depth=2, heads=4, decoder=(64, 1, 4),
                    projection=(128, 64), fusion=(64, 1, 4), fusion_decoder=(32, 1, 4),
                    fusion_projection=(64, 32), hidden=64),
}
#: ``fast``: tiny's transformer, fusion and temporal sizes on a backbone built for scoring speed:
#: one convolutional pass per epoch pooled per frame (3.6x fewer convolution inputs), early
#: downsampling (strides 2, 2, 2, 1) and ReLU (ELU measured 1.3x slower in bf16) — 1,780
#: epoch-channels/s against tiny's 121 on this 2-core CPU (bf16, batch 320).
PRESETS["fast"] = dataclasses.replace(
    PRESETS["tiny"], preset="fast", description="built for scoring speed: one conv pass per epoch, pooled per frame",
    encoder=dataclasses.replace(PRESETS["tiny"].encoder, frames="continuous",
                                backbone=BackboneConfig(stem_channels=16, channels=(16, 32, 32, 64),
                                                        strides=(2, 2, 2, 1), activation="relu")))


def get_preset(name: str) -> ModelConfig:
    """Model preset ``name``; the error lists the valid names."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name]


# --- adaptation ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """What probing and fine-tuning add to a pretrained fusion model.

    Parameters
    ----------
    lora_rank, lora_alpha : int, float
        Fine-tuning adapters (paper: rank 4, alpha 8).
    lora_targets : tuple of str
        Encoder linears that get fine-tuning adapters (paper: the frame-feature MLP).
    lora_last_fusion_mlp : bool
        Also adapt the last fusion block's MLP (paper: yes).
    window_stride : int
        Stride of the training windows in epochs (paper: 10 for 20-epoch windows).
    probe_calibration_items, finetune_calibration_items : int
        Training items (epochs, windows) whose inputs give a scratch model's frozen encoders
        their BatchNorm statistics (no labels used).
    balance_event_windows : bool
        For event tasks, draw windows holding a labelled event as often as windows without.
    cache_conv : bool
        Compute the frozen frame convolutions of the training and validation nights once and
        fine-tune from them (same result, several times faster); skipped, with a message, when
        the cache would exceed ``cache_max_gb``.
    cache_max_gb : float
        Memory the convolution cache may take.
    distill_temperature, distill_weight : float
        Fine-tuning with a teacher: the softening temperature of its predictions, and the weight
        of the distillation loss (over every training epoch) beside the labelled epochs' loss.
    """

    lora_rank: int = 4
    lora_alpha: float = 8.0
    lora_targets: tuple[str, ...] = ("backbone.mlp.0", "backbone.mlp.2")
    lora_last_fusion_mlp: bool = True
    window_stride: int = 10
    probe_calibration_items: int = 160
    finetune_calibration_items: int = 8
    balance_event_windows: bool = True
    cache_conv: bool = True
    cache_max_gb: float = 8.0
    distill_temperature: float = 2.0
    distill_weight: float = 1.0

    def __post_init__(self) -> None:
        check_int("lora_rank", self.lora_rank, 1, 1024)
        check_positive("cache_max_gb", self.cache_max_gb)
        check_positive("lora_alpha", self.lora_alpha)
        check_positive("distill_temperature", self.distill_temperature)
        check_positive("distill_weight", self.distill_weight)
        check_int("window_stride", self.window_stride, 1, 10_000)
        check_int("probe_calibration_items", self.probe_calibration_items, 1, 100_000)
        check_int("finetune_calibration_items", self.finetune_calibration_items, 1, 100_000)


_MAX_CHANNELS = 64


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: architecture, sizes, channels, outputs, adapters.

    Parameters
    ----------
    architecture : str
        A key of :data:`~synthsleepnet.models.MODELS`.
    config : ModelConfig
        Sizes (a preset, possibly with overrides).
    channels : tuple of str
        Canonical channels (fusion models and classifiers: one encoder each).
    n_outputs : int
        Classes (classifiers and heads).
    context : str
        ``epoch`` or ``sequence`` (classifiers).
    adapt : AdaptConfig | None
        Fine-tuning adapters of a sequence classifier.
    resolution_s : float | None
        Per-second classifiers: seconds per output (the task's ``resolution_s``).
    """

    architecture: Architecture
    config: ModelConfig
    channels: tuple[str, ...] = ()
    n_outputs: int = 0
    context: Context = "epoch"
    adapt: AdaptConfig | None = None
    resolution_s: float | None = None

    def __post_init__(self) -> None:
        if len(self.channels) > _MAX_CHANNELS or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels must be at most {_MAX_CHANNELS} distinct names, got {list(self.channels)}")
        if any(not 0 < len(c) <= 64 for c in self.channels):
            raise ValueError(f"channel names must be 1 to 64 characters, got {list(self.channels)}")
        if self.architecture in ("synthsleepnet", "sleep_classifier") and not self.channels:
            raise ValueError(f"a {self.architecture} model needs at least one channel")
        if self.architecture in ("sleep_classifier", "epoch_head"):
            check_int("n_outputs", self.n_outputs, 2, 1000)
        if self.resolution_s is not None and not 0.1 <= self.resolution_s <= self.config.encoder.epoch_s:
            raise ValueError(f"resolution_s must be between 0.1 s and the epoch length, got {self.resolution_s}")



@dataclasses.dataclass(frozen=True)
class EventDecoding:
    """How a per-second ``events`` model's probabilities become events
    (:func:`~synthsleepnet.events.decode_events`); chosen on validation nights after fine-tuning
    and kept in the checkpoint, so scoring decodes as the model was selected to.

    Parameters
    ----------
    threshold : float
        A second belongs to an event when the probability of any event exceeds it.
    merge_gap_s : float
        Runs of event seconds this close (s) join into one event.
    min_duration_s : float
        Shorter runs are dropped (AASM: 10 s).
    """

    threshold: float = 0.5
    merge_gap_s: float = 3.0
    min_duration_s: float = 10.0

    def __post_init__(self) -> None:
        check_fraction("threshold", self.threshold)
        check_positive("merge_gap_s", self.merge_gap_s, allow_zero=True)
        check_positive("min_duration_s", self.min_duration_s, allow_zero=True)


# --- training --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training phase (AdamW, cosine schedule with warm-up).

    Parameters
    ----------
    epochs : int
        Passes over the training items.
    batch_size : int
        Items per optimiser micro-batch (per process under DDP: divided by the world size).
    accumulate : int
        Micro-batches per optimiser step.
    base_lr : float
        Learning rate for an effective batch of 256; the rate used is
        ``base_lr × batch_size × accumulate / 256`` (the paper's scaling rule).
    weight_decay : float
        AdamW weight decay.
    warmup_frac : float
        Fraction of the steps with a linear warm-up before the cosine decay.
    grad_clip : float
        Gradient-norm clip (paper: 2).
    seed : int
        Seeds data order, masking, dropout, splits and label sampling; stored in checkpoints.
    device : str
        ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    precision : str
        ``auto`` (bf16 where the device supports it), ``bf16``, ``fp16`` (with gradient
        scaling) or ``fp32``. bf16 autocast made the encoders 1.4–1.8x faster on this CPU.
    max_steps_per_epoch : int | None
        Cap on optimiser steps per epoch (quick runs, CI); None runs full epochs.
    workers : int
        Data-loader worker processes per training process (0: read in the training process).
        Results do not depend on it: the item order is drawn in the main process.
    prefetch : int
        Batches each loader worker prepares ahead.
    """

    epochs: int = 20
    batch_size: int = 256
    accumulate: int = 1
    base_lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    grad_clip: float = 2.0
    seed: int = 0
    device: str = "auto"
    precision: Precision = "auto"
    max_steps_per_epoch: int | None = None
    workers: int = 0
    prefetch: int = 4

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, 1_000_000)
        check_int("workers", self.workers, 0, 256)
        check_int("prefetch", self.prefetch, 1, 1024)
        check_int("batch_size", self.batch_size, 1, 1 << 20)
        check_int("accumulate", self.accumulate, 1, 1 << 16)
        check_positive("base_lr", self.base_lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_fraction("warmup_frac", self.warmup_frac, closed_low=True)
        check_positive("grad_clip", self.grad_clip)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if self.max_steps_per_epoch is not None:
            check_int("max_steps_per_epoch", self.max_steps_per_epoch, 1, 1 << 40)
        if not (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size * self.accumulate / 256


#: Paper defaults per phase (DESIGN.md §5).
PHASE_DEFAULTS: dict[str, TrainConfig] = {
    "pretrain_unimodal": TrainConfig(epochs=20, batch_size=256, base_lr=1e-4),
    "pretrain_multimodal": TrainConfig(epochs=100, batch_size=256, base_lr=1e-4),
    "probe": TrainConfig(epochs=50, batch_size=512, base_lr=1e-4, weight_decay=0.01),  # lr 2e-4
    "finetune": TrainConfig(epochs=30, batch_size=32, accumulate=4, base_lr=5e-4, weight_decay=0.01),
}


# --- simulation ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Native rates and artefact rates of simulated PSG (``synthsleepnet simulate``).

    Rates differ per channel, as in clinical systems, so the reader and the resampler are
    exercised: EEG/EOG 256 Hz, chin EMG 512 Hz, ECG 256 Hz, airflow and effort 32 Hz, SpO2 1 Hz.
    """

    eeg_sfreq: float = 256.0
    eog_sfreq: float = 256.0
    emg_sfreq: float = 512.0
    ecg_sfreq: float = 256.0
    resp_sfreq: float = 32.0
    spo2_sfreq: float = 1.0
    epoch_s: float = 30.0
    mains_hz: float = 50.0
    mains_uv: float = 2.0
    electrode_pops_per_hour: float = 2.0
    movements_per_hour: float = 3.0
    spontaneous_arousals_per_hour: float = 6.0


# --- files -----------------------------------------------------------------------------------
def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON file into a dict; a malformed file is named in the error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    check_option(f"config file {path} suffix", suffix, (".toml", ".yaml", ".yml", ".json"))
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err})") from err
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ConfigError(f"{path}: not valid {suffix[1:].upper()} ({err})") from err
    except Exception as err:  # yaml.YAMLError and its subclasses, without importing yaml up front
        if type(err).__module__.startswith("yaml"):
            raise ConfigError(f"{path}: not valid YAML ({err})") from err
        raise
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a table (mapping) at the top level, got {type(data).__name__}")
    return data


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One config file for every command: ``[preprocessing]``, ``[model]``, ``[adapt]``, ``[train]``.

    ``[model]`` names a ``preset`` and may override any of its fields (``[model.encoder]
    embed_dim = 128``); ``[train]`` overrides the phase defaults; absent sections keep them.
    """

    preprocessing: PreprocessingConfig = dataclasses.field(default_factory=PreprocessingConfig)
    model_preset: str | None = None
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    adapt: AdaptConfig = dataclasses.field(default_factory=AdaptConfig)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = "defaults"

    def train_config(self, phase: str, **overrides: Any) -> TrainConfig:
        """The phase's defaults, then this file's ``[train]``, then ``overrides`` (CLI flags)."""
        base = PHASE_DEFAULTS[check_option("phase", phase, PHASE_DEFAULTS)]
        values = {**self.train, **{k: v for k, v in overrides.items() if v is not None}}
        return merge_config(base, values, source=f"{self.source} [train]")

    def model_config(self, preset: str | None = None) -> ModelConfig:
        """``preset`` (a flag wins over the file's, default ``tiny``) with the file's overrides."""
        name = preset or self.model_preset or "tiny"
        return merge_config(get_preset(name), {**self.model_overrides, "preset": name},
                            source=f"{self.source} [model]")


def load_run_config(path: str | Path | None) -> RunConfig:
    """Read a run config file (TOML/YAML/JSON); ``None`` gives the defaults."""
    if path is None:
        return RunConfig()
    data = load_config_file(path)
    source = str(path)
    unknown = sorted(set(data) - {"preprocessing", "model", "adapt", "train"})
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {unknown}; sections: [preprocessing], [model], "
                          "[adapt], [train]")
    for name in ("model", "train", "adapt", "preprocessing"):
        if not isinstance(data.get(name, {}), Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table")
    preprocessing = config_from_dict(PreprocessingConfig, data.get("preprocessing", {}),
                                     source=f"{source} [preprocessing]")
    overrides = dict(data.get("model", {}))
    preset = overrides.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"{source} [model]: preset must be a name, got {preset!r}")
    adapt = config_from_dict(AdaptConfig, data.get("adapt", {}), source=f"{source} [adapt]")
    run = RunConfig(preprocessing, preset, overrides, adapt, dict(data.get("train", {})), source)
    run.model_config()  # check the [model] and [train] sections now, not when a command uses them
    merge_config(TrainConfig(), run.train, source=f"{source} [train]")
    return run

"""The NeuroNet frame backbone: a multi-scale residual squeeze-excitation CNN per frame.

Each 30-s epoch is cut into overlapping frames (paper: 4-s windows, 1-s step, 27 frames). A frame
goes through a conv stem and three parallel branches of residual SE blocks with kernels 3, 5 and
7; each branch is average-pooled, the three are concatenated and flattened, and an MLP maps them
to the frame feature (paper: 6656 → 3328). Reference: Lee et al., NeuroNet, arXiv:2404.17585.

Inside the backbone a signal is (N, C, 1, L) in channels-last memory: each 1-d convolution runs as
the 2-d convolution it is, for which oneDNN has channels-last (NWC) kernels; on the backbone's
16–64-channel layers they measured 1.2–3x faster than its 1-d kernels (fp32, AVX2 CPU). The
parameters are those of ``nn.Conv1d`` and ``nn.BatchNorm2d`` (whose state is BatchNorm1d's), so
checkpoints are unaffected.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._config import BackboneConfig

__all__ = ["ContinuousFrameBackbone", "FrameBackbone", "conv_features", "make_frames"]


def make_frames(x: torch.Tensor, frame_samples: int, step_samples: int) -> torch.Tensor:
    """Cut signals (B, T) into overlapping frames (B, F, frame_samples) with ``unfold`` (a view)."""
    if x.shape[-1] < frame_samples:
        raise ValueError(f"signal of {x.shape[-1]} samples is shorter than one frame ({frame_samples})")
    return x.unfold(-1, frame_samples, step_samples)


class _Conv1dAs2d(nn.Conv1d):
    """A ``Conv1d`` (same parameters; integer padding) applied to (N, C, 1, L) as a 2-d convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, int(self.padding[0])),
                        (1, self.dilation[0]), self.groups)


class _SignalConv(nn.Conv1d):
    """The stem's ``Conv1d`` (one input channel; same parameters): signals (N, T) → (N, C, 1, L) in
    channels-last memory, as one matrix product over the unfolded signal, which measured 2x faster
    than oneDNN's 1-channel kernel and gives the branches their layout."""

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        kernel, stride, padding = self.kernel_size[0], self.stride[0], int(self.padding[0])
        windows = F.pad(signals, (padding, padding)).unfold(-1, kernel, stride)  # (N, L, kernel)
        out = F.linear(windows.reshape(-1, kernel), self.weight.reshape(self.out_channels, kernel), self.bias)
        return out.reshape(*windows.shape[:2], -1).transpose(1, 2).unsqueeze(2)  # (N, L, C) → (N, C, 1, L)


def _stem(stem_channels: int, activation: nn.Module) -> nn.Sequential:
    """Convolution, BatchNorm, max-pool, activation: the paper pools after the activation, but a
    monotonic activation commutes with a maximum exactly, and after the pool it sees half the
    samples (the stem's output is the backbone's largest tensor)."""
    return nn.Sequential(_SignalConv(1, stem_channels, 7, stride=2, padding=3, bias=False),
                         nn.BatchNorm2d(stem_channels), nn.MaxPool2d((1, 3), stride=(1, 2), padding=(0, 1)),
                         activation)


def conv_features(frame_samples: int, config: BackboneConfig) -> int:
    """Length of the flattened conv features of one frame, computed from the layer arithmetic
    (no dry run: building a model, on any device, stays cheap).

    Raises ValueError when a kernel or pool is longer than what reaches it.
    """
    def conv(length: int, kernel: int, stride: int, padding: int) -> int:
        return (length + 2 * padding - kernel) // stride + 1

    stem = conv(conv(frame_samples, 7, 2, 3), 3, 2, 1)
    total = 0
    for kernel, pool in zip(config.kernels, config.pools, strict=True):
        length = stem
        for stride in config.strides:
            length = conv(conv(length, kernel, stride, 1), kernel, 1, 1)
        length = length - pool + 1
        if length < 1 or stem < 1:
            raise ValueError(f"frames of {frame_samples} samples are too short for this backbone "
                             f"(kernels {config.kernels}, strides {config.strides}, pools {config.pools})")
        total += config.channels[-1] * length
    return total


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 1, L) → the same, each channel scaled by its excitation."""
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class _SEResBlock(nn.Module):
    """Conv–BN–ELU–Conv–BN–SE with a residual; the residual is cut to the output length.

    Convolutions use padding 1 whatever the kernel, as in the paper's code, so kernel-5 and
    kernel-7 branches shorten the signal; that is what gives the paper's 6656 features.
    """

    #: Each convolution and the BatchNorm applied straight to its output (folded for inference).
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, activation: str = "elu") -> None:
        super().__init__()
        self.act = F.relu if activation == "relu" else F.elu
        self.conv1 = _Conv1dAs2d(c_in, c_out, kernel, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _Conv1dAs2d(c_out, c_out, kernel, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.se = _SqueezeExcite(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(_Conv1dAs2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))))
        residual = self.shortcut(x)[..., :out.shape[-1]]
        return self.act(out + residual)


class FrameBackbone(nn.Module):
    """Frames (N, frame_samples) → frame features (N, n_features).

    Parameters
    ----------
    frame_samples : int
        Samples per frame (paper: 400, 4 s at 100 Hz).
    config : BackboneConfig
        Stem and branch sizes (see :class:`~synthsleepnet._config.BackboneConfig`). Frames are
        processed ``config.chunk_frames`` at a time: chunks of a few hundred frames were measured
        faster than one huge batch and than a loop over frames. In training mode BatchNorm
        normalises each chunk with its own statistics, as the paper's loop over frame positions
        did with each position's batch; in eval mode every frame uses the running statistics,
        so results do not depend on the chunk size.
    """

    def __init__(self, frame_samples: int, config: BackboneConfig | None = None) -> None:
        super().__init__()
        config = config or BackboneConfig()
        self.frame_samples = frame_samples
        self.chunk_frames = config.chunk_frames
        stem = config.stem_channels
        self.stem = _stem(stem, nn.ELU())
        self.branches = nn.ModuleList()
        for kernel, pool in zip(config.kernels, config.pools, strict=True):
            blocks: list[nn.Module] = []
            c_in = stem
            for c_out, stride in zip(config.channels, config.strides, strict=True):
                blocks.append(_SEResBlock(c_in, c_out, kernel, stride))
                c_in = c_out
            blocks.append(nn.AvgPool2d((1, pool), stride=1))
            self.branches.append(nn.Sequential(*blocks))
        n_conv = conv_features(frame_samples, config)
        self.n_features = n_conv // 2
        self.mlp = nn.Sequential(nn.Linear(n_conv, self.n_features), nn.ELU(),
                                 nn.Linear(self.n_features, self.n_features))

    def _conv_features(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stem(frames)
        return torch.cat([branch(x).squeeze(2) for branch in self.branches], dim=-1).flatten(1)

    def conv(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., frame_samples) → (..., n_conv): the convolutional part, in chunks, never looped."""
        lead = frames.shape[:-1]
        flat = frames.reshape(-1, frames.shape[-1])
        chunks = [self._conv_features(c) for c in flat.split(self.chunk_frames)]
        return torch.cat(chunks).reshape(*lead, -1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., frame_samples) → (..., n_features)."""
        return self.mlp(self.conv(frames))


class ContinuousFrameBackbone(nn.Module):
    """Epochs (N, T) → frame features (N, F, n_features) from one convolutional pass per epoch.

    The ``fast`` presets' backbone. The overlapping 4-s frames of the paper make the convolutions
    see every sample 3.6 times (27 frames × 400 samples for 3000); here the stem and the three
    residual squeeze-excitation branches run once over the whole epoch, and each frame's feature
    is the mean of the branch outputs over that frame's span (exact, via cumulative sums), so the
    tokens per epoch, and everything after them, are unchanged.

    Parameters
    ----------
    epoch_samples, frame_samples, step_samples : int
        Samples per epoch, per frame and between frame starts (30 s, 4 s, 1 s at 100 Hz).
    config : BackboneConfig
        Stem and branch sizes; the pools are not used (each frame is pooled over its span).
    """

    def __init__(self, epoch_samples: int, frame_samples: int, step_samples: int,
                 config: BackboneConfig | None = None) -> None:
        super().__init__()
        config = config or BackboneConfig()
        self.epoch_samples, self.frame_samples, self.step_samples = epoch_samples, frame_samples, step_samples
        self.n_frames = (epoch_samples - frame_samples) // step_samples + 1
        stem = config.stem_channels
        act: nn.Module = nn.ReLU() if config.activation == "relu" else nn.ELU()
        self.stem = _stem(stem, act)
        self.branches = nn.ModuleList()
        for kernel in config.kernels:
            blocks: list[nn.Module] = []
            c_in = stem
            for c_out, stride in zip(config.channels, config.strides, strict=True):
                blocks.append(_SEResBlock(c_in, c_out, kernel, stride, config.activation))
                c_in = c_out
            self.branches.append(nn.Sequential(*blocks))
        n_conv = len(config.kernels) * config.channels[-1]
        self.n_features = max(n_conv // 2, 1)
        self.mlp = nn.Sequential(nn.Linear(n_conv, self.n_features), nn.ELU(),
                                 nn.Linear(self.n_features, self.n_features))

    def _spans(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """First and one-past-last output position of every frame, for an output of ``length``."""
        starts = torch.arange(self.n_frames, device=device) * self.step_samples
        first = torch.div(starts * length, self.epoch_samples, rounding_mode="floor").clamp(max=length - 1)
        last = torch.div((starts + self.frame_samples) * length + self.epoch_samples - 1, self.epoch_samples,
                         rounding_mode="floor")
        return first, torch.maximum(last.clamp(max=length), first + 1)

    def frame_pool(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, L) → (N, F, C): the mean of each frame's span (summed along L in (N, L, C), which
        is contiguous for the backbone's channels-last output)."""
        first, last = self._spans(x.shape[-1], x.device)
        cumulative = F.pad(x.transpose(1, 2).float().cumsum(1), (0, 0, 1, 0))
        sums = cumulative[:, last] - cumulative[:, first]
        return (sums / (last - first).to(sums.dtype)[:, None]).to(x.dtype)

    def _conv_features(self, epochs: torch.Tensor) -> torch.Tensor:
        x = self.stem(epochs)
        return torch.cat([self.frame_pool(branch(x).squeeze(2)) for branch in self.branches], dim=-1)

    def conv(self, epochs: torch.Tensor) -> torch.Tensor:
        """(N, T) → (N, F, n_conv): the convolutional part, pooled per frame."""
        return self._conv_features(epochs)

    def forward(self, epochs: torch.Tensor) -> torch.Tensor:
        """(N, T) → (N, F, n_features)."""
        return self.mlp(self.conv(epochs))

"""The NeuroNet frame backbone: a multi-scale residual squeeze-excitation CNN per frame.

Each 30-s epoch is cut into overlapping frames (paper: 4-s windows, 1-s step, 27 frames). A frame
goes through a conv stem and three parallel branches of residual SE blocks with kernels 3, 5 and
7; each branch is average-pooled, the three are concatenated and flattened, and an MLP maps them
to the frame feature (paper: 6656 → 3328). Reference: Lee et al., NeuroNet, arXiv:2404.17585.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._config import BackboneConfig

__all__ = ["FrameBackbone", "make_frames"]


def make_frames(x: torch.Tensor, frame_samples: int, step_samples: int) -> torch.Tensor:
    """Cut signals (B, T) into overlapping frames (B, F, frame_samples) with ``unfold`` (a view)."""
    if x.shape[-1] < frame_samples:
        raise ValueError(f"signal of {x.shape[-1]} samples is shorter than one frame ({frame_samples})")
    return x.unfold(-1, frame_samples, step_samples)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=-1)).unsqueeze(-1)


class _SEResBlock(nn.Module):
    """Conv–BN–ELU–Conv–BN–SE with a residual; the residual is cut to the output length.

    Convolutions use padding 1 whatever the kernel, as in the paper's code, so kernel-5 and
    kernel-7 branches shorten the signal; that is what gives the paper's 6656 features.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.se = _SqueezeExcite(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.bn2(self.conv2(F.elu(self.bn1(self.conv1(x))))))
        residual = self.shortcut(x)[..., :out.shape[-1]]
        return F.elu(out + residual)


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
        self.stem = nn.Sequential(nn.Conv1d(1, stem, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm1d(stem), nn.ELU(), nn.MaxPool1d(3, stride=2, padding=1))
        self.branches = nn.ModuleList()
        for kernel, pool in zip(config.kernels, config.pools, strict=True):
            blocks: list[nn.Module] = []
            c_in = stem
            for c_out, stride in zip(config.channels, config.strides, strict=True):
                blocks.append(_SEResBlock(c_in, c_out, kernel, stride))
                c_in = c_out
            blocks.append(nn.AvgPool1d(pool, stride=1))
            self.branches.append(nn.Sequential(*blocks))
        try:
            with torch.no_grad():
                n_conv = self._conv_features(torch.zeros(2, frame_samples)).shape[-1]
        except RuntimeError as err:  # a kernel or pool longer than what reaches it
            raise ValueError(f"frames of {frame_samples} samples are too short for this backbone "
                             f"(kernels {config.kernels}, pools {config.pools}): {err}") from err
        self.n_features = n_conv // 2
        self.mlp = nn.Sequential(nn.Linear(n_conv, self.n_features), nn.ELU(),
                                 nn.Linear(self.n_features, self.n_features))

    def _conv_features(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stem(frames.unsqueeze(1))
        return torch.cat([branch(x) for branch in self.branches], dim=-1).flatten(1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., frame_samples) → (..., n_features); frames are batched in chunks, never looped."""
        lead = frames.shape[:-1]
        flat = frames.reshape(-1, frames.shape[-1])
        chunks = [self._conv_features(c) for c in flat.split(self.chunk_frames)]
        return self.mlp(torch.cat(chunks)).reshape(*lead, self.n_features)

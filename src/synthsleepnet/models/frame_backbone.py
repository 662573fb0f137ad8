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
    stem_channels : int
        Channels of the stem convolution (paper: 64).
    channels : tuple of int
        Output channels of the four SE blocks of each branch (paper: 64, 128, 128, 256).
    strides : tuple of int
        Their strides (paper: 1, 1, 2, 2).
    kernels : tuple of int
        Kernel size of each branch (paper: 3, 5, 7).
    pools : tuple of int
        Average-pooling window of each branch (paper: 16, 11, 6).
    chunk_frames : int
        Frames processed per forward chunk. Chunks of a few hundred frames were measured faster
        than one huge batch and than a loop over frames. In training mode BatchNorm normalises
        each chunk with its own statistics, as the paper's loop over frame positions did with
        each position's batch; in eval mode every frame uses the running statistics, so results
        do not depend on the chunk size.
    """

    def __init__(self, frame_samples: int = 400, stem_channels: int = 64,
                 channels: tuple[int, ...] = (64, 128, 128, 256), strides: tuple[int, ...] = (1, 1, 2, 2),
                 kernels: tuple[int, ...] = (3, 5, 7), pools: tuple[int, ...] = (16, 11, 6),
                 chunk_frames: int = 256) -> None:
        super().__init__()
        if len(channels) != len(strides) or len(kernels) != len(pools):
            raise ValueError("channels/strides and kernels/pools must have matching lengths")
        self.frame_samples = frame_samples
        self.chunk_frames = chunk_frames
        self.stem = nn.Sequential(nn.Conv1d(1, stem_channels, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm1d(stem_channels), nn.ELU(),
                                  nn.MaxPool1d(3, stride=2, padding=1))
        self.branches = nn.ModuleList()
        for kernel, pool in zip(kernels, pools, strict=True):
            blocks: list[nn.Module] = []
            c_in = stem_channels
            for c_out, stride in zip(channels, strides, strict=True):
                blocks.append(_SEResBlock(c_in, c_out, kernel, stride))
                c_in = c_out
            blocks.append(nn.AvgPool1d(pool, stride=1))
            self.branches.append(nn.Sequential(*blocks))
        with torch.no_grad():
            n_conv = self._conv_features(torch.zeros(2, frame_samples)).shape[-1]
        self.n_features = n_conv // 2
        self.mlp = nn.Sequential(nn.Linear(n_conv, self.n_features), nn.ELU(),
                                 nn.Linear(self.n_features, self.n_features))

    def _conv_features(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stem(frames.unsqueeze(1))
        branches = [branch(x) for branch in self.branches]
        if min(b.shape[-1] for b in branches) < 1:
            raise ValueError(f"frames of {self.frame_samples} samples are too short for the pools")
        return torch.cat(branches, dim=-1).flatten(1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., frame_samples) → (..., n_features); frames are batched in chunks, never looped."""
        lead = frames.shape[:-1]
        flat = frames.reshape(-1, frames.shape[-1])
        chunks = [self._conv_features(c) for c in flat.split(self.chunk_frames)]
        return self.mlp(torch.cat(chunks)).reshape(*lead, self.n_features)

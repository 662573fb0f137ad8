"""Classification heads: single epochs (probing), 20-epoch context (fine-tuning), and per second
within that context (respiratory events)."""

from __future__ import annotations

import torch
from torch import nn

from .._config import TemporalConfig
from .blocks import TransformerBlock, sincos_positions
from .mamba2 import Mamba2

__all__ = ["EpochHead", "SecondContextModule", "TemporalContextModule", "frames_to_seconds"]


class EpochHead(nn.Module):
    """MLP head on epoch embeddings: d → 256 → 256 → classes, BN, ELU, dropout (paper: 0.5).

    Accepts (B, d) or (B, S, d); BatchNorm runs over all epochs of the batch.
    """

    def __init__(self, in_dim: int, n_outputs: int, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.n_outputs = n_outputs
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return self.net(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)


class _Mixer(nn.Module):
    """One sequence mixer, optionally bidirectional (sum of a forward and a reversed pass)."""

    pos: torch.Tensor

    def __init__(self, dim: int, config: TemporalConfig) -> None:
        super().__init__()
        self.kind, self.bidirectional = config.mixer, config.bidirectional
        if self.kind == "mamba2":
            def mamba() -> Mamba2:
                return Mamba2(dim, d_state=config.d_state, d_conv=config.d_conv, expand=config.expand,
                              headdim=config.headdim)

            self.fwd = mamba()
            self.bwd = mamba() if self.bidirectional else None
        elif self.kind == "gru":
            self.gru = nn.GRU(dim, dim // 2 if self.bidirectional else dim, batch_first=True,
                              bidirectional=self.bidirectional)
        else:
            self.block = TransformerBlock(dim, config.n_heads)
            self.register_buffer("pos", sincos_positions(max(config.seq_len, 64), dim)[None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mamba2":
            out = self.fwd(x)
            if self.bwd is not None:
                out = out + self.bwd(x.flip(1)).flip(1)
            return out
        if self.kind == "gru":
            return self.gru(x)[0]
        h = x + self.pos[:, :x.shape[1]]
        return self.block(h) - h  # the module adds the residual itself


class TemporalContextModule(nn.Module):
    """Sequences of epoch embeddings (B, S, d) → per-epoch logits (B, S, n_outputs).

    BatchNorm → ``x + mixer(x)`` → per-epoch :class:`EpochHead`. The paper's mixer is a causal
    Mamba2 (d_state 16, d_conv 4, expand 2) over 20-epoch windows; ``bidirectional`` adds a
    reversed pass so an epoch also sees what follows (as a scorer does), and ``gru`` or
    ``transformer`` can replace Mamba2 for comparison (see :class:`TemporalConfig`).
    """

    def __init__(self, in_dim: int, n_outputs: int, config: TemporalConfig | None = None) -> None:
        super().__init__()
        config = config or TemporalConfig()
        self.seq_len = config.seq_len
        self.n_outputs = n_outputs
        self.norm = nn.BatchNorm1d(in_dim)
        self.mixer = _Mixer(in_dim, config)
        self.head: nn.Module = EpochHead(in_dim, n_outputs, config.hidden, config.dropout)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Each epoch embedding (B, S, d) with its window's context: BatchNorm → ``x + mixer(x)``."""
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.mixer(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.context(x))


def frames_to_seconds(n_frames: int, frame_s: float, frame_step_s: float, epoch_s: float,
                      resolution_s: float = 1.0) -> torch.Tensor:
    """(seconds, frames) linear interpolation from frame centres to second centres in an epoch.

    Frame ``i`` covers ``[i·step, i·step + frame_s]``; a second outside the first or last frame
    centre takes that frame's value. Each row sums to 1.
    """
    centres = torch.arange(n_frames, dtype=torch.float64) * frame_step_s + frame_s / 2
    n_seconds = int(round(epoch_s / resolution_s))
    at = ((torch.arange(n_seconds, dtype=torch.float64) + 0.5) * resolution_s).clamp(centres[0], centres[-1])
    right = torch.searchsorted(centres, at).clamp(1, max(n_frames - 1, 1))
    left = right - 1 if n_frames > 1 else right * 0
    span = (centres[right] - centres[left]).clamp_min(1e-9)
    w_right = ((at - centres[left]) / span).clamp(0, 1) if n_frames > 1 else torch.zeros_like(at)
    out = torch.zeros(n_seconds, n_frames, dtype=torch.float64)
    rows = torch.arange(n_seconds)
    out[rows, left] += 1 - w_right
    out[rows, right] += w_right
    return out.float()


class SecondContextModule(TemporalContextModule):
    """Frame tokens of a window (B, S, F, d) → per-second logits (B, S, seconds, n_outputs).

    The epoch embeddings (mean frame token) get the context of :class:`TemporalContextModule`
    (its :meth:`~TemporalContextModule.context`); every frame token, joined to
    its epoch's context, goes through a small MLP, and the frame logits are interpolated to the
    seconds of the epoch (:func:`frames_to_seconds`). Respiratory events last 10–60 s, so the
    context across epochs matters as much as the 1-s detail.
    """

    to_seconds: torch.Tensor

    def __init__(self, in_dim: int, n_outputs: int, to_seconds: torch.Tensor,
                 config: TemporalConfig | None = None) -> None:
        config = config or TemporalConfig()
        super().__init__(in_dim, n_outputs, config)
        self.frame_norm = nn.LayerNorm(in_dim)
        self.head = nn.Sequential(  # per frame, in place of the per-epoch head
            nn.Linear(2 * in_dim, config.hidden), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, n_outputs))
        self.register_buffer("to_seconds", to_seconds, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        context = self.context(frames.mean(2))
        joined = torch.cat([self.frame_norm(frames), context[:, :, None].expand_as(frames)], dim=-1)
        logits = self.head(joined)  # (B, S, F, n_outputs)
        return torch.einsum("tf,bsfc->bstc", self.to_seconds.to(logits.dtype), logits)

"""Per-epoch classification heads: single epochs (probing) and 20-epoch context (fine-tuning)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import TransformerBlock, sincos_positions
from .mamba2 import Mamba2

__all__ = ["EpochHead", "TemporalContextModule"]

MIXERS = ("mamba2", "gru", "transformer")


class EpochHead(nn.Module):
    """MLP head on epoch embeddings: d → 256 → 256 → classes, BN, ELU, dropout (paper: 0.5).

    Accepts (B, d) or (B, S, d); BatchNorm runs over all epochs of the batch.
    """

    def __init__(self, in_dim: int, n_outputs: int, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return self.net(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)


class _Mixer(nn.Module):
    """One sequence mixer, optionally bidirectional (sum of a forward and a reversed pass)."""

    def __init__(self, kind: str, dim: int, bidirectional: bool, d_state: int, d_conv: int, expand: int,
                 n_heads: int, max_len: int) -> None:
        super().__init__()
        if kind not in MIXERS:
            raise ValueError(f"mixer must be one of {list(MIXERS)}, got {kind!r}")
        self.kind, self.bidirectional = kind, bidirectional
        if kind == "mamba2":
            self.fwd = Mamba2(dim, d_state=d_state, d_conv=d_conv, expand=expand)
            self.bwd = Mamba2(dim, d_state=d_state, d_conv=d_conv, expand=expand) if bidirectional else None
        elif kind == "gru":
            self.gru = nn.GRU(dim, dim // 2 if bidirectional else dim, batch_first=True, bidirectional=bidirectional)
        else:
            self.block = TransformerBlock(dim, n_heads)
            self.register_buffer("pos", sincos_positions(max_len, dim)[None], persistent=False)

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
    ``transformer`` can replace Mamba2 for comparison.
    """

    def __init__(self, in_dim: int, n_outputs: int, *, mixer: str = "mamba2", bidirectional: bool = False,
                 d_state: int = 16, d_conv: int = 4, expand: int = 2, n_heads: int = 8,
                 seq_len: int = 20, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.norm = nn.BatchNorm1d(in_dim)
        self.mixer = _Mixer(mixer, in_dim, bidirectional, d_state, d_conv, expand, n_heads, max(seq_len, 64))
        self.head = EpochHead(in_dim, n_outputs, hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.head(x + self.mixer(x))

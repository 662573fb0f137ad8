"""Per-epoch classification heads: single epochs (probing) and 20-epoch context (fine-tuning)."""

from __future__ import annotations

import torch
from torch import nn

from .._config import TemporalConfig
from .blocks import TransformerBlock, sincos_positions
from .mamba2 import Mamba2

__all__ = ["EpochHead", "TemporalContextModule"]


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
        self.head = EpochHead(in_dim, n_outputs, config.hidden, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.head(x + self.mixer(x))

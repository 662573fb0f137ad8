"""Shared layers: a pre-norm transformer block over fused attention, sin-cos positions, MLPs."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Mlp", "TransformerBlock", "init_vit_weights", "projection_mlp", "sincos_positions"]


class Attention(nn.Module):
    """Multi-head self-attention over ``F.scaled_dot_product_attention`` (fused kernels)."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """Two-layer GELU MLP of a transformer block (``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    The ViT block the paper uses (MLP ratio 4, LayerNorm eps 1e-6), written over PyTorch's
    fused attention instead of timm.
    """

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, n_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def sincos_positions(n_positions: int, dim: int) -> torch.Tensor:
    """Fixed 1-D sine-cosine position embedding, shape (n_positions, dim), float32 on the CPU.

    Computed with NumPy: a constant needs no autograd, and building a model on the ``meta``
    device (to check a checkpoint before allocating) then skips torch's decompositions.
    """
    if dim % 2:
        raise ValueError(f"position embedding dim must be even, got {dim}")
    position = np.arange(n_positions, dtype=np.float64)[:, None]
    omega = np.exp(-math.log(10000.0) * np.arange(0, dim // 2, dtype=np.float64) / (dim / 2))
    angles = position * omega[None, :]
    return torch.from_numpy(np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32))


def projection_mlp(sizes: list[int]) -> nn.Sequential:
    """Projector ``Linear → BN → ELU → ... → Linear`` for contrastive heads (sizes in order)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b), nn.ELU()]
    return nn.Sequential(*layers)


def init_vit_weights(module: nn.Module) -> None:
    """Xavier-uniform linear weights, zero biases, unit LayerNorms (the MAE/ViT recipe)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

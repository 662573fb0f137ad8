"""Random token masking (MAE style): keep a random subset per sample, remember how to restore."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Masked", "random_masking", "unshuffle"]


class Masked(NamedTuple):
    """Kept tokens (B, K, D), mask (B, L) with 1 = masked, and the indices that undo the shuffle."""

    kept: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor


def random_masking(x: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> Masked:
    """Keep ``int(L × (1 − ratio))`` random tokens of every sample (at least one).

    The noise comes from ``generator`` on its own device and moves to ``x``'s, so the same
    generator gives the same masks on a CPU and a GPU (the GPU check compares them).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    b, length, d = x.shape
    keep = max(int(length * (1 - ratio)), 1)
    source = generator.device if generator is not None else x.device
    noise = torch.rand(b, length, device=source, generator=generator).to(x.device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    kept = x.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, length, device=x.device, dtype=x.dtype)
    mask[:, :keep] = 0
    return Masked(kept, mask.gather(1, ids_restore), ids_restore)


def unshuffle(kept: torch.Tensor, mask_token: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """Put kept tokens back in place and fill the masked positions with ``mask_token``."""
    b, keep, d = kept.shape
    fill = mask_token.expand(b, ids_restore.shape[1] - keep, d)
    full = torch.cat([kept, fill], dim=1)
    return full.gather(1, ids_restore[..., None].expand(-1, -1, d))

"""Low-rank adapters (LoRA, Hu et al. 2021) for ``nn.Linear`` layers.

In-house rather than peft: it is a few lines, keeps state-dict keys plain (``base.weight``,
``lora_a``, ``lora_b``) so checkpoints load with ``strict=True`` without a wrapper class, works
unchanged under DDP, and adapters can be merged into the base weights for fast inference.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LoRALinear", "add_lora", "lora_parameters", "merge_lora"]


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) · B(A(x))`` with ``base`` frozen and B initialised to zero."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be ≥ 1, got {rank}")
        self.base = base
        self.scale = alpha / rank
        device, dtype = base.weight.device, base.weight.dtype  # adapters live with their layer
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=device, dtype=dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=device, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale


def add_lora(module: nn.Module, targets: tuple[str, ...], rank: int, alpha: float) -> list[str]:
    """Wrap every ``nn.Linear`` whose qualified name ends with one of ``targets``.

    Returns the wrapped names. Raises ValueError if nothing matched (a typo would otherwise
    silently train nothing).
    """
    wrapped = []
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.Linear) and name.endswith(targets):
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attr, LoRALinear(child, rank, alpha))
            wrapped.append(name)
    if not wrapped:
        raise ValueError(f"no nn.Linear ends with any of {targets}")
    return wrapped


def lora_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The adapter parameters of a module."""
    return [p for m in module.modules() if isinstance(m, LoRALinear) for p in (m.lora_a, m.lora_b)]


@torch.no_grad()
def merge_lora(module: nn.Module) -> None:
    """Fold every adapter into its base weight and replace the wrapper by the plain Linear."""
    for name, child in list(module.named_modules()):
        if isinstance(child, LoRALinear):
            child.base.weight += (child.lora_b @ child.lora_a) * child.scale
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attr, child.base)

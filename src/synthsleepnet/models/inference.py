"""Exact inference-time rewrites of a trained model: fewer operations, the same function.

Scoring runs a model many times and never trains it, so two kinds of layer can be folded away
after loading: every eval-mode BatchNorm into the convolution or linear layer before it (a
per-channel scale and shift of that layer's weights), and every LoRA adapter into its base
weight. Both are exact in real arithmetic; in floating point the outputs move by rounding only
(≈ 1e-6 relative in fp32), far inside bf16's tolerance. Measured on the ``fast`` preset the BatchNorms are ≈ 6 % of
the model's CPU time.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .lora import merge_lora

__all__ = ["fold_batchnorm", "fuse_for_inference"]

_Model = TypeVar("_Model", bound=nn.Module)
#: The BatchNorms that can be folded: 1-d after a Linear or a convolution on (N, C, L), 2-d after
#: the frame backbone's convolutions on (N, C, 1, L).
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _folded(layer: nn.Module, bn: nn.Module) -> nn.Module | None:
    """``layer`` with ``bn`` folded in, or None when the pair cannot be folded."""
    if not (isinstance(bn, _NORMS) and bn.track_running_stats and bn.running_mean is not None):
        return None
    if isinstance(layer, nn.Conv1d):
        return fuse_conv_bn_eval(layer, bn)
    # in a Sequential a BatchNorm1d right after a Linear sees (N, features): the Linear's outputs
    return fuse_linear_bn_eval(layer, bn) if isinstance(layer, nn.Linear) else None


def _fold_sequential(seq: nn.Sequential) -> None:
    for i in range(len(seq) - 1):
        folded = _folded(seq[i], seq[i + 1])
        if folded is not None:
            seq[i], seq[i + 1] = folded, nn.Identity()


def _fold_pairs(module: nn.Module) -> None:
    """The pairs a module declares in ``conv_bn_pairs`` (names of a layer and the BatchNorm applied
    straight to its output, as :class:`~.frame_backbone._SEResBlock` does): only the module knows
    its forward, so it says which pairs are adjacent."""
    for conv_name, bn_name in getattr(module, "conv_bn_pairs", ()):
        folded = _folded(getattr(module, conv_name), getattr(module, bn_name))
        if folded is not None:
            setattr(module, conv_name, folded)
            setattr(module, bn_name, nn.Identity())


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold each BatchNorm into the Conv1d or Linear that feeds it in a ``Sequential``, and in
    the pairs a module declares in ``conv_bn_pairs``; returns how many were folded.

    Raises
    ------
    ValueError
        If the model is in training mode (its BatchNorms normalise with batch statistics, which
        cannot be folded).
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (call model.eval() first)")
    before = sum(isinstance(m, _NORMS) for m in model.modules())
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
        else:
            _fold_pairs(module)
    return before - sum(isinstance(m, _NORMS) for m in model.modules())


def fuse_for_inference(model: _Model) -> _Model:
    """``model`` in eval mode with its BatchNorms and LoRA adapters folded in, frozen; for scoring
    only (it can no longer be fine-tuned the same way)."""
    model.eval()
    merge_lora(model)
    fold_batchnorm(model)
    model.requires_grad_(False)
    return model

"""A complete scorer: SynthSleepNet encoders + fusion + an epoch head or a temporal context module.

One model, one checkpoint: scoring a night needs nothing else (no training store, no separate
encoder files).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .lora import add_lora
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, TemporalContextModule

__all__ = ["FINETUNE_LORA_TARGETS", "SleepClassifier"]

#: Where fine-tuning adds adapters: each encoder's frame-feature MLP and the last fusion block's MLP.
FINETUNE_LORA_TARGETS = ("backbone.mlp.0", "backbone.mlp.2")


class SleepClassifier(nn.Module):
    """Epoch (``context="epoch"``) or 20-epoch sequence (``context="sequence"``) classifier.

    Parameters
    ----------
    fusion : dict
        Keyword arguments of :class:`SynthSleepNet`.
    n_outputs : int
        Classes (5 stages, or 2 for apnea / hypopnea).
    context : str
        ``"epoch"``: frozen fusion + :class:`EpochHead` on single epochs (linear probing);
        ``"sequence"``: fusion with new LoRA adapters + :class:`TemporalContextModule`
        (fine-tuning).
    head : dict
        Keyword arguments of the head (``EpochHead`` or ``TemporalContextModule``) besides
        ``in_dim`` and ``n_outputs``.
    finetune_lora : dict | None
        ``{"rank", "alpha"}`` of the fine-tuning adapters (paper: 4, 8); sequence context only.
    """

    def __init__(self, *, fusion: dict[str, Any], n_outputs: int, context: str = "epoch",
                 head: dict[str, Any] | None = None, finetune_lora: dict[str, Any] | None = None) -> None:
        super().__init__()
        if context not in ("epoch", "sequence"):
            raise ValueError(f"context must be 'epoch' or 'sequence', got {context!r}")
        self.context = context
        self.fusion = SynthSleepNet(**fusion)
        self.fusion.requires_grad_(False)
        self.fusion.eval()  # frozen from the start: an epoch's embedding never depends on its batch
        if finetune_lora:
            last = f"fusion.{len(self.fusion.fusion) - 1}.mlp"
            add_lora(self.fusion, FINETUNE_LORA_TARGETS + (f"{last}.fc1", f"{last}.fc2"),
                     finetune_lora["rank"], finetune_lora["alpha"])
        dim = self.fusion.fusion_dim
        head = dict(head or {})
        self.head: nn.Module = (EpochHead(dim, n_outputs, **head) if context == "epoch"
                                else TemporalContextModule(dim, n_outputs, **head))

    @property
    def channels(self) -> list[str]:
        return self.fusion.channels

    def train(self, mode: bool = True) -> SleepClassifier:
        """The fusion model stays in eval mode: its BatchNorm statistics are pretrained, not refit."""
        super().train(mode)
        self.fusion.eval()
        return self

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Epoch embeddings: (B, d) for (B, T) inputs, (B, S, d) for (B, S, T) inputs."""
        first = next(iter(inputs.values()))
        if first.dim() == 2:
            return self.fusion.embed(inputs)
        b, s = first.shape[:2]
        flat = {c: x.reshape(b * s, -1) for c, x in inputs.items()}
        return self.fusion.embed(flat).reshape(b, s, -1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, n_outputs) or (B, S, n_outputs)."""
        return self.head(self.embed(inputs))

    @torch.inference_mode()
    def predict_proba(self, night: Mapping[str, np.ndarray | torch.Tensor], *, batch_size: int = 32,
                      bf16: bool = True) -> np.ndarray:
        """Class probabilities (E, n_outputs) for a whole night given as ``{channel: (E, T)}``.

        Sequence models see windows of ``seq_len`` epochs with stride ``seq_len``; the last window
        is aligned to the night's end and epochs covered twice get the mean of both predictions.
        Channels the model knows but the night lacks are simply not used.
        """
        self.eval()
        inputs = {c: torch.as_tensor(np.asarray(x, dtype=np.float32)) for c, x in night.items() if c in self.channels}
        if not inputs:
            raise ValueError(f"the night has none of the model's channels {self.channels}")
        n_epochs = next(iter(inputs.values())).shape[0]
        use_bf16 = bf16 and torch.backends.mkldnn.is_available()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            if self.context == "epoch":
                chunks = [torch.softmax(self({c: x[i:i + batch_size] for c, x in inputs.items()}).float(), -1)
                          for i in range(0, n_epochs, batch_size)]
                return torch.cat(chunks).numpy()
            length = min(self.head.seq_len, n_epochs)  # type: ignore[union-attr]  # short nights: one window
            starts = list(range(0, n_epochs - length + 1, length))
            if starts[-1] != n_epochs - length:
                starts.append(n_epochs - length)
            total = torch.zeros(n_epochs, self.head.head.net[-1].out_features)  # type: ignore[union-attr,index]
            count = torch.zeros(n_epochs, 1)
            per_batch = max(batch_size // length, 1)
            for i in range(0, len(starts), per_batch):
                group = starts[i:i + per_batch]
                batch = {c: torch.stack([x[s:s + length] for s in group]) for c, x in inputs.items()}
                probs = torch.softmax(self(batch).float(), -1)
                for s, p in zip(group, probs, strict=True):
                    total[s:s + length] += p
                    count[s:s + length] += 1
        return (total / count).numpy()

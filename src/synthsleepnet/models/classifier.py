"""A complete scorer: SynthSleepNet encoders + fusion + an epoch head or a temporal context module.

One model, one checkpoint: scoring a night needs nothing else (no training store, no separate
encoder files).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .._config import AdaptConfig, Context, ModelConfig
from .._device import Runtime
from .lora import add_lora
from .synthsleepnet import SynthSleepNet
from .temporal import EpochHead, SecondContextModule, TemporalContextModule, frames_to_seconds

__all__ = ["SleepClassifier"]


class SleepClassifier(nn.Module):
    """Epoch (``context="epoch"``) or sequence (``context="sequence"``) classifier.

    Parameters
    ----------
    channels : sequence of str
        Canonical channels, one encoder each.
    config : ModelConfig
        Encoder, fusion and temporal sizes.
    n_outputs : int
        Classes (5 stages, or 2 for apnea / hypopnea).
    context : str
        ``"epoch"``: frozen fusion + :class:`EpochHead` on single epochs (linear probing);
        ``"sequence"``: fusion with new LoRA adapters + :class:`TemporalContextModule` over
        ``config.temporal.seq_len`` epochs (fine-tuning).
    adapt : AdaptConfig | None
        The fine-tuning adapters (paper: rank 4, alpha 8 on each encoder's frame MLP and the last
        fusion block's MLP); sequence context only.
    resolution_s : float | None
        Predict every ``resolution_s`` seconds (:class:`SecondContextModule` on the fused frame
        tokens; sequence context only) instead of once per epoch.
    """

    def __init__(self, channels: Sequence[str], config: ModelConfig, n_outputs: int, context: Context = "epoch",
                 adapt: AdaptConfig | None = None, resolution_s: float | None = None) -> None:
        super().__init__()
        if context not in ("epoch", "sequence"):
            raise ValueError(f"context must be 'epoch' or 'sequence', got {context!r}")
        if resolution_s is not None and context != "sequence":
            raise ValueError("per-second predictions need the sequence context (fine-tuning), not single epochs")
        self.context = context
        self.n_outputs = n_outputs
        self.resolution_s = resolution_s
        self.fusion = SynthSleepNet(channels, config.encoder, config.fusion)
        self.fusion.requires_grad_(False)
        self.fusion.eval()  # frozen from the start: an epoch's embedding never depends on its batch
        if context == "sequence":
            adapt = adapt or AdaptConfig()
            targets = adapt.lora_targets
            if adapt.lora_last_fusion_mlp:
                last = f"fusion.{len(self.fusion.fusion) - 1}.mlp"
                targets += (f"{last}.fc1", f"{last}.fc2")
            add_lora(self.fusion, targets, adapt.lora_rank, adapt.lora_alpha)
        dim = self.fusion.fusion_dim
        self.seq_len = config.temporal.seq_len if context == "sequence" else 1
        self.head: nn.Module
        if resolution_s is not None:
            enc = config.encoder
            frames = frames_to_seconds(enc.n_frames, enc.frame_s, enc.frame_step_s, enc.epoch_s, resolution_s)
            self.head = SecondContextModule(dim, n_outputs, frames, config.temporal)
        elif context == "epoch":
            self.head = EpochHead(dim, n_outputs, config.temporal.hidden, config.temporal.dropout)
        else:
            self.head = TemporalContextModule(dim, n_outputs, config.temporal)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one epoch's output: (classes,) or (seconds, classes)."""
        if not isinstance(self.head, SecondContextModule):
            return (self.n_outputs,)
        return (int(self.head.to_seconds.shape[0]), self.n_outputs)

    @property
    def channels(self) -> list[str]:
        return self.fusion.channels

    def train(self, mode: bool = True) -> SleepClassifier:
        """The fusion model stays in eval mode: its BatchNorm statistics are pretrained, not refit.
        (Its thousand modules are not walked on every switch: a probe switches twice an epoch.)"""
        self.training = mode
        for child in self.children():
            if child is not self.fusion:
                child.train(mode)
        if self.fusion.training:
            self.fusion.eval()
        return self

    def embed(self, inputs: Mapping[str, torch.Tensor], *, conv: bool = False) -> torch.Tensor:
        """Epoch embeddings: (B, d) for (B, T) inputs, (B, S, d) for (B, S, T) inputs; with
        ``conv``, from cached convolution features (B, [S,] F, n_conv) instead of samples."""
        first = next(iter(inputs.values()))
        item_dims = 3 if conv else 2
        if first.dim() == item_dims:  # single epochs, not sequences
            return self.fusion.embed(inputs, conv=conv)
        b, s = first.shape[:2]
        flat = {c: x.reshape(b * s, *x.shape[2:]) for c, x in inputs.items()}
        return self.fusion.embed(flat, conv=conv).reshape(b, s, -1)

    def forward(self, inputs: Mapping[str, torch.Tensor], *, conv: bool = False) -> torch.Tensor:
        """Logits (B, n_outputs) or (B, S, n_outputs), per second (B, S, seconds, n_outputs);
        see :meth:`embed` for ``conv``."""
        if self.resolution_s is None:
            return self.head(self.embed(inputs, conv=conv))
        first = next(iter(inputs.values()))
        b, s = first.shape[:2]
        flat = {c: x.reshape(b * s, *x.shape[2:]) for c, x in inputs.items()}
        frames = self.fusion.frame_tokens(flat, conv=conv)
        return self.head(frames.reshape(b, s, *frames.shape[1:]))

    def window_starts(self, n_epochs: int) -> list[int]:
        """Starts of the evaluation windows: stride ``seq_len``, the last one end-aligned."""
        length = min(self.seq_len, n_epochs)
        starts = list(range(0, n_epochs - length + 1, length))
        if starts[-1] != n_epochs - length:
            starts.append(n_epochs - length)
        return starts

    @torch.inference_mode()
    def predict_proba(self, night: Mapping[str, np.ndarray | torch.Tensor], *, runtime: Runtime | None = None,
                      batch_size: int = 160, conv: bool = False) -> np.ndarray:
        """Class probabilities (E, n_outputs), or (E, seconds, n_outputs) for a per-second model,
        float32 on the CPU, for a night as ``{channel: (E, T)}``.

        Sequence models see windows of ``seq_len`` epochs (:meth:`window_starts`); epochs covered
        twice get the mean of both predictions. Channels the model knows but the night lacks are
        not used. Inputs move to ``runtime.device`` batch by batch (default: the model's device,
        fp32). With ``conv`` the night is given as cached convolution features (E, F, n_conv).
        ``batch_size`` epochs go through the model at once: 160 measured 10–12 % faster than 320
        for ``fast`` and ``small`` on a 2-core CPU, level for ``tiny`` (``benchmarks/model_call.py``);
        the probabilities do not depend on it.
        """
        self.eval()
        device = next(self.parameters()).device
        runtime = runtime or Runtime(device, None)
        inputs = {c: x.float() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
                  for c, x in night.items() if c in self.channels}
        if not inputs:
            raise ValueError(f"the night has none of the model's channels {self.channels}")
        n_epochs = next(iter(inputs.values())).shape[0]

        def run(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            moved = {c: x.to(runtime.device, non_blocking=True) for c, x in batch.items()}
            with runtime.autocast():
                return torch.softmax(self(moved, conv=conv).float(), -1).cpu()

        if self.context == "epoch":
            chunks = [run({c: x[i:i + batch_size] for c, x in inputs.items()}) for i in range(0, n_epochs, batch_size)]
            return torch.cat(chunks).numpy()
        length = min(self.seq_len, n_epochs)  # short nights: one window
        starts = self.window_starts(n_epochs)
        total = torch.zeros(n_epochs, *self.output_shape)
        count = torch.zeros(n_epochs, *(1 for _ in self.output_shape))
        per_batch = max(batch_size // length, 1)
        for i in range(0, len(starts), per_batch):
            group = starts[i:i + per_batch]
            probs = run({c: torch.stack([x[s:s + length] for s in group]) for c, x in inputs.items()})
            for s, p in zip(group, probs, strict=True):
                total[s:s + length] += p
                count[s:s + length] += 1
        return (total / count).numpy()

"""SynthSleepNet: multimodal fusion of per-channel NeuroNet encoders.

One NeuroNet encoder per channel (initialised from its modality's pretrained NeuroNet; C4-M1
and C3-M2 both from the EEG one), adapted with LoRA (paper: rank 4, alpha 16, on the attention
output projections), everything else in it frozen. Its frame tokens are projected to the fusion
width, given a learned per-channel token and fixed positions, masked per channel (paper: 0.4),
and the kept tokens of all channels go through one shared transformer. Pretext: per-channel
decoders reconstruct that channel's NeuroNet tokens at its masked positions, and the mean fused
token is contrasted with each channel's mean NeuroNet token (NT-Xent).

Unlike the reference code, each decoder receives exactly its own channel's block of fused tokens,
and any subset of channels can be encoded (a clinic without ECG is still scored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from .blocks import TransformerBlock, init_vit_weights, projection_mlp, sincos_positions
from .lora import add_lora
from .masking import random_masking, unshuffle
from .neuronet import NeuroNetEncoder

__all__ = ["SynthSleepNet", "SynthSleepNetPretext"]


def _key(channel: str) -> str:
    return channel.replace("-", "_").replace(".", "_")


class _TokenProjection(nn.Module):
    """Linear → BatchNorm over tokens → ELU → Linear."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.fc1, self.bn, self.act, self.fc2 = nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ELU(), nn.Linear(d_out, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        return self.fc2(self.act(self.bn(x.transpose(1, 2)).transpose(1, 2)))


class SynthSleepNetPretext(NamedTuple):
    """Per-channel targets, predictions and masks, and the fused and per-channel projections."""

    targets: dict[str, torch.Tensor]
    predictions: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    fused_projection: torch.Tensor
    channel_projections: dict[str, torch.Tensor]


class SynthSleepNet(nn.Module):
    """Multimodal fusion model.

    Parameters
    ----------
    channels : sequence of str
        Canonical channels, one encoder each (paper: C4-M1, E1-M2, Chin, ECG).
    encoder : dict
        Keyword arguments of :class:`NeuroNetEncoder` (shared by all channels).
    fusion_dim, fusion_depth, fusion_heads : int
        Shared transformer (paper: 512, 4, 8).
    decoder_dim, decoder_depth, decoder_heads : int
        Per-channel decoders (paper: 256, 3, 8).
    projection : tuple of int
        Contrastive projector sizes after the input width (paper: 512, 256).
    mask_ratio : float
        Fraction of each channel's tokens masked in pretraining (paper: 0.4).
    lora_rank, lora_alpha : int, float
        Encoder adapters (paper: 4, 16); 0 rank trains nothing in the encoders.
    lora_targets : tuple of str
        Names of the encoder linears that get adapters (paper: attention output projections).
    """

    def __init__(self, channels: Sequence[str], *, encoder: dict[str, Any] | None = None,
                 fusion_dim: int = 512, fusion_depth: int = 4, fusion_heads: int = 8,
                 decoder_dim: int = 256, decoder_depth: int = 3, decoder_heads: int = 8,
                 projection: tuple[int, ...] = (512, 256), mask_ratio: float = 0.4,
                 lora_rank: int = 4, lora_alpha: float = 16.0,
                 lora_targets: tuple[str, ...] = ("attn.proj",)) -> None:
        super().__init__()
        if not channels:
            raise ValueError("SynthSleepNet needs at least one channel")
        self.channels = list(channels)
        self.mask_ratio = mask_ratio
        self.encoders = nn.ModuleDict({_key(c): NeuroNetEncoder(**(encoder or {})) for c in self.channels})
        first = next(iter(self.encoders.values()))
        n_frames, embed_dim = first.n_frames, first.embed_dim
        self.n_frames, self.embed_dim, self.fusion_dim = n_frames, embed_dim, fusion_dim
        for enc in self.encoders.values():
            enc.requires_grad_(False)
            if lora_rank > 0:
                add_lora(enc, lora_targets, lora_rank, lora_alpha)
        self.token_proj = nn.ModuleDict({_key(c): _TokenProjection(embed_dim, fusion_dim) for c in self.channels})
        self.channel_token = nn.ParameterDict({_key(c): nn.Parameter(torch.zeros(1, n_frames, fusion_dim))
                                               for c in self.channels})
        self.register_buffer("pos_embed", sincos_positions(n_frames, fusion_dim)[None], persistent=False)
        self.fusion = nn.ModuleList(TransformerBlock(fusion_dim, fusion_heads) for _ in range(fusion_depth))
        self.fusion_norm = nn.LayerNorm(fusion_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(fusion_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos", sincos_positions(n_frames, decoder_dim)[None], persistent=False)
        self.decoders = nn.ModuleDict({
            _key(c): nn.Sequential(*[TransformerBlock(decoder_dim, decoder_heads) for _ in range(decoder_depth)],
                                   nn.LayerNorm(decoder_dim, eps=1e-6), nn.Linear(decoder_dim, embed_dim))
            for c in self.channels})
        self.fused_projector = projection_mlp([fusion_dim, *projection])
        self.channel_projectors = nn.ModuleDict({_key(c): projection_mlp([embed_dim, *projection])
                                                 for c in self.channels})
        fresh = [self.token_proj, self.fusion, self.fusion_norm, self.decoder_embed, self.decoders,
                 self.fused_projector, self.channel_projectors]
        for module in fresh:
            init_vit_weights(module)
        for token in [self.mask_token, *self.channel_token.values()]:
            nn.init.normal_(token, std=0.02)

    def _check(self, inputs: Mapping[str, torch.Tensor]) -> list[str]:
        unknown = sorted(set(inputs) - set(self.channels))
        if unknown or not inputs:
            raise ValueError(f"inputs must be a non-empty subset of the model's channels {self.channels}, "
                             f"got {sorted(inputs)}")
        return [c for c in self.channels if c in inputs]

    def channel_tokens(self, channel: str, x: torch.Tensor) -> torch.Tensor:
        """A channel's NeuroNet frame tokens (B, F, embed_dim), CLS dropped."""
        return self.encoders[_key(channel)](x)[:, 1:]

    def _fusion_input(self, channel: str, tokens: torch.Tensor) -> torch.Tensor:
        k = _key(channel)
        return self.token_proj[k](tokens) + self.channel_token[k] + self.pos_embed

    def _fuse(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.fusion:
            x = block(x)
        return self.fusion_norm(x)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Fused tokens (B, n_present × F, fusion_dim) of the channels given, without masking."""
        present = self._check(inputs)
        x = torch.cat([self._fusion_input(c, self.channel_tokens(c, inputs[c])) for c in present], dim=1)
        return self._fuse(x)

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The epoch embedding: mean of the fused tokens, (B, fusion_dim)."""
        return self(inputs).mean(dim=1)

    def pretext(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> SynthSleepNetPretext:
        """Mask each channel independently, fuse the kept tokens, decode each channel's block."""
        present = self._check(inputs)
        targets, kept, masks, restores = {}, [], {}, {}
        for c in present:
            tokens = self.channel_tokens(c, inputs[c])
            targets[c] = tokens
            masked = random_masking(self._fusion_input(c, tokens), self.mask_ratio, generator)
            kept.append(masked.kept)
            masks[c], restores[c] = masked.mask, masked.ids_restore
        fused = self._fuse(torch.cat(kept, dim=1))
        predictions = {}
        for c, block in zip(present, fused.split([k.shape[1] for k in kept], dim=1), strict=True):
            x = unshuffle(self.decoder_embed(block), self.mask_token, restores[c]) + self.decoder_pos
            predictions[c] = self.decoders[_key(c)](x)
        channel_projections = {c: self.channel_projectors[_key(c)](targets[c].mean(dim=1)) for c in present}
        return SynthSleepNetPretext({c: t.detach() for c, t in targets.items()}, predictions, masks,
                                    self.fused_projector(fused.mean(dim=1)), channel_projections)

    def load_encoder(self, channel: str, state: Mapping[str, torch.Tensor]) -> None:
        """Initialise one channel's encoder from a pretrained NeuroNet encoder's state dict."""
        target = self.encoders[_key(channel)]
        mapped = {}
        for name in target.state_dict():
            source = name.replace(".base.", ".")
            if name.endswith(("lora_a", "lora_b")):
                continue
            if source not in state:
                raise KeyError(f"pretrained encoder for {channel} lacks {source!r}")
            mapped[name] = state[source]
        missing = target.load_state_dict(mapped, strict=False).missing_keys
        if any(not k.endswith(("lora_a", "lora_b")) for k in missing):
            raise KeyError(f"could not load {channel} encoder: missing {missing}")

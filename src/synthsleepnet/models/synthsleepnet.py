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
from typing import NamedTuple, cast

import torch
from torch import nn

from .._config import EncoderConfig, FusionConfig
from .._validation import CheckpointError
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
    encoder : EncoderConfig
        The per-channel NeuroNet encoders (all the same size).
    fusion : FusionConfig
        Shared transformer, per-channel decoders, projector, mask ratio and encoder LoRA
        (paper: 512 wide, 4 blocks, 8 heads; decoders 256, 3 blocks; projector 512, 256;
        masking 0.4; LoRA rank 4, alpha 16 on the attention output projections).
    """

    pos_embed: torch.Tensor
    decoder_pos: torch.Tensor

    def __init__(self, channels: Sequence[str], encoder: EncoderConfig | None = None,
                 fusion: FusionConfig | None = None) -> None:
        super().__init__()
        if not channels:
            raise ValueError("SynthSleepNet needs at least one channel")
        fusion = fusion or FusionConfig()
        encoder = encoder or EncoderConfig()
        self.channels = list(channels)
        self.mask_ratio = fusion.mask_ratio
        self.encoders = nn.ModuleDict({_key(c): NeuroNetEncoder(encoder) for c in self.channels})
        n_frames, embed_dim = encoder.n_frames, encoder.embed_dim
        fusion_dim, decoder_dim = fusion.fusion_dim, fusion.decoder_dim
        self.n_frames, self.embed_dim, self.fusion_dim = n_frames, embed_dim, fusion_dim
        for enc in self.encoders.values():
            enc.requires_grad_(False)
            if fusion.lora_rank > 0:
                add_lora(enc, fusion.lora_targets, fusion.lora_rank, fusion.lora_alpha)
        self.token_proj = nn.ModuleDict({_key(c): _TokenProjection(embed_dim, fusion_dim) for c in self.channels})
        self.channel_token = nn.ParameterDict({_key(c): nn.Parameter(torch.zeros(1, n_frames, fusion_dim))
                                               for c in self.channels})
        self.register_buffer("pos_embed", sincos_positions(n_frames, fusion_dim)[None], persistent=False)
        self.fusion = nn.ModuleList(TransformerBlock(fusion_dim, fusion.fusion_heads)
                                    for _ in range(fusion.fusion_depth))
        self.fusion_norm = nn.LayerNorm(fusion_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(fusion_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos", sincos_positions(n_frames, decoder_dim)[None], persistent=False)
        self.decoders = nn.ModuleDict({
            _key(c): nn.Sequential(*[TransformerBlock(decoder_dim, fusion.decoder_heads)
                                     for _ in range(fusion.decoder_depth)],
                                   nn.LayerNorm(decoder_dim, eps=1e-6), nn.Linear(decoder_dim, embed_dim))
            for c in self.channels})
        self.fused_projector = projection_mlp([fusion_dim, *fusion.projection])
        self.channel_projectors = nn.ModuleDict({_key(c): projection_mlp([embed_dim, *fusion.projection])
                                                 for c in self.channels})
        fresh = [self.token_proj, self.fusion, self.fusion_norm, self.decoder_embed, self.decoders,
                 self.fused_projector, self.channel_projectors]
        for module in fresh:
            init_vit_weights(module)
        for token in [self.mask_token, *self.channel_token.values()]:
            nn.init.trunc_normal_(token, std=0.02)

    def _check(self, inputs: Mapping[str, torch.Tensor]) -> list[str]:
        unknown = sorted(set(inputs) - set(self.channels))
        if unknown or not inputs:
            raise ValueError(f"inputs must be a non-empty subset of the model's channels {self.channels}, "
                             f"got {sorted(inputs)}")
        return [c for c in self.channels if c in inputs]

    def encoder(self, channel: str) -> NeuroNetEncoder:
        """The NeuroNet encoder of one channel."""
        return cast(NeuroNetEncoder, self.encoders[_key(channel)])

    def channel_tokens(self, channel: str, x: torch.Tensor, *, conv: bool = False) -> torch.Tensor:
        """A channel's NeuroNet frame tokens (B, F, embed_dim), CLS dropped; from epochs (B, T), or
        with ``conv`` from cached convolution features (B, F, n_conv)."""
        encoder = self.encoder(channel)
        return (encoder.from_conv(x) if conv else encoder(x))[:, 1:]

    def _fusion_input(self, channel: str, tokens: torch.Tensor) -> torch.Tensor:
        k = _key(channel)
        return self.token_proj[k](tokens) + self.channel_token[k] + self.pos_embed

    def _fuse(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.fusion:
            x = block(x)
        return self.fusion_norm(x)

    def forward(self, inputs: Mapping[str, torch.Tensor], *, conv: bool = False) -> torch.Tensor:
        """Fused tokens (B, n_present × F, fusion_dim) of the channels given, without masking."""
        present = self._check(inputs)
        x = torch.cat([self._fusion_input(c, self.channel_tokens(c, inputs[c], conv=conv)) for c in present], dim=1)
        return self._fuse(x)

    def embed(self, inputs: Mapping[str, torch.Tensor], *, conv: bool = False) -> torch.Tensor:
        """The epoch embedding: mean of the fused tokens, (B, fusion_dim)."""
        return self(inputs, conv=conv).mean(dim=1)

    def frame_tokens(self, inputs: Mapping[str, torch.Tensor], *, conv: bool = False) -> torch.Tensor:
        """Fused tokens averaged over the channels at each frame position, (B, F, fusion_dim):
        the 1-s detail that per-second heads read (their mean is :meth:`embed`)."""
        fused = self(inputs, conv=conv)
        return fused.reshape(fused.shape[0], -1, self.n_frames, fused.shape[-1]).mean(dim=1)

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
        wanted = target.state_dict()
        mapped = {}
        for name, tensor in wanted.items():
            source = name.replace(".base.", ".")
            if name.endswith(("lora_a", "lora_b")):
                continue
            if source not in state:
                raise CheckpointError(f"the pretrained encoder for {channel} lacks the weight {source!r}; "
                                      "was it pretrained with the same model preset?")
            if state[source].shape != tensor.shape:
                raise CheckpointError(f"the pretrained encoder for {channel} has {source!r} of shape "
                                      f"{tuple(state[source].shape)}, this model needs {tuple(tensor.shape)}")
            mapped[name] = state[source]
        target.load_state_dict(mapped, strict=False)

"""NeuroNet: a single-modality self-supervised encoder of 30-s epochs.

Frame features from the frame backbone are embedded, given a CLS token and fixed sin-cos
positions, and encoded by a transformer. Pretext (Lee et al., NeuroNet, arXiv:2404.17585): two
independent random maskings (paper ratio 0.8) of the same epoch; an MAE decoder reconstructs the
masked frame features of each view; the two CLS tokens are projected for an NT-Xent loss.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .._config import EncoderConfig, NeuroNetConfig
from .blocks import TransformerBlock, init_vit_weights, projection_mlp, sincos_positions
from .frame_backbone import ContinuousFrameBackbone, FrameBackbone, make_frames
from .masking import random_masking, unshuffle

__all__ = ["NeuroNet", "NeuroNetEncoder", "NeuroNetPretext"]


class NeuroNetEncoder(nn.Module):
    """Epoch (B, T) → tokens (B, 1 + F, embed_dim), CLS first.

    Parameters
    ----------
    config : EncoderConfig
        Rate, epoch and frame lengths in seconds, backbone and transformer sizes (paper: 100 Hz,
        30-s epochs, 4-s frames every 1 s, 768 wide, 4 blocks, 8 heads).
    """

    pos_embed: torch.Tensor

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        config = config or EncoderConfig()
        self.sfreq, self.epoch_s = config.sfreq, config.epoch_s
        self.frame_samples, self.step_samples = config.frame_samples, config.step_samples
        self.epoch_samples, self.n_frames = config.epoch_samples, config.n_frames
        self.embed_dim = config.embed_dim
        self.continuous = config.frames == "continuous"
        self.backbone: FrameBackbone | ContinuousFrameBackbone = (
            ContinuousFrameBackbone(self.epoch_samples, self.frame_samples, self.step_samples, config.backbone)
            if self.continuous else FrameBackbone(self.frame_samples, config.backbone))
        self.patch_embed = nn.Linear(self.backbone.n_features, self.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        self.register_buffer("pos_embed", sincos_positions(self.n_frames + 1, self.embed_dim)[None],
                             persistent=False)
        self.blocks = nn.ModuleList(TransformerBlock(self.embed_dim, config.n_heads) for _ in range(config.depth))
        self.norm = nn.LayerNorm(self.embed_dim, eps=1e-6)
        init_vit_weights(self)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) → (B, F, n_conv): the convolutions, frozen in fine-tuning (and so cacheable)."""
        if x.shape[-1] != self.epoch_samples:
            raise ValueError(f"expected epochs of {self.epoch_samples} samples "
                             f"({self.epoch_s:g} s at {self.sfreq:g} Hz), got {x.shape[-1]}")
        if self.continuous:
            return self.backbone.conv(x)
        return self.backbone.conv(make_frames(x, self.frame_samples, self.step_samples))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) → (B, F, n_features)."""
        return self.backbone.mlp(self.conv_features(x))

    def from_conv(self, conv: torch.Tensor) -> torch.Tensor:
        """Tokens (B, 1 + F, embed_dim) from cached :meth:`conv_features`."""
        return self.encode_tokens(self.embed(self.backbone.mlp(conv)))

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend CLS and run the transformer on already embedded, positioned tokens."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Frame features → embedded tokens with positions (no CLS)."""
        return self.patch_embed(features) + self.pos_embed[:, 1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_conv(self.conv_features(x))


class NeuroNetPretext(NamedTuple):
    """Everything the NeuroNet losses need: targets, two reconstructions, masks, projections."""

    target: torch.Tensor
    predictions: tuple[torch.Tensor, torch.Tensor]
    masks: tuple[torch.Tensor, torch.Tensor]
    projections: tuple[torch.Tensor, torch.Tensor]


class NeuroNet(nn.Module):
    """NeuroNet encoder with its MAE decoder and contrastive projector (pretraining model).

    Parameters
    ----------
    encoder : EncoderConfig
        The encoder (see :class:`NeuroNetEncoder`).
    pretext : NeuroNetConfig
        Decoder and projector sizes, mask ratio and loss settings (paper: decoder 256 wide,
        3 blocks, 8 heads; projector 1024, 512; mask ratio 0.8; NT-Xent temperature 0.05).
    """

    decoder_pos: torch.Tensor

    def __init__(self, encoder: EncoderConfig | None = None, pretext: NeuroNetConfig | None = None) -> None:
        super().__init__()
        pretext = pretext or NeuroNetConfig()
        self.encoder = NeuroNetEncoder(encoder)
        n_frames, n_features = self.encoder.n_frames, self.encoder.backbone.n_features
        self.mask_ratio = pretext.mask_ratio
        dim = pretext.decoder_dim
        self.decoder_embed = nn.Linear(self.encoder.embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("decoder_pos", sincos_positions(n_frames, dim)[None], persistent=False)
        self.decoder = nn.ModuleList(TransformerBlock(dim, pretext.decoder_heads) for _ in range(pretext.decoder_depth))
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dim, n_features)
        self.projector = projection_mlp([self.encoder.embed_dim, *pretext.projection])
        init_vit_weights(self.decoder)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder tokens without masking, (B, 1 + F, embed_dim)."""
        return self.encoder(x)

    def _view(self, features: torch.Tensor, generator: torch.Generator | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        masked = random_masking(self.encoder.embed(features), self.mask_ratio, generator)
        latent = self.encoder.encode_tokens(masked.kept)
        x = unshuffle(self.decoder_embed(latent[:, 1:]), self.mask_token, masked.ids_restore)
        x = x + self.decoder_pos
        for block in self.decoder:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x)), masked.mask, self.projector(latent[:, 0])

    def pretext(self, x: torch.Tensor, generator: torch.Generator | None = None) -> NeuroNetPretext:
        """Two masked views of epochs (B, T): reconstructions, masks and CLS projections."""
        features = self.encoder.frame_features(x)
        pred1, mask1, z1 = self._view(features, generator)
        pred2, mask2, z2 = self._view(features, generator)
        return NeuroNetPretext(features, (pred1, pred2), (mask1, mask2), (z1, z2))

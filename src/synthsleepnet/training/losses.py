"""Training losses: masked reconstruction and NT-Xent (and the pretraining models' combined
losses), and the distillation loss that teaches a student a teacher's predictions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._config import FusionConfig, NeuroNetConfig
from ..models.neuronet import NeuroNetPretext
from ..models.synthsleepnet import SynthSleepNetPretext

__all__ = ["distillation_loss", "masked_mse", "neuronet_loss", "nt_xent", "synthsleepnet_loss"]


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over masked tokens only.

    ``prediction`` and ``target`` are (B, L, D); ``mask`` is (B, L) with 1 where a token was masked.
    Each token's error is averaged over D, then over the masked tokens.
    """
    per_token = (prediction - target).pow(2).mean(dim=-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR; Chen et al. 2020).

    Each of the 2B projections must pick its partner among the other 2B − 1 by cosine
    similarity / temperature; the loss is the mean cross entropy over all 2B.
    """
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = z1.shape[0]
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n, device=z.device), torch.arange(0, n, device=z.device)])
    return F.cross_entropy(logits, targets)


def neuronet_loss(out: NeuroNetPretext, config: NeuroNetConfig) -> dict[str, torch.Tensor]:
    """NeuroNet: reconstruction of both views + α · NT-Xent of the CLS projections (paper: τ 0.05, α 1)."""
    recon = torch.stack([masked_mse(p, out.target, m) for p, m in zip(out.predictions, out.masks, strict=True)]).sum()
    contrast = nt_xent(*out.projections, config.temperature)
    return {"loss": recon + config.alpha * contrast, "reconstruction": recon, "contrastive": contrast}


def synthsleepnet_loss(out: SynthSleepNetPretext, config: FusionConfig) -> dict[str, torch.Tensor]:
    """SynthSleepNet: masked token reconstruction over channels + α · mean cross-modal NT-Xent.

    Reconstruction pools the masked tokens of all channels; the contrast pairs the mean fused
    token with each channel's mean NeuroNet token (paper: τ 0.1, α 1).
    """
    errors = [(out.predictions[c] - out.targets[c]).pow(2).mean(-1) * out.masks[c] for c in out.targets]
    recon = torch.stack([e.sum() for e in errors]).sum() / torch.stack(
        [out.masks[c].sum() for c in out.targets]).sum().clamp(min=1)
    contrast = torch.stack([nt_xent(out.fused_projection, z, config.temperature)
                            for z in out.channel_projections.values()]).mean()
    return {"loss": recon + config.alpha * contrast, "reconstruction": recon, "contrastive": contrast}


def distillation_loss(logits: torch.Tensor, teacher_proba: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) at ``temperature``, times T² (Hinton et al. 2015), mean over epochs.

    ``logits`` are the student's (..., K); ``teacher_proba`` the teacher's probabilities (..., K),
    softened here as ``p^(1/T)`` renormalised (the softmax of its logits / T).
    """
    soft = teacher_proba.float().clamp(min=1e-8).pow(1.0 / temperature)
    soft = soft / soft.sum(-1, keepdim=True)
    log_q = F.log_softmax(logits.float() / temperature, dim=-1)
    return (soft * (soft.log() - log_q)).sum(-1).mean() * temperature**2

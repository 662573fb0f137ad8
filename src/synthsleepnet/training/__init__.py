"""Training: self-supervised losses (pretraining, probing and fine-tuning come next)."""

from .losses import masked_mse, neuronet_loss, nt_xent, synthsleepnet_loss

__all__ = ["masked_mse", "neuronet_loss", "nt_xent", "synthsleepnet_loss"]

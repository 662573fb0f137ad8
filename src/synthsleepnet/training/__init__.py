"""Training and evaluation: splits, datasets, losses, the loop, pretraining and adaptation."""

from .adapt import finetune, probe
from .data import class_weights, inverse_frequency_weights
from .evaluate import evaluate
from .loop import FitResult, fit
from .losses import distillation_loss, masked_mse, neuronet_loss, nt_xent, synthsleepnet_loss
from .pretrain import pretrain_multimodal, pretrain_unimodal
from .splits import SPLITS, assign_splits, sample_labelled_epochs, split_nights

__all__ = [
    "SPLITS",
    "FitResult",
    "assign_splits",
    "class_weights",
    "distillation_loss",
    "evaluate",
    "finetune",
    "fit",
    "inverse_frequency_weights",
    "masked_mse",
    "neuronet_loss",
    "nt_xent",
    "pretrain_multimodal",
    "pretrain_unimodal",
    "probe",
    "sample_labelled_epochs",
    "split_nights",
    "synthsleepnet_loss",
]

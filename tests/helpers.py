"""Plain helpers shared by tests and the DDP script (fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses

from synthsleepnet._config import get_preset
from synthsleepnet.models import CheckpointMeta, EpochHead, ModelSpec, build_model


def head_and_meta(in_dim: int, n_outputs: int, hidden: int = 8) -> tuple[EpochHead, CheckpointMeta]:
    """A small epoch head (no dropout) and the checkpoint metadata fit() saves it with."""
    tiny = get_preset("tiny")
    config = dataclasses.replace(
        tiny, fusion=dataclasses.replace(tiny.fusion, fusion_dim=in_dim, fusion_heads=1),
        temporal=dataclasses.replace(tiny.temporal, hidden=hidden, dropout=0.0, headdim=in_dim))
    spec = ModelSpec("epoch_head", config, n_outputs=n_outputs)
    model = build_model(spec)
    assert isinstance(model, EpochHead)
    return model, CheckpointMeta(phase="probe", spec=spec, task="apnea" if n_outputs == 2 else "stage")

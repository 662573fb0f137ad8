"""Plain helpers shared by tests and the DDP script (fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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


def embed_stages(edf_path: Path, scoring_path: Path, out: Path) -> Path:
    """Write ``edf_path`` again as ``out`` with its scoring's stages as EDF+ annotations, as a
    clinical system exports a scored night."""
    import edfio

    from synthsleepnet.io import read_scoring

    edf = edfio.read_edf(edf_path)
    names = ["W", "N1", "N2", "N3", "R"]
    stages = read_scoring(scoring_path).stages
    edf.set_annotations([*edf.annotations, *(edfio.EdfAnnotation(i * 30.0, 30.0, f"Sleep stage {names[code]}")
                                             for i, code in enumerate(stages) if code >= 0)])
    edf.write(out)
    return out

"""The built-in demo: simulate a small cohort and run every stage on it, in minutes on a CPU."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from ._config import PHASE_DEFAULTS, Precision, TrainConfig
from ._logging import logger, verbose

__all__ = ["run_demo"]


@verbose
def run_demo(out_dir: str | Path = "demo", *, nights: int = 8, hours: float = 1.5, steps: int = 25,
             tune_epochs: int = 4, seed: int = 0, device: str = "auto", precision: Precision = "auto",
             progress: bool = True, verbose: bool | str | int | None = None) -> dict[str, Any]:
    """Simulate → prepare → pretrain (4 modalities, then fusion) → adapt → score a held-out night.

    Uses the ``tiny`` preset, ``steps`` optimiser steps per pretraining stage and ``tune_epochs``
    passes of stage fine-tuning, so the whole run takes a few minutes on 2 CPU cores; the numbers show that the pipeline works, not what a trained model
    reaches. Returns the paths written and the held-out night's agreement with its ground truth.
    """
    from .score_files import score_night
    from .simulate import simulate_cohort
    from .store import EpochStore, prepare_store
    from .training import (
        assign_splits,
        finetune,
        pretrain_multimodal,
        pretrain_unimodal,
        probe,
        split_nights,
    )

    out = Path(out_dir)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.perf_counter() - t0 - sum(timings.values()), 1)
        logger.info("demo: %s done (%.0f s)", name, timings[name])

    simulate_cohort(out / "recordings", nights, hours, seed=seed, progress=progress)
    lap("simulate")
    summary = prepare_store(out / "recordings", out / "store", workers=2, progress=progress)
    if not summary.ok:
        raise RuntimeError(summary.text())
    assign_splits(out / "store", fractions={"pretrain": 0.5, "train": 0.25, "val": 0.125, "test": 0.125}, seed=seed)
    lap("prepare")
    # a few steps need a larger rate than the paper's 1e-4 per 256 items: 1e-3 here
    quick = dataclasses.replace(PHASE_DEFAULTS["pretrain_unimodal"], epochs=1, batch_size=32, base_lr=8e-3,
                                max_steps_per_epoch=steps, seed=seed, device=device, precision=precision)
    runs = out / "runs"
    encoders = {}
    for modality in ("eeg", "eog", "emg", "ecg"):
        encoders[modality] = pretrain_unimodal(out / "store", modality, runs / f"neuronet-{modality}", config=quick,
                                               resume=True, progress=progress).checkpoint
    lap("pretrain unimodal")
    fusion = pretrain_multimodal(out / "store", encoders, runs / "synthsleepnet", config=quick, resume=True,
                                 progress=progress).checkpoint
    lap("pretrain multimodal")
    tune = TrainConfig(epochs=tune_epochs, batch_size=4, accumulate=1, base_lr=0.064, seed=seed, device=device,
                       precision=precision)
    models = [finetune(out / "store", "stage", 1.0, runs / "finetune-stage", fusion_checkpoint=fusion, config=tune,
                       resume=True, progress=progress).checkpoint]
    probing = dataclasses.replace(PHASE_DEFAULTS["probe"], epochs=20, batch_size=128, base_lr=2e-3, seed=seed,
                                  device=device, precision=precision)
    for task in ("apnea", "hypopnea"):
        models.append(probe(out / "store", task, 1.0, runs / f"probe-{task}", fusion_checkpoint=fusion,
                            config=probing, resume=True, progress=progress).checkpoint)
    lap("adapt")
    store = EpochStore(out / "store")
    held_out = split_nights(store, "test")[0]
    source = Path(str(store.manifest.set_index("night_id").loc[held_out, "source"]))
    scored = out / "scored" / held_out
    night = score_night(source, models, scored, annotations=source.with_name(source.stem + "-nsrr.xml"),
                        overwrite=True, device=device, precision=precision)
    lap("score")
    return {"report": night.outputs["html"], "png": night.outputs["png"], "outputs": scored, "night": held_out,
            "agreement": night.result.agreement(), "respiratory": night.result.respiratory(),
            "cardiac": night.result.cardiac(), "position": night.result.position(), "timings_s": timings,
            "models": [str(m) for m in models]}

"""Measurement helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the timed scoring children import this module: nothing heavy at import
    import numpy as np

    from synthsleepnet.models.classifier import SleepClassifier

#: The channels every benchmark scores or trains on: the paper's staging montage (one EEG, one
#: EOG, chin EMG, ECG), as the simulator names them.
CHANNELS: tuple[str, ...] = ("C4-M1", "E1-M2", "Chin", "ECG")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (``VmHWM``).

    Not ``ru_maxrss``: Linux carries it over ``exec`` from the forking parent, so a child
    started by a benchmark that simulated a night first would report the parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def describe_cpu() -> str:
    """The CPU a speed was measured on: model, cores and the bf16 units that decide our precision.

    Speeds differ several-fold between CPUs with and without AVX-512 BF16 or AMX (``auto``
    precision is bf16 only with them), so every speed table names its machine.
    """
    from synthsleepnet._device import cpu_model_and_flags  # here: the other helpers need no torch

    model, flags = cpu_model_and_flags()
    units: list[str] = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags] or ["no AVX-512"]
    return f"{model}, {os.cpu_count()} cores, {' '.join(units)}"


def random_night(n_epochs: int) -> dict[str, np.ndarray]:
    """A night of standard-normal 30-s epochs on :data:`CHANNELS`, the same every call (a model's
    time does not depend on the values)."""
    import numpy as np

    from synthsleepnet._config import PreprocessingConfig

    rng = np.random.default_rng(0)
    samples = PreprocessingConfig().epoch_samples
    return {c: rng.standard_normal((n_epochs, samples)).astype(np.float32) for c in CHANNELS}


def scoring_model(preset: str) -> SleepClassifier:
    """A 5-stage sequence model of ``preset`` on :data:`CHANNELS`, folded as scoring runs it
    (random weights from seed 0: the cost does not depend on them)."""
    import torch

    from synthsleepnet._config import get_preset
    from synthsleepnet.models.classifier import SleepClassifier
    from synthsleepnet.models.inference import fuse_for_inference

    torch.manual_seed(0)
    return fuse_for_inference(SleepClassifier(CHANNELS, get_preset(preset), 5, "sequence"))


def matmul_peak() -> dict[str, float]:
    """What this machine's cores reach at best: a 4096³ matrix product (no start-up) in fp32 and,
    where the CPU has bf16 units (then ``auto`` scores in bf16), in bf16; emulated bf16 is no peak
    and takes minutes."""
    import torch

    from synthsleepnet._device import cpu_supports_bf16

    a = torch.randn(4096, 4096)
    out = {}
    for name, x in (("fp32", a), *((("bf16", a.bfloat16()),) if cpu_supports_bf16() else ())):
        x @ x
        t0 = time.perf_counter()
        for _ in range(3):
            x @ x
        out[name] = 3 * 2 * 4096 ** 3 / (time.perf_counter() - t0) / 1e12
    return out

"""Measurement helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import resource
from pathlib import Path

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

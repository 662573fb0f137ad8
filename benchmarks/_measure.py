"""Measurement helpers shared by the benchmark scripts."""

from __future__ import annotations

import resource
from pathlib import Path


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

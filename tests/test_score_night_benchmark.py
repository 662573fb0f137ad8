"""The scoring-speed benchmark refuses a comparison it cannot run before it simulates a night."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "score_night.py"


@pytest.mark.parametrize(("args", "message"), [
    (["--presets", "fast", "--batch-for", "tiny"], "--batch-for: ['tiny'] are not among the rows ['fast']"),
    (["--presets", "fast", "--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--presets", "fast", "--batch-workers", "1", "0"], "--batch-workers must each be at least 1, got [1, 0]"),
])
def test_a_comparison_it_cannot_run_is_refused_at_once(args: list[str], message: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}
    run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr

"""The prepared GPU check must run unchanged where a GPU is lent: its every path runs here on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_the_gpu_check_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}
    run = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    checks = [row["check"] for row in report["rows"]]
    assert any(c.startswith("(a)") for c in checks) and any(c.startswith("(d)") for c in checks)
    assert all(row["ok"] is not False for row in report["rows"])

"""The label-efficiency benchmark's tables from finished runs (two presets compared seed by seed,
a study whose protocols ran different numbers of seeds) and where a model variant's runs go."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from synthsleepnet._config import get_preset, merge_config

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "label_efficiency.py"
FIELDS = ("task", "labels", "protocol", "seed", "n_labelled_epochs", "macro_f1", "kappa")


def _runs(path: Path, rows: list[tuple[str, int, float]], labels: float = 0.05, val: float | None = None) -> Path:
    """Rows of a study (κ = macro-F1 − 0.1); with ``val``, a validation score of macro-F1 + ``val``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*FIELDS, *(["val_score"] if val is not None else [])])
        for protocol, seed, f1 in rows:
            writer.writerow(["stage", labels, protocol, seed, 54, f1, f1 - 0.1, *([f1 + val] if val is not None else [])])
    return path


def _script(*args: str | Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}
    run = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


def test_compare_pairs_the_seeds_both_studies_ran(tmp_path: Path) -> None:
    fast = _runs(tmp_path / "fast.csv", [("fine-tune", s, f) for s, f in enumerate((0.70, 0.80, 0.60, 0.90))])
    small = _runs(tmp_path / "small.csv", [("fine-tune", s, f) for s, f in enumerate((0.75, 0.70, 0.70))])
    out = _script("--compare", f"fast={fast}", f"small={small}", "--out", tmp_path)
    row = next(line for line in out.splitlines() if "| fine-tune |" in line)
    # seed 3 ran only for fast: shown, not paired; differences -0.05, +0.10, -0.10 → mean -0.017
    assert "| 0 / 1 / 2 / 3 | 0.700 / 0.800 / 0.600 / 0.900 | 0.750 / 0.700 / 0.700 / – |" in row
    assert "-0.017 ± 0.104 (1/3 seeds > 0)" in row
    assert "-0.275 to +0.242" in row  # t(0.975, 2) = 4.303; 4.303 × 0.104 / √3 = 0.258
    assert (tmp_path / "label_efficiency_comparison.md").read_text().count("| fine-tune |") == 1
    assert "Validation subjects" not in out  # older rows have no validation score


def test_compare_shows_the_validation_scores_designs_are_chosen_on(tmp_path: Path) -> None:
    fast = _runs(tmp_path / "fast.csv", [("fine-tune", s, f) for s, f in enumerate((0.70, 0.80))], val=0.1)
    wide = _runs(tmp_path / "wide.csv", [("fine-tune", s, f) for s, f in enumerate((0.60, 0.90))], val=0.05)
    out = _script("--compare", f"fast={fast}", f"wide={wide}", "--out", tmp_path)
    test, validation = out.split("Validation subjects")
    assert "| stage macro-f1 | 5% | fine-tune | 0 / 1 | 0.700 / 0.800 | 0.600 / 0.900 | +0.000 ± 0.141" in test
    assert "| stage validation macro-f1 | 5% | fine-tune | 0 / 1 | 0.800 / 0.900 | 0.650 / 0.950 | " \
           "+0.050 ± 0.141" in validation


def test_tables_take_protocols_with_different_seeds(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs.csv", [("scratch", 0, 0.5), ("scratch", 1, 0.6), ("probe", 0, 0.7),
                                         ("probe", 1, 0.8), ("fine-tune", 0, 0.8), ("fine-tune", 1, 0.7),
                                         ("fine-tune", 2, 0.9)])
    out = _script("--tables-from", runs, "--out", tmp_path)
    row = next(line for line in out.splitlines() if line.startswith("| 5% |"))
    # each protocol over its own seeds; the count is shown where it is fewer than another's
    assert "| 0.550 ± 0.071 / 0.450 ± 0.071 (2 seeds) | 0.750 ± 0.071 / 0.650 ± 0.071 (2 seeds) | " \
           "0.800 ± 0.100 / 0.700 ± 0.100 |" in row
    assert "+0.250 ± 0.071 (2/2 seeds > 0)" in row  # best pretrained − scratch over seeds 0 and 1
    assert "+0.000 ± 0.141 (1/2 seeds > 0)" in row  # fine-tune − probe over seeds 0 and 1


def test_compare_names_a_missing_runs_file(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}
    run = subprocess.run([sys.executable, str(SCRIPT), "--compare", f"fast={tmp_path / 'gone.csv'}",
                          f"small={tmp_path / 'gone.csv'}", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1
    assert f"{tmp_path / 'gone.csv'}: no such file" in run.stderr and "Traceback" not in run.stderr


def _script_module() -> Any:
    spec = importlib.util.spec_from_file_location("label_efficiency", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cohort_arguments(*argv: str) -> argparse.Namespace:
    with mock.patch.object(sys, "argv", ["label_efficiency.py", *argv]):
        args: argparse.Namespace = _script_module().parse_cohort_arguments(argparse.ArgumentParser())
    return args


def test_model_variants_get_their_own_runs_folder() -> None:
    """A variant or a non-default budget gets its own runs folder: in another study's, training
    would refuse to resume a different run, and the study would stop."""
    variant = SCRIPT.parent / "model_variants" / "fast-wide-transformer.toml"
    args = _cohort_arguments("--model-config", str(variant), "--pretrain-steps", "400")
    assert args.study == "fast-wide-transformer-pretrain400"
    assert args.model == merge_config(get_preset("fast"), {"encoder": {"embed_dim": 128},
                                                           "fusion": {"fusion_dim": 128}, "temporal": {"hidden": 128}})
    assert _cohort_arguments("--preset", "fast").study == "fast"
    assert _cohort_arguments().model == get_preset("tiny")
    for path in (SCRIPT.parent / "model_variants").glob("*.toml"):
        assert _cohort_arguments("--model-config", str(path)).study == path.stem
    assert "`fast` preset with encoder.embed_dim: 64 → 128, fusion.fusion_dim: 64 → 128" \
           in _script_module()._model_text(args)  # the printed conditions name what the file changes
    record = json.loads(json.dumps(_script_module().arguments_record(args)))  # the summary JSON's "args"
    assert record["model"]["encoder"]["embed_dim"] == 128 and record["study"] == args.study


def test_a_bad_model_config_is_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\npreset = "fast"\n[model.encoder]\nembed_dims = 128\n')
    with pytest.raises(SystemExit) as exit_:
        _cohort_arguments("--model-config", str(bad))
    assert exit_.value.code == 2 and "unknown field(s) ['embed_dims']" in capsys.readouterr().err


def test_a_distilled_study_needs_its_teachers_finished_run(tmp_path: Path) -> None:
    """``--teacher-study``: the teacher of a cell is that study's run of the same task, labels
    and seed, used only once the benchmark saw it finish."""
    module = _script_module()
    args = argparse.Namespace(teacher_study="small")
    run = tmp_path / "runs" / "small" / "finetune-stage-0.05-seed3"
    with pytest.raises(SystemExit, match=f"{run}: no finished teacher; run the 'small' study's fine-tune protocol"):
        module.teacher_checkpoint(tmp_path, args, "stage-0.05-seed3")
    run.mkdir(parents=True)
    (run / "model.safetensors").write_bytes(b"")  # written during training, before the run finishes
    with pytest.raises(SystemExit, match="no finished teacher"):
        module.teacher_checkpoint(tmp_path, args, "stage-0.05-seed3")
    (run / "benchmark_seconds.json").write_text('{"seconds": 1.0}')
    assert module.teacher_checkpoint(tmp_path, args, "stage-0.05-seed3") == run / "model.safetensors"
    assert module.teacher_checkpoint(tmp_path, argparse.Namespace(teacher_study=None), "stage-1-seed0") is None

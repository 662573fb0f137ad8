"""Recipes: every shipped recipe loads and checks; the sim-smoke recipe runs the whole chain and a
second run skips every finished step; a changed setting re-runs from that step; k-fold splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthsleepnet._validation import ConfigError
from synthsleepnet.cli import main
from synthsleepnet.recipes import SplitSpec, _assignments, load_recipe, run_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_loads(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem and recipe.adapt.tasks


def test_a_recipe_typo_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text((RECIPES / "sim-smoke.toml").read_text().replace("max_steps_per_epoch = 3", "max_step = 3", 1))
    with pytest.raises(ConfigError, match=r"bad\.toml.*unknown field\(s\) \['max_step'\]"):
        load_recipe(path)


def test_kfold_tests_every_subject_once_and_never_trains_on_it() -> None:
    subjects = [f"{i:02d}" for i in range(20)]
    folds = _assignments(subjects, SplitSpec(scheme="kfold", folds=5, val=2))
    tested = [s for fold in folds for s, split in fold.items() if split == "test"]
    assert sorted(tested) == subjects  # each subject tested exactly once
    for fold in folds:
        assert sum(v == "val" for v in fold.values()) == 2 and sum(v == "test" for v in fold.values()) == 4
    assert len({frozenset(s for s, v in fold.items() if v == "val") for fold in folds}) > 1


def test_sim_smoke_runs_end_to_end_then_skips_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "work"
    first = run_recipe(RECIPES / "sim-smoke.toml", out, progress=False)
    assert first.ran == ["data", "prepare", "splits", "pretrain", "adapt"] and first.results is not None
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 2 * 2 * 3  # tasks × fractions × protocols
    assert {r["protocol"] for r in rows} == {"probe", "finetune", "scratch"}
    assert all(0 <= r["accuracy"] <= 1 for r in rows) and all(r["auprc"] is not None for r in rows
                                                                if r["task"] == "apnea")
    text = first.results.read_text()
    assert "## stage" in text and "## apnea" in text and "| 5% | probe |" in text
    assert main(["run", str(RECIPES / "sim-smoke.toml"), "--out", str(out), "--quiet"]) == 0
    assert "ran nothing; skipped (done before, same settings) data, prepare, splits, pretrain, adapt" \
        in capsys.readouterr().out
    changed = tmp_path / "changed.toml"
    changed.write_text((RECIPES / "sim-smoke.toml").read_text().replace(  # the cheapest adaptation: probes
        'protocols = ["probe", "finetune", "scratch"]', 'protocols = ["probe"]'))
    again = run_recipe(changed, out, progress=False)
    assert again.skipped == ["data", "prepare", "splits", "pretrain"] and again.ran == ["adapt"]
    assert {r["protocol"] for r in json.loads((out / "results.json").read_text())} == {"probe"}

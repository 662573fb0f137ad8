"""Shared fixtures: the real-data folder (skipped when absent) and small simulated nights."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthsleepnet.simulate import simulate_night, write_night

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real``; tests using it skip in a clone without the project's shared folder."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data fixtures not found at {SHARED_DATA} (clone outside the project workspace)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated 40-minute nights (EDF+ and NSRR XML), shared by the session."""
    out = tmp_path_factory.mktemp("sim")
    for seed in (11, 12, 13):
        write_night(simulate_night(seed, hours=40 / 60, ahi=30.0), out)
    return out

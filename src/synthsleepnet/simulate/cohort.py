"""A simulated cohort: nights written to a folder, as our EDF+ and NSRR XML or as a cohort writes them."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from .._config import SimulationConfig
from .._logging import verbose
from .night import simulate_night, write_night
from .styles import write_styled_night

__all__ = ["simulate_cohort"]


@verbose
def simulate_cohort(out_dir: str | Path, n_nights: int, hours: float = 8.0, *, seed: int = 0,
                    ahi: float | None = None, config: SimulationConfig | None = None, style: str = "generic",
                    variability: str = "normal", window_hours: float | None = None, progress: bool = True,
                    verbose: bool | str | int | None = None) -> list[tuple[Path, Path]]:
    """Simulate ``n_nights`` nights (seeds ``seed``, ``seed + 1``, ...) into ``out_dir``.

    Each night is an EDF+ file with C4-M1, C3-M2, E1-M2, E2-M2, chin EMG, ECG, airflow, thoracic
    and abdominal effort, SpO2 and body position at their native rates, and an NSRR-style XML scoring with the
    hypnogram, respiratory events, desaturations and arousals. Same seed ⇒ identical bytes.
    ``style`` (``shhs``, ``mesa``, ``sleep-edf``, ``hmc``) writes them as that cohort writes its
    nights instead (:mod:`synthsleepnet.simulate.styles`), numbered from 1 (SHHS: 200001).
    ``variability`` (``low``, ``normal``, ``high``) sets how much subjects and sites differ
    (:mod:`synthsleepnet.simulate.variability`). ``window_hours`` records only that long a part
    of each night, placed at random per night (see :func:`simulate_night`).
    """
    paths = []
    for i in tqdm(range(n_nights), desc="simulate", unit="night", disable=not progress):
        night = simulate_night(seed + i, hours, ahi=ahi, config=config, variability=variability,
                               window_hours=window_hours)
        paths.append(write_night(night, out_dir) if style == "generic" else
                     write_styled_night(night, out_dir, style, i + 1))
    return paths

"""Sleep and AHI by body position: ours against psgscoring's ``analyze_position`` on the same nights.

Run in the benchmark environment (``make bench-env``): psgscoring is not a package dependency.
Simulated 8-hour nights are written as EDF+ and read back: ours decodes the ``Position``
channel through the package's reader (the codes its transducer field spells) and computes
:func:`synthsleepnet.positional.position_measures`; psgscoring is given the channel's raw
samples as edfio reads them, the same code table, the true hypnogram and the same events (the
scored apneas and hypopneas starting in sleep). Both leave a position with under 15 minutes of
sleep without an AHI. psgscoring places each epoch in the position it held longest and each
event in its epoch's; ours counts seconds, so the two may differ where a turn falls inside an
epoch. Prints, per night, the supine and non-supine sleep minutes and AHIs of both, and the
largest differences over all positions and nights; then what the simulator's positions look
like over those nights (position changes, supine share, how many nights with an AHI of 5 or
more meet Cartwright's positional criterion).

    .venv-bench/bin/python benchmarks/position_crosscheck.py [--nights 8]
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import edfio
import numpy as np

from synthsleepnet.io import load_channel_table, read_recording
from synthsleepnet.io.body_position import read_body_position
from synthsleepnet.io.position_codes import POSITIONS
from synthsleepnet.positional import position_measures
from synthsleepnet.simulate import simulate_night, write_night
from synthsleepnet.simulate.position import POSITION_CODES
from synthsleepnet.tasks import RESPIRATORY_EVENTS

_STAGES = ("W", "N1", "N2", "N3", "R")


def _theirs(position: np.ndarray, sfreq: float, hypnogram: np.ndarray, onsets: np.ndarray) -> dict[str, Any]:
    from psgscoring.ancillary import analyze_position

    logging.getLogger("psgscoring").setLevel(logging.ERROR)
    events = [{"epoch": int(onset // 30)} for onset in onsets]
    out = analyze_position(position, sfreq, [_STAGES[int(s)] for s in hypnogram], events,
                           position_code_map={code: name.capitalize() for code, name in POSITION_CODES.items()})
    if not out["success"]:
        raise RuntimeError(f"psgscoring: {out['error']}")
    summary = out["summary"]
    return {"sleep_min": {p: float(summary["sleep_time_min"][p.capitalize()] or 0.0) for p in POSITIONS},
            "AHI": {p: _number(summary["ahi_per_pos"][p.capitalize()]) for p in POSITIONS}}


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _night(seed: int, folder: Path) -> tuple[dict[str, Any], dict[str, Any], float]:
    night = simulate_night(seed, 8.0)
    edf, _ = write_night(night, folder)
    found = read_body_position(read_recording(edf), load_channel_table())
    assert found is not None
    events = night.events[night.events["event"].isin(RESPIRATORY_EVENTS)]
    onsets = events["onset_s"].to_numpy(dtype=float)
    in_sleep = onsets[night.hypnogram[np.minimum((onsets // 30).astype(int), night.hypnogram.size - 1)] > 0]
    ours = position_measures(found[0], night.hypnogram, events)
    channel = next(s for s in edfio.read_edf(edf).signals if s.label == "Position")
    theirs = _theirs(channel.data, channel.sampling_frequency, night.hypnogram, in_sleep)
    return ours, theirs, in_sleep.size / (np.count_nonzero(night.hypnogram > 0) * 30 / 3600)


def _ahi_pair(ours: float, theirs: float) -> str:
    return f"{ours:5.1f} / {theirs:5.1f}" if math.isfinite(ours) or math.isfinite(theirs) else "  n/a /   n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nights", type=int, default=8)
    args = parser.parse_args()
    minutes_diff, ahi_diff, missing_agree, n = 0.0, 0.0, 0, 0
    changes, supine, apnea, positional = [], [], 0, 0
    print("night  supine min (ours / psgscoring)  AHI supine       non-supine min    AHI left         AHI right")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.nights):
            ours, theirs, ahi = _night(seed, Path(tmp))
            changes.append(ours["position_changes"])
            supine.append(ours["supine_sleep_pct"])
            apnea += ahi >= 5
            positional += ahi >= 5 and bool(ours["positional_osa"])
            nonsupine_theirs = sum(v for p, v in theirs["sleep_min"].items() if p != "supine")
            print(f"{seed:5d}  {ours['sleep_min']['supine']:6.1f} / {theirs['sleep_min']['supine']:6.1f}"
                  f"               {_ahi_pair(ours['AHI_supine'], theirs['AHI']['supine'])}"
                  f"  {ours['nonsupine_sleep_min']:6.1f} / {nonsupine_theirs:6.1f}"
                  f"  {_ahi_pair(ours['AHI_by_position']['left'], theirs['AHI']['left'])}"
                  f"  {_ahi_pair(ours['AHI_by_position']['right'], theirs['AHI']['right'])}")
            for p in POSITIONS:
                minutes_diff = max(minutes_diff, abs(ours["sleep_min"][p] - theirs["sleep_min"][p]))
                a, b = ours["AHI_by_position"][p], theirs["AHI"][p]
                n += 1
                if math.isfinite(a) and math.isfinite(b):
                    ahi_diff = max(ahi_diff, abs(a - b))
                    missing_agree += 1
                elif not (math.isfinite(a) or math.isfinite(b)):
                    missing_agree += 1
    print(f"\nover {args.nights} nights x {len(POSITIONS)} positions: largest difference in sleep minutes "
          f"{minutes_diff:.1f} min, in AHI {ahi_diff:.2f} /h (psgscoring rounds both to 0.1); "
          f"both give or both withhold the AHI in {missing_agree} of {n}")
    print(f"the simulator's positions: {min(changes)}-{max(changes)} changes a night (median "
          f"{np.median(changes):.0f}), supine {np.median(supine):.0f} % of sleep (median); "
          f"{positional} of the {apnea} nights with AHI >= 5 positional (Cartwright)")


if __name__ == "__main__":
    main()
